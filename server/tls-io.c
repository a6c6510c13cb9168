/* SPDX-License-Identifier: BSD-3-Clause
 * The records of an upgraded connection: reading and writing them, and
 * ending the session.  GnuTLS cuts a reply into records of at most
 * 16 KiB; written one by one, a 256 KiB read reply took 17 sendmsg
 * calls (and as many wake-ups of the client).  The push function below
 * gathers the records of one reply and tls_send writes them together.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "internal.h"
#include "utils.h"

#if HAVE_GNUTLS

#include "tls-internal.h"

/* A payload at least this large is never copied into the cork buffer. */
#define LARGE_SEND (64 * 1024)

/* Encrypted records are gathered up to this much before being written:
 * a whole 256 KiB read reply and its records' overhead.
 */
#define GATHER_SIZE (264 * 1024)

static int
flush_gathered (struct connection *conn)
{
  size_t len = conn->tls_out_len;

  conn->tls_out_len = 0;
  return write_all (conn->sockout, conn->tls_out, len);
}

/* GnuTLS's push function.  While tls_send runs (the write lock held),
 * the records are appended to the gather buffer; otherwise (an answer
 * GnuTLS sends on its own, close_notify) they are written at once.
 */
static ssize_t
push_records (gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
  struct connection *conn = ptr;
  size_t total = 0;
  int i;

  for (i = 0; i < iovcnt; ++i)
    total += iov[i].iov_len;

  if (conn->tls_gathering && conn->tls_out == NULL)
    conn->tls_out = malloc (GATHER_SIZE);
  if (conn->tls_gathering && conn->tls_out != NULL && total <= GATHER_SIZE) {
    if (conn->tls_out_len + total > GATHER_SIZE &&
        flush_gathered (conn) == -1)
      goto error;
    for (i = 0; i < iovcnt; ++i) {
      memcpy (conn->tls_out + conn->tls_out_len, iov[i].iov_base,
              iov[i].iov_len);
      conn->tls_out_len += iov[i].iov_len;
    }
    return total;
  }

  /* Not gathering: keep the order of what was gathered before. */
  if (conn->tls_out_len > 0 && flush_gathered (conn) == -1)
    goto error;
  {
    struct msghdr msg = { .msg_iov = (struct iovec *) iov,
                          .msg_iovlen = iovcnt };
    ssize_t r;
    do
      r = sendmsg (conn->sockout, &msg, MSG_NOSIGNAL);
    while (r == -1 && errno == EINTR);
    if (r >= 0)
      return r;
  }
 error:
  gnutls_transport_set_errno (conn->crypto_session, errno);
  return -1;
}

/* GnuTLS's pull function: the records are read as a plain socket is,
 * polling first for a client that answers quickly (read-poll.c).
 */
static ssize_t
pull_records (gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
  struct connection *conn = ptr;
  ssize_t r;

  do
    r = read_polling (conn, buf, len);
  while (r == -1 && errno == EINTR);
  if (r == -1)
    gnutls_transport_set_errno (conn->crypto_session, errno);
  return r;
}

/* Map a fatal GnuTLS error to errno for the caller's message; socket
 * errors keep the errno of the failed system call.
 */
static int
tls_io_error (const char *fn, ssize_t r, int saved_errno)
{
  if ((r == GNUTLS_E_PULL_ERROR || r == GNUTLS_E_PUSH_ERROR) && saved_errno) {
    errno = saved_errno;
    return -1;
  }
  nbdkit_error ("%s: %s", fn, gnutls_strerror (r));
  errno = EPROTO;
  return -1;
}

static int
tls_recv (struct connection *conn, void *vbuf, size_t len)
{
  gnutls_session_t session = conn->crypto_session;
  char *buf = vbuf;
  size_t done = 0;

  while (done < len) {
    ssize_t r;

    errno = 0;
    r = gnutls_record_recv (session, buf + done, len - done);
    if (r > 0) {
      done += r;
      continue;
    }
    /* A peer that closes the socket without close_notify between
     * messages has still ended cleanly as far as NBD is concerned.
     */
    if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION) {
      if (done == 0)
        return 0;
      errno = EBADMSG;
      return -1;
    }
    if (r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_AGAIN)
      continue;
    if (r == GNUTLS_E_REHANDSHAKE) {
      nbdkit_error ("the client asked for TLS renegotiation, "
                    "which is not supported");
      errno = EPROTO;
      return -1;
    }
    if (!gnutls_error_is_fatal (r)) {
      debug ("gnutls_record_recv: %s, ignoring", gnutls_strerror (r));
      continue;
    }
    return tls_io_error ("gnutls_record_recv", r, errno);
  }
  return 1;
}

