/* SPDX-License-Identifier: BSD-3-Clause
 * Per-thread state: which plugin/filter and connection a message belongs
 * to, the error a plugin set, and a reusable request buffer.
 */

#include <config.h>

#include <errno.h>
#include <pthread.h>

#include <stdlib.h>

#include "internal.h"

static _Thread_local struct {
  const char *name;             /* plugin or filter being called */
  size_t instance;              /* connection number, 0 = none */
  int error;                    /* from nbdkit_set_error */
  struct connection *conn;
  struct context *context;
  void *buffer;                 /* request buffer */
  size_t buffer_size;
} tl;

void threadlocal_set_name (const char *name) { tl.name = name; }
const char *threadlocal_get_name (void) { return tl.name; }
void threadlocal_set_instance (size_t instance) { tl.instance = instance; }
size_t threadlocal_get_instance (void) { return tl.instance; }
void threadlocal_set_error (int err) { tl.error = err; }
int threadlocal_get_error (void) { return tl.error; }
void threadlocal_set_conn (struct connection *conn) { tl.conn = conn; }
struct connection *threadlocal_get_conn (void) { return tl.conn; }
void threadlocal_set_context (struct context *c) { tl.context = c; }
struct context *threadlocal_get_context (void) { return tl.context; }

/* A buffer of at least SIZE bytes owned by this thread, reused between
 * requests so the data path does not allocate.  NULL on ENOMEM.
 */
void *
threadlocal_buffer (size_t size)
{
  if (size > tl.buffer_size) {
    void *p;
    /* Page-aligned for plugins that use O_DIRECT. */
    if (posix_memalign (&p, 4096, size) != 0)
      return NULL;
    free (tl.buffer);
    tl.buffer = p;
    tl.buffer_size = size;
  }
  return tl.buffer;
}

void
threadlocal_free_buffer (void)
{
  free (tl.buffer);
  tl.buffer = NULL;
  tl.buffer_size = 0;
}

NBDKIT_DLL_PUBLIC void
nbdkit_set_error (int err)
{
  tl.error = err;
}

/* Start FN (ARG) in a detached thread.  0, or an error number (also
 * left in errno).
 */
int
start_detached_thread (void *(*fn) (void *), void *arg)
{
  pthread_t thread;
  pthread_attr_t attrs;
  int err;

  pthread_attr_init (&attrs);
  pthread_attr_setdetachstate (&attrs, PTHREAD_CREATE_DETACHED);
  err = pthread_create (&thread, &attrs, fn, arg);
  pthread_attr_destroy (&attrs);
  if (err != 0)
    errno = err;
  return err;
}
