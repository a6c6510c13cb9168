/* SPDX-License-Identifier: BSD-3-Clause
 * Reading and writing a connection's plain socket (or pipe, with -s);
 * tls.c replaces these after STARTTLS.
 */

#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "internal.h"
#include "utils.h"

static int
raw_recv (struct connection *conn, void *vbuf, size_t len)
{
  char *buf = vbuf;
  size_t done = 0;

  while (done < len) {
    ssize_t r = read (conn->sockin, buf + done, len - done);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0) {
      if (done == 0)
        return 0;               /* clean end of file */
      errno = EBADMSG;          /* the peer stopped mid-message */
      return -1;
    }
    done += r;
  }
  return 1;
}

/* A small piece sent with SEND_MORE (a reply header) is held back and
 * sent in one sendmsg with what follows (the payload), saving a system
 * call per reply.  Called with the connection's write lock held.
 */
static int
raw_send_socket (struct connection *conn, const void *vbuf, size_t len,
                 int flags)
{
  struct iovec iov[2];
  struct msghdr msg = { .msg_iov = iov };
  int f = MSG_NOSIGNAL | (flags & SEND_MORE ? MSG_MORE : 0);

  if ((flags & SEND_MORE) && conn->held_len + len <= sizeof conn->held) {
    memcpy (conn->held + conn->held_len, vbuf, len);
    conn->held_len += len;
    return 0;
  }

  iov[0] = (struct iovec) { conn->held, conn->held_len };
  iov[1] = (struct iovec) { (void *) vbuf, len };
  while (iov[0].iov_len + iov[1].iov_len > 0) {
    ssize_t r;

    msg.msg_iov = iov[0].iov_len ? &iov[0] : &iov[1];
    msg.msg_iovlen = iov[0].iov_len ? 2 : 1;
    r = sendmsg (conn->sockout, &msg, f);
    if (r == -1) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      conn->held_len = 0;
      return -1;
    }
    for (int i = 0; i < 2 && r > 0; ++i) {
      size_t n = MIN ((size_t) r, iov[i].iov_len);
      iov[i].iov_base = (char *) iov[i].iov_base + n;
      iov[i].iov_len -= n;
      r -= n;
    }
  }
  conn->held_len = 0;
  return 0;
}

static int
raw_send_other (struct connection *conn, const void *vbuf, size_t len,
                int flags)
{
  const char *buf = vbuf;

  while (len > 0) {
    ssize_t r = write (conn->sockout, buf, len);
    if (r == -1) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return -1;
    }
    buf += r;
    len -= r;
  }
  return 0;
}

static void
raw_close (struct connection *conn)
{
  if (conn->sockin >= 0)
    close (conn->sockin);
  if (conn->sockout >= 0 && conn->sockout != conn->sockin)
    close (conn->sockout);
  conn->sockin = conn->sockout = -1;
}

/* Read exactly LEN bytes.  0 on success; on end of file or error, log
 * what was being read (FS) and return -1.
 */
int
conn_recv_full (struct connection *conn, void *buf, size_t len,
                const char *fs, ...)
{
  int r = conn->recv (conn, buf, len);

  if (r == 1)
    return 0;
  if (r == 0)
    errno = EBADMSG;
  {
    va_list args;
    char *what = NULL;
    int saved_errno = errno;
    va_start (args, fs);
    if (vasprintf (&what, fs, args) == -1)
      what = NULL;
    va_end (args);
    if (saved_errno == EBADMSG)
      nbdkit_error ("%s: the client closed the connection unexpectedly",
                    what ? what : fs);
    else {
      errno = saved_errno;
      nbdkit_error ("%s: %m", what ? what : fs);
    }
    free (what);
  }
  return -1;
}

/* Throw away LEN bytes of unwanted input (an oversized write payload). */
int
conn_discard (struct connection *conn, uint64_t len)
{
  char buf[65536];

  while (len > 0) {
    size_t n = len > sizeof buf ? sizeof buf : len;
    if (conn->recv (conn, buf, n) != 1)
      return -1;
    len -= n;
  }
  return 0;
}

static bool
is_socket (int fd)
{
  int type;
  socklen_t len = sizeof type;

  return getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
}

void
connection_set_raw_io (struct connection *conn)
{
  conn->recv = raw_recv;
  conn->send = is_socket (conn->sockout) ? raw_send_socket : raw_send_other;
  conn->close = raw_close;
}
