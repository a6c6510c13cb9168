/* SPDX-License-Identifier: BSD-3-Clause
 * Reading and writing a connection's plain socket (or pipe, with -s);
 * tls.c replaces these after STARTTLS.
 */

#include <config.h>

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "internal.h"
#include "nbd-protocol.h"
#include "utils.h"

/* Reading a plain connection.  In the transmission phase (READ_AHEAD)
 * requests are read through a buffer: a client with many requests in
 * flight sends them together, and one read(2) then takes several of
 * them instead of one read per request header.  A remainder of
 * READ_BUFFER_SIZE or more (a large write payload) is read straight
 * into the caller's buffer.  In the handshake nothing is read ahead:
 * after STARTTLS the bytes that follow belong to TLS.  Called with the
 * read lock held.
 */
#define READ_BUFFER_SIZE 16384

/* Replies held back while more requests are waiting: at most this much,
 * about thirty 4 KiB read replies.  Kept below 128 KiB, where allocators
 * switch to a mapping of its own (glibc at first, and AddressSanitizer
 * always, which then unmaps it at every connection's end).
 */
#define WRITE_BATCH_SIZE (120 * 1024)

static int raw_send_socket (struct connection *conn, const void *vbuf,
                            size_t len, int flags);

static int
flush_before_read (struct connection *conn)
{
  int r;

  if (conn->nworkers > 1)
    pthread_mutex_lock (&conn->write_lock);
  r = connection_flush_output (conn);
  if (conn->nworkers > 1)
    pthread_mutex_unlock (&conn->write_lock);
  return r;
}

static int
raw_recv (struct connection *conn, void *vbuf, size_t len)
{
  char *buf = vbuf;
  size_t done = 0;

  while (done < len) {
    size_t avail = conn->rbuf_len - conn->rbuf_pos;
    /* Until the first request has come (an idle connection waits
     * here), read without the buffer, then allocate it.
     */
    bool direct = len - done >= READ_BUFFER_SIZE || conn->rbuf == NULL;
    ssize_t r;

    if (avail > 0) {
      size_t n = MIN (avail, len - done);
      memcpy (buf + done, conn->rbuf + conn->rbuf_pos, n);
      conn->rbuf_pos += n;
      done += n;
      continue;
    }
    /* Never wait for input while replies are held back. */
    if (conn->read_ahead && flush_before_read (conn) == -1)
      return -1;
    if (direct)
      r = read (conn->sockin, buf + done, len - done);
    else
      r = read_polling (conn, conn->rbuf, READ_BUFFER_SIZE);
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
    if (direct) {
      done += r;
      if (conn->rbuf == NULL && conn->read_ahead)
        conn->rbuf = malloc (READ_BUFFER_SIZE); /* or stay unbuffered */
    }
    else {
      conn->rbuf_pos = 0;
      conn->rbuf_len = r;
    }
  }
  return 1;
}

/* What the send buffer of a Unix socket is raised to for the
 * transmission phase (the kernel caps it at net.core.wmem_max).  The
 * default, about 208 KiB, is less than one 256 KiB read reply, so every
 * large reply used to stop in sendmsg until the client had read part of
 * it: a context switch each time.  The memory is only used while the
 * client is slower than the server.  TCP sockets are left alone: setting
 * SO_SNDBUF would turn off their automatic sizing.
 */
#define UNIX_SEND_BUFFER (4 << 20)

