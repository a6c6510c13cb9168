/* SPDX-License-Identifier: BSD-3-Clause
 * The ssh plugin: serves a file on a remote host over SFTP.  Each NBD
 * connection opens its own SSH session (session.c); reads and writes are
 * SFTP reads and writes, flush is the fsync@openssh.com extension.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#ifdef SSH_PLUGIN_OPENSSL
#include <openssl/crypto.h>
#endif

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "ssh.h"

/* -D ssh.log=N: libssh's log verbosity, 1 (warnings) to 4 (functions). */
NBDKIT_DLL_PUBLIC int ssh_debug_log = 0;

/* Largest SFTP read or write sent at once: OpenSSH's sftp-server drops
 * the connection on messages over 256 KiB, and libssh 0.10 does not
 * split requests itself.
 */
#define MAX_REQUEST (64 * 1024)

/* create=true replaces the remote file once, on the first connection. */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;
static bool created;

static void
ssh_plugin_load (void)
{
#ifdef SSH_PLUGIN_OPENSSL
  /* libssh starts OpenSSL lazily, in the first connection thread that
   * needs random numbers, and OpenSSL then registers an atexit handler
   * freeing its global and per-thread state.  nbdkit can exit while a
   * connection thread is still ending, and that thread's own OpenSSL
   * destructor then frees the same state again (a double free seen
   * under ASan).  Start OpenSSL here, in the main thread, without the
   * atexit handler: each thread's state is freed once, by its thread.
   */
  OPENSSL_init_crypto (OPENSSL_INIT_NO_ATEXIT, NULL);
#endif
  ssh_init ();
}

/* No ssh_finalize here: connection threads may still be ending, and
 * libssh's own destructor finalizes it at exit.
 */
static void
ssh_plugin_unload (void)
{
  params_free ();
}

/* O_TRUNC then set the size and mode by path (libssh has no fsetstat). */
static int
create_remote_file (struct ssh_handle *h)
{
  struct sftp_attributes_struct attr;
  sftp_file f;

  f = sftp_open (h->sftp, params.path, O_WRONLY | O_CREAT | O_TRUNC,
                 params.create_mode);
  if (f == NULL)
    goto error;
  sftp_close (f);

  memset (&attr, 0, sizeof attr);
  attr.flags = SSH_FILEXFER_ATTR_SIZE | SSH_FILEXFER_ATTR_PERMISSIONS;
  attr.size = params.create_size;
  attr.permissions = params.create_mode;
  if (sftp_setstat (h->sftp, params.path, &attr) != SSH_OK)
    goto error;
  nbdkit_debug ("ssh: created remote file %s, size %" PRIi64 ", mode 0%o",
                params.path, params.create_size,
                (unsigned) params.create_mode);
  return 0;

 error:
  nbdkit_set_error (remote_errno (h->sftp));
  nbdkit_error ("cannot create remote file %s: %s",
                params.path, remote_strerror (h->sftp));
  return -1;
}

static void *
ssh_plugin_open (int readonly)
{
  struct ssh_handle *h = calloc (1, sizeof *h);

  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  if (remote_connect (h) == -1)
    goto err;

  if (params.create) {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&create_lock);
    if (!created) {
      if (create_remote_file (h) == -1)
        goto err;
      created = true;
    }
  }

  h->file = sftp_open (h->sftp, params.path, readonly ? O_RDONLY : O_RDWR, 0);
  if (h->file == NULL) {
    nbdkit_set_error (remote_errno (h->sftp));
    nbdkit_error ("cannot open remote file %s for %s: %s", params.path,
                  readonly ? "reading" : "reading and writing",
                  remote_strerror (h->sftp));
    goto err;
  }
  return h;

 err:
  remote_disconnect (h);
  free (h);
  return NULL;
}

static void
ssh_plugin_close (void *handle)
{
  struct ssh_handle *h = handle;

  remote_thread_logging ();
  remote_disconnect (h);
  free (h);
}

/* One libssh session must not be used by two threads at once. */
#define THREAD_MODEL NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS

static int64_t
ssh_plugin_get_size (void *handle)
{
  struct ssh_handle *h = handle;
  sftp_attributes attrs;
  int64_t size;

  remote_thread_logging ();
  attrs = sftp_fstat (h->file);
  if (attrs == NULL) {
    nbdkit_set_error (remote_errno (h->sftp));
    nbdkit_error ("cannot stat remote file %s: %s", params.path,
                  remote_strerror (h->sftp));
    return -1;
  }
  if (!(attrs->flags & SSH_FILEXFER_ATTR_SIZE) || attrs->size > INT64_MAX) {
    nbdkit_error ("remote file %s: the server did not report a usable size",
                  params.path);
    sftp_attributes_free (attrs);
    return -1;
  }
  size = attrs->size;
  sftp_attributes_free (attrs);
  return size;
}

static int
ssh_plugin_can_flush (void *handle)
{
  struct ssh_handle *h = handle;

  return sftp_extension_supported (h->sftp, "fsync@openssh.com", "1");
}

/* Every write goes straight to the remote file and a flush fsyncs it,
 * so all connections see the same data after a flush.
 */
static int
ssh_plugin_can_multi_conn (void *handle)
{
  return ssh_plugin_can_flush (handle);
}

static int
seek_remote (struct ssh_handle *h, uint64_t offset)
{
  if (sftp_seek64 (h->file, offset) < 0) {
    nbdkit_set_error (EIO);
    nbdkit_error ("cannot seek remote file %s to %" PRIu64, params.path,
                  offset);
    return -1;
  }
  return 0;
}

static int
ssh_plugin_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                  uint32_t flags)
{
  struct ssh_handle *h = handle;
  char *p = buf;
  ssize_t r;

  remote_thread_logging ();
  if (seek_remote (h, offset) == -1)
    return -1;
  while (count > 0) {
    r = sftp_read (h->file, p, count < MAX_REQUEST ? count : MAX_REQUEST);
    if (r <= 0) {
      nbdkit_set_error (r == 0 ? EIO : remote_errno (h->sftp));
      nbdkit_error ("read from remote file %s at offset %" PRIu64 ": %s",
                    params.path, offset,
                    r == 0 ? "unexpected end of file"
                    : remote_strerror (h->sftp));
      return -1;
    }
    p += r;
    count -= r;
    offset += r;
  }
  return 0;
}

static int
ssh_plugin_pwrite (void *handle, const void *buf, uint32_t count,
                   uint64_t offset, uint32_t flags)
{
  struct ssh_handle *h = handle;
  const char *p = buf;
  ssize_t r;

  remote_thread_logging ();
  if (seek_remote (h, offset) == -1)
    return -1;
  while (count > 0) {
    r = sftp_write (h->file, p, count < MAX_REQUEST ? count : MAX_REQUEST);
    if (r <= 0) {
      nbdkit_set_error (r == 0 ? EIO : remote_errno (h->sftp));
      nbdkit_error ("write to remote file %s at offset %" PRIu64 ": %s",
                    params.path, offset,
                    r == 0 ? "nothing written" : remote_strerror (h->sftp));
      return -1;
    }
    p += r;
    count -= r;
    offset += r;
  }
  return 0;
}

static int
ssh_plugin_flush (void *handle, uint32_t flags)
{
  struct ssh_handle *h = handle;

  remote_thread_logging ();
  if (sftp_fsync (h->file) != 0) {
    nbdkit_set_error (remote_errno (h->sftp));
    nbdkit_error ("fsync of remote file %s: %s", params.path,
                  remote_strerror (h->sftp));
    return -1;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "ssh",
  .longname           = "nbdkit ssh plugin",
  .version            = PACKAGE_VERSION,
  .description        = "Serve a remote file over SSH (SFTP)",
  .load               = ssh_plugin_load,
  .unload             = ssh_plugin_unload,
  .config             = params_config,
  .config_complete    = params_config_complete,
  .config_help        = params_help,
  .magic_config_key   = "path",
  .open               = ssh_plugin_open,
  .close              = ssh_plugin_close,
  .get_size           = ssh_plugin_get_size,
  .can_flush          = ssh_plugin_can_flush,
  .can_multi_conn     = ssh_plugin_can_multi_conn,
  .pread              = ssh_plugin_pread,
  .pwrite             = ssh_plugin_pwrite,
  .flush              = ssh_plugin_flush,
  .errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN (plugin)
