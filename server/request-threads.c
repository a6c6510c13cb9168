/* SPDX-License-Identifier: BSD-3-Clause
 * A connection's request threads: the connection's own thread serves
 * requests, and more are started on demand, up to -t THREADS, once the
 * connection has gone parallel (connection-parallel.c).  Each reads a
 * request under the read lock, serves it and sends the reply under the
 * write lock (protocol.c).
 */

#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#include "internal.h"
#include "cleanup.h"

/* Whether a request thread may take another request (called with the
 * read lock held): while the connection is open and the server is not
 * stopping; and after a graceful close (a stop, a disconnect) still for
 * the requests already read in, since they were received.
 */
bool
connection_may_take_request (struct connection *conn)
{
  enum conn_status s = connection_get_status (conn);

  if (s == CONN_OPEN && !quitting ())
    return true;
  return s != CONN_DEAD && connection_request_buffered (conn);
}

/* Called by a request thread once it has read a request, still holding
 * the read lock: if no other thread is left to read the next request,
 * start one (up to -t THREADS).  Threads are started on demand so that
 * short connections and clients that send one request at a time cost
 * one thread, not THREADS; and only once the connection's requests are
 * known to block or to be slow (conn->parallel, connection-parallel.c), because
 * handing requests between threads costs more than a quick request.
 */
void
connection_request_started (struct connection *conn)
{
  if (conn->nworkers <= 1 ||
      __atomic_sub_fetch (&conn->workers_idle, 1, __ATOMIC_ACQ_REL) > 0 ||
      !__atomic_load_n (&conn->parallel, __ATOMIC_ACQUIRE))
    return;
  connection_add_worker (conn);
}

/* Start one more request thread if none is idle and the limit allows
 * (also called by the watchdog of connection-parallel.c).
 */
void
connection_add_worker (struct connection *conn)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&conn->workers_lock);
  if (!conn->workers_closed &&
      __atomic_load_n (&conn->workers_idle, __ATOMIC_ACQUIRE) == 0 &&
      conn->workers_started < conn->nworkers) {
    int e = pthread_create (&conn->workers[conn->workers_started], NULL,
                            connection_worker, conn);
    if (e == 0) {
      conn->workers_started++;
      __atomic_add_fetch (&conn->workers_idle, 1, __ATOMIC_ACQ_REL);
    }
    else {
      /* Not fatal: the threads we have carry on. */
      errno = e;
      debug ("pthread_create: %m (continuing with %u request threads)",
             conn->workers_started);
    }
  }
}

void
connection_request_done (struct connection *conn)
{
  if (conn->nworkers > 1)
    __atomic_add_fetch (&conn->workers_idle, 1, __ATOMIC_ACQ_REL);
}

/* Wait for the request threads started on demand. */
void
connection_join_workers (struct connection *conn)
{
  unsigned i = 1;

  pthread_mutex_lock (&conn->workers_lock);
  while (i < conn->workers_started) {
    pthread_t t = conn->workers[i++];
    pthread_mutex_unlock (&conn->workers_lock);
    pthread_join (t, NULL);
    pthread_mutex_lock (&conn->workers_lock);
  }
  conn->workers_closed = true;
  pthread_mutex_unlock (&conn->workers_lock);
}

void *
connection_worker (void *vconn)
{
  struct connection *conn = vconn;

  threadlocal_set_instance (conn->id);
  threadlocal_set_conn (conn);
  threadlocal_set_name (top->name);
  while (protocol_recv_request_send_reply (conn))
    ;
  threadlocal_free_buffer ();
  return NULL;
}