/* Called once the handshake is done, before the first request. */
void
connection_start_transmission (struct connection *conn)
{
  if (conn->peer_addr.ss_family == AF_UNIX) {
    int size = UNIX_SEND_BUFFER;
    setsockopt (conn->sockout, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  if (conn->recv != raw_recv || conn->rbuf != NULL)
    return;
  /* The buffers are allocated when first needed, so that an idle
   * connection costs no more memory than before.
   */
  conn->read_ahead = true;
}

/* Send the held output, then BUF (LEN bytes, may be 0), in as few
 * sendmsg calls as the socket takes.
 */
static int
send_out_and (struct connection *conn, const void *buf, size_t len)
{
  struct iovec iov[2] = {
    { conn->out, conn->out_len },
    { (void *) buf, len },
  };
  struct msghdr msg = { .msg_iov = iov };

  conn->out_len = 0;
  while (iov[0].iov_len + iov[1].iov_len > 0) {
    ssize_t r;

    msg.msg_iov = iov[0].iov_len ? &iov[0] : &iov[1];
    msg.msg_iovlen = iov[0].iov_len ? 2 : 1;
    r = sendmsg (conn->sockout, &msg, MSG_NOSIGNAL);
    if (r == -1) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return -1;
    }
    for (int i = 0; i < 2 && r > 0; ++i) {
      size_t n = MIN ((size_t) r, iov[i].iov_len);
      iov[i].iov_base = (char *) iov[i].iov_base + n;
      iov[i].iov_len -= n;
      r -= n;
    }
  }
  return 0;
}

/* A piece sent with SEND_MORE (a reply header) is held back and sent in
 * one sendmsg with what follows (the payload), and while the connection
 * is BATCHING whole replies are held too, so that the replies to the
 * requests one read brought in go out together: one system call instead
 * of one per reply.  Called with the connection's write lock held.
 */
static int
raw_send_socket (struct connection *conn, const void *vbuf, size_t len,
                 int flags)
{
  bool batching = __atomic_load_n (&conn->batching, __ATOMIC_RELAXED);

  if (batching && conn->wbuf == NULL && conn->out_len == 0 &&
      (conn->wbuf = malloc (WRITE_BATCH_SIZE)) != NULL) {
    conn->out = conn->wbuf;
    conn->out_cap = WRITE_BATCH_SIZE;
  }
  if (((flags & SEND_MORE) || batching) &&
      conn->out_len + len <= conn->out_cap) {
    memcpy (conn->out + conn->out_len, vbuf, len);
    conn->out_len += len;
    return 0;
  }
  return send_out_and (conn, vbuf, len);
}

int
connection_flush_output (struct connection *conn)
{
  if (conn->out_len == 0 || conn->send != raw_send_socket)
    return 0;
  return send_out_and (conn, NULL, 0);
}

/* Whether a whole request (with its payload) has been read ahead. */
bool
connection_request_buffered (struct connection *conn)
{
  size_t avail = conn->rbuf_len - conn->rbuf_pos;
  struct nbd_request req;

  if (avail < sizeof req)
    return false;
  memcpy (&req, conn->rbuf + conn->rbuf_pos, sizeof req);
  if (be16toh (req.type) == NBD_CMD_WRITE)
    return avail - sizeof req >= be32toh (req.count);
  return true;
}

/* Forget what was read ahead (after NBD_CMD_DISC nothing may follow). */
void
connection_drop_input (struct connection *conn)
{
  conn->rbuf_pos = conn->rbuf_len;
}

/* Whether a request (or part of one) has been read ahead. */
bool
connection_input_pending (struct connection *conn)
{
  return conn->rbuf_pos < conn->rbuf_len;
}

/* Write all LEN bytes to FD (a pipe, or a socket when SIGPIPE is
 * ignored, as it is here).  0, or -1 with errno set.
 */
int
write_all (int fd, const void *vbuf, size_t len)
{
  const char *buf = vbuf;

  while (len > 0) {
    ssize_t r = write (fd, buf, len);
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

static int
raw_send_other (struct connection *conn, const void *vbuf, size_t len,
                int flags)
{
  return write_all (conn->sockout, vbuf, len);
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
  /* A peer address means a socket (and spares a system call). */
  bool sock = (conn->peer_addrlen > 0 && conn->sockout == conn->sockin) ||
    is_socket (conn->sockout);

  conn->recv = raw_recv;
  conn->send = sock ? raw_send_socket : raw_send_other;
  conn->out = conn->held;
  conn->out_cap = sizeof conn->held;
  conn->close = raw_close;
}