static int
send_all (gnutls_session_t session, const char *buf, size_t len)
{
  while (len > 0) {
    ssize_t r;

    errno = 0;
    r = gnutls_record_send (session, buf, len);
    if (r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_AGAIN)
      continue;
    if (r < 0)
      return tls_io_error ("gnutls_record_send", r, errno);
    buf += r;
    len -= r;
  }
  return 0;
}

static int
uncork (gnutls_session_t session)
{
  int r;

  do {
    errno = 0;
    r = gnutls_record_uncork (session, GNUTLS_RECORD_WAIT);
  } while (r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_AGAIN);
  return r < 0 ? tls_io_error ("gnutls_record_uncork", r, errno) : 0;
}

/* SEND_MORE corks the session so that a reply header and its payload
 * share TLS records.  A large payload is not copied into the cork
 * buffer: it tops up the pending record, which is flushed, and the rest
 * is encrypted straight from the caller's buffer.
 */
static int
send_records (struct connection *conn, const void *vbuf, size_t len,
              int flags)
{
  gnutls_session_t session = conn->crypto_session;
  const char *buf = vbuf;

  if (len >= LARGE_SEND) {
    size_t corked = gnutls_record_check_corked (session);
    size_t max = gnutls_record_get_max_size (session);
    size_t fill = corked > 0 && corked < max ? MIN (len, max - corked) : 0;

    /* Uncorking also leaves corked mode, which may be on with nothing
     * pending; it is a no-op otherwise.
     */
    if (send_all (session, buf, fill) == -1 || uncork (session) == -1)
      return -1;
    buf += fill;
    len -= fill;
    if (send_all (session, buf, len) == -1)
      return -1;
    if (flags & SEND_MORE)
      gnutls_record_cork (session);
    return 0;
  }

  if (flags & SEND_MORE)
    gnutls_record_cork (session);
  if (send_all (session, buf, len) == -1)
    return -1;
  if (!(flags & SEND_MORE))
    return uncork (session);
  return 0;
}

/* The records of a reply are gathered until its last piece (sent
 * without SEND_MORE), then written together.  Called with the write
 * lock held.
 */
static int
tls_send (struct connection *conn, const void *vbuf, size_t len, int flags)
{
  int r;

  conn->tls_gathering = true;
  r = send_records (conn, vbuf, len, flags);
  if (r == -1 || !(flags & SEND_MORE)) {
    conn->tls_gathering = false;
    if (r == 0 && conn->tls_out_len > 0)
      r = flush_gathered (conn);
    conn->tls_out_len = 0;
  }
  return r;
}

/* Called once the handshake succeeded: from now on the connection
 * reads and writes records of SESSION.
 */
void
tls_io_start (struct connection *conn, gnutls_session_t session)
{
  conn->crypto_session = session;
  gnutls_transport_set_ptr (session, conn);
  gnutls_transport_set_pull_function (session, pull_records);
  gnutls_transport_set_vec_push_function (session, push_records);
  conn->recv = tls_recv;
  conn->send = tls_send;
  conn->using_tls = true;
}

/* Send close_notify without waiting: a peer that stopped reading must
 * not hold up the close, so the socket is made non-blocking first.
 */
void
tls_io_end (struct connection *conn)
{
  gnutls_session_t session = conn->crypto_session;
  int fl, r;

  if (session == NULL)
    return;
  conn->tls_gathering = false;
  fl = fcntl (conn->sockout, F_GETFL);
  if (fl >= 0)
    fcntl (conn->sockout, F_SETFL, fl | O_NONBLOCK);
  do
    r = gnutls_bye (session, GNUTLS_SHUT_WR);
  while (r == GNUTLS_E_INTERRUPTED);
  if (r < 0)
    debug ("gnutls_bye: %s", gnutls_strerror (r));
  gnutls_deinit (session);
  conn->crypto_session = NULL;
  free (conn->tls_out);
  conn->tls_out = NULL;
  conn->tls_out_len = 0;
}

#endif /* HAVE_GNUTLS */
