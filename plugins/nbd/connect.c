/* SPDX-License-Identifier: BSD-3-Clause
 * Connecting to the upstream NBD server: a libnbd handle set up from the
 * command line (export name, TLS, the base:allocation context), connected
 * in the one configured mode, with retry= further attempts a second apart.
 */

#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "nbd-internal.h"

/* The NBD port when port= is not given. */
#define DEFAULT_TCP_PORT "10809"

static int
debug_to_nbdkit (void *user_data, const char *context, const char *msg)
{
  nbdkit_debug ("libnbd: %s: %s", context, msg);
  return 0;
}

/* Everything that has to be set before connecting. */
static int
configure_handle (struct nbd_handle *nbd, const char *export, bool opt_mode)
{
  if (nbd_debug_verbose &&
      (nbd_set_debug_callback (nbd, (nbd_debug_callback) {
          .callback = debug_to_nbdkit }) == -1 ||
       nbd_set_debug (nbd, true) == -1))
    return -1;

  /* Full info asks the server for its export description and canonical
   * name; block sizes are requested by default.
   */
  if (nbd_set_export_name (nbd, export) == -1 ||
      nbd_add_meta_context (nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1 ||
      nbd_set_full_info (nbd, true) == -1 ||
      nbd_set_opt_mode (nbd, opt_mode) == -1)
    return -1;

  if (params.tls != -1 && nbd_set_tls (nbd, params.tls) == -1)
    return -1;
  if (params.tls_certificates &&
      nbd_set_tls_certificates (nbd, params.tls_certificates) == -1)
    return -1;
  if (params.tls_verify != -1 &&
      nbd_set_tls_verify_peer (nbd, params.tls_verify) == -1)
    return -1;
  if (params.tls_username &&
      nbd_set_tls_username (nbd, params.tls_username) == -1)
    return -1;
  if (params.tls_psk && nbd_set_tls_psk_file (nbd, params.tls_psk) == -1)
    return -1;

  /* The URI may name a PSK file or certificate directory. */
  if (params.mode == MODE_URI && nbd_set_uri_allow_local_file (nbd, true) == -1)
    return -1;
  return 0;
}

static int
connect_by_mode (struct nbd_handle *nbd)
{
  int fd;

  switch (params.mode) {
  case MODE_SOCKET:
    return nbd_connect_unix (nbd, params.socket);
  case MODE_TCP:
    return nbd_connect_tcp (nbd, params.hostname,
                            params.port ? params.port : DEFAULT_TCP_PORT);
  case MODE_VSOCK:
    return nbd_connect_vsock (nbd, params.cid, params.vsock_port);
  case MODE_URI:
    return nbd_connect_uri (nbd, params.uri);
  case MODE_SOCKET_FD:
    /* The socket can be used once: libnbd owns it from now on, even if
     * the handshake fails.
     */
    fd = params.socket_fd;
    if (fd == -1) {
      nbdkit_error ("socket-fd: the inherited socket was already used");
      errno = EBADF;
      return -2;
    }
    params.socket_fd = -1;
    return nbd_connect_socket (nbd, fd);
  case MODE_COMMAND:
    return nbd_connect_systemd_socket_activation (nbd, params.command.ptr);
  case MODE_NONE:
    break;
  }
  abort ();
}

/* One attempt.  Returns the handle, or NULL with *MSG set to a copy of
 * the reason (NULL if it was already reported).
 */
static struct nbd_handle *
connect_once (const char *export, bool opt_mode, char **msg)
{
  struct nbd_handle *nbd;
  int r;

  *msg = NULL;
  nbd = nbd_create ();
  if (nbd == NULL) {
    nbdkit_error ("nbd_create: %s", nbd_get_error ());
    return NULL;
  }
  if (configure_handle (nbd, export, opt_mode) == -1) {
    nbdkit_error ("%s", nbd_get_error ());
    nbd_close (nbd);
    return NULL;
  }
  r = connect_by_mode (nbd);
  if (r == 0)
    return nbd;
  if (r == -1)
    *msg = strdup (nbd_get_error ());
  nbd_close (nbd);
  return NULL;
}

/* A connection that is past the handshake (ready for requests) or, with
 * NEGOTIATE_ONLY, one that stays in the option phase so the caller can
 * list exports; an oldstyle server is ready straight away in both cases.
 * EXPORT is the name to ask for (ignored with NEGOTIATE_ONLY).
 */
struct nbd_handle *
upstream_connect (const char *export, bool negotiate_only)
{
  /* A URI carries its own export name: with dynamic-export=true the
   * client's name replaces it during the option phase.
   */
  bool rename = !negotiate_only && params.mode == MODE_URI &&
    params.dynamic_export;
  bool opt_mode = negotiate_only || rename;
  struct nbd_handle *nbd;

  if (export == NULL)
    export = "";
  for (unsigned attempt = 0;; attempt++) {
    CLEANUP_FREE char *msg = NULL;

    nbd = connect_once (export, opt_mode, &msg);
    if (nbd != NULL)
      break;
    if (msg == NULL)
      return NULL;
    if (attempt >= params.retry || params.mode == MODE_SOCKET_FD) {
      nbdkit_error ("cannot connect to the NBD server: %s", msg);
      return NULL;
    }
    nbdkit_debug ("connection attempt %u of %u failed: %s; retrying in "
                  "1 second", attempt + 1, params.retry + 1, msg);
    if (nbdkit_nanosleep (1, 0) == -1)
      return NULL;              /* nbdkit or the client is going away */
  }

  if (rename && nbd_aio_is_negotiating (nbd) &&
      (nbd_set_export_name (nbd, export) == -1 || nbd_opt_go (nbd) == -1)) {
    nbdkit_error ("NBD server export \"%s\": %s", export, nbd_get_error ());
    nbd_close (nbd);
    return NULL;
  }
  return nbd;
}

/* An errno from libnbd as the NBD protocol can carry it to our client.
 * Anything else (ENOTCONN for a lost connection, for instance) is EIO.
 */
int
upstream_errno (int err)
{
  switch (err) {
  case EPERM:
  case EIO:
  case ENOMEM:
  case EINVAL:
  case ENOSPC:
  case EOVERFLOW:
  case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
  case EOPNOTSUPP:
#endif
  case ESHUTDOWN:
  case EROFS:
  case EFBIG:
  case EDQUOT:
    return err;
  case ERANGE:
    return EINVAL;
  default:
    return EIO;
  }
}
