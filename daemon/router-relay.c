/* SPDX-License-Identifier: BSD-3-Clause
 * The relay of a shared-listener TLS client: GnuTLS cannot give a live
 * session to another process and the kernel here has no kTLS, so the
 * worker gets one end of a socketpair (hand-over with "tls": true) and
 * a thread of the daemon owns the session from then on, moving
 * decrypted bytes between the client and the worker.  It never touches
 * the event loop; it ends, closing both sides, when either side closes
 * or fails.
 */

#include <config.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "router.h"

#if HAVE_GNUTLS

#include <gnutls/gnutls.h>

/* Each direction's buffer: several TLS records (16 KiB each) and a
 * whole NBD request of a typical size, so big reads need few wake-ups.
 */
#define RELAY_BUFFER (1024 * 1024)

struct relay_buffer {
  unsigned char *data;
  size_t off, len;              /* pending: data[off .. len) */
  bool eof;                     /* the source has closed */
};

struct relay {
  gnutls_session_t session;
  struct router_tls *creds;
  int client_fd, worker_fd;
  struct relay_buffer to_worker, to_client;
  bool worker_shut;             /* SHUT_WR sent to the worker */
};

static bool
buffer_pending (const struct relay_buffer *b)
{
  return b->off < b->len;
}

static void
buffer_consumed (struct relay_buffer *b, size_t n)
{
  b->off += n;
  if (b->off == b->len)
    b->off = b->len = 0;
}

/* Client -> to_worker.  Returns 1 on progress, 0 if nothing to do, -1
 * on a fatal error.
 */
static int
from_client (struct relay *r)
{
  struct relay_buffer *b = &r->to_worker;
  ssize_t n;

  if (b->eof || b->len == RELAY_BUFFER)
    return 0;
  n = gnutls_record_recv (r->session, b->data + b->len, RELAY_BUFFER - b->len);
  if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
    return 0;
  if (n <= 0) {                 /* close_notify, or the client went away */
    b->eof = true;
    return 1;
  }
  b->len += n;
  return 1;
}

static int
to_worker (struct relay *r)
{
  struct relay_buffer *b = &r->to_worker;
  ssize_t n;

  if (!buffer_pending (b)) {
    if (b->eof && !r->worker_shut) {
      shutdown (r->worker_fd, SHUT_WR);
      r->worker_shut = true;
      return 1;
    }
    return 0;
  }
  n = send (r->worker_fd, b->data + b->off, b->len - b->off,
            MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n == -1)
    return errno == EAGAIN || errno == EINTR ? 0 : -1;
  buffer_consumed (b, n);
  return 1;
}

static int
from_worker (struct relay *r)
{
  struct relay_buffer *b = &r->to_client;
  ssize_t n;

  if (b->eof || b->len == RELAY_BUFFER)
    return 0;
  n = recv (r->worker_fd, b->data + b->len, RELAY_BUFFER - b->len,
            MSG_DONTWAIT);
  if (n == -1)
    return errno == EAGAIN || errno == EINTR ? 0 : -1;
  if (n == 0)
    b->eof = true;
  b->len += n;
  return 1;
}

/* After GNUTLS_E_AGAIN the same bytes are offered again, as GnuTLS
 * requires: nothing moves the pending range in between.
 */
static int
to_client (struct relay *r)
{
  struct relay_buffer *b = &r->to_client;
  ssize_t n;

  if (!buffer_pending (b))
    return 0;
  n = gnutls_record_send (r->session, b->data + b->off, b->len - b->off);
  if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
    return 0;
  if (n < 0)
    return -1;
  buffer_consumed (b, n);
  return 1;
}

/* Wait until one of the four steps can go on. */
static void
relay_wait (struct relay *r)
{
  struct pollfd p[2] = {
    { .fd = r->client_fd }, { .fd = r->worker_fd },
  };

  if (buffer_pending (&r->to_client))
    p[0].events |= POLLOUT;
  if (!r->to_worker.eof && r->to_worker.len < RELAY_BUFFER)
    p[0].events |= POLLIN;
  if (buffer_pending (&r->to_worker))
    p[1].events |= POLLOUT;
  if (!r->to_client.eof && r->to_client.len < RELAY_BUFFER)
    p[1].events |= POLLIN;
  /* A handshake message (e.g. a TLS 1.3 key update) can make a send
   * wait for input: GnuTLS says which way it is blocked.
   */
  if (buffer_pending (&r->to_client) &&
      gnutls_record_get_direction (r->session) == 0)
    p[0].events |= POLLIN;
  /* A closed side would report POLLHUP at once, for ever. */
  for (int i = 0; i < 2; i++)
    if (p[i].events == 0)
      p[i].fd = -1;
  while (poll (p, 2, -1) == -1 && errno == EINTR)
    ;
}

static void
relay_free (struct relay *r)
{
  gnutls_deinit (r->session);
  router_tls_release (r->creds);
  close (r->client_fd);
  close (r->worker_fd);
  free (r->to_worker.data);
  free (r->to_client.data);
  free (r);
}

static void *
relay_thread (void *arg)
{
  struct relay *r = arg;

  for (;;) {
    int a = from_client (r), b = to_worker (r);
    int c = from_worker (r), d = to_client (r);

    if (a < 0 || b < 0 || c < 0 || d < 0)
      break;
    /* The worker has closed and everything it said has gone out. */
    if (r->to_client.eof && !buffer_pending (&r->to_client)) {
      gnutls_bye (r->session, GNUTLS_SHUT_WR);
      break;
    }
    if (a == 0 && b == 0 && c == 0 && d == 0)
      relay_wait (r);
  }
  relay_free (r);
  return NULL;
}

static void
set_buffer_sizes (int fd)
{
  int size = 4 * 1024 * 1024;

  setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

int
router_relay_start (void *session, struct router_tls *creds, int client_fd,
                    int worker_fd)
{
  struct relay *r = calloc (1, sizeof *r);
  pthread_attr_t attrs;
  pthread_t thread;
  int err;

  if (r == NULL)
    goto nomem;
  r->session = session;
  r->creds = creds;
  r->client_fd = client_fd;
  r->worker_fd = worker_fd;
  r->to_worker.data = malloc (RELAY_BUFFER);
  r->to_client.data = malloc (RELAY_BUFFER);
  if (r->to_worker.data == NULL || r->to_client.data == NULL)
    goto nomem;
  set_buffer_sizes (worker_fd);
  pthread_attr_init (&attrs);
  pthread_attr_setdetachstate (&attrs, PTHREAD_CREATE_DETACHED);
  err = pthread_create (&thread, &attrs, relay_thread, r);
  pthread_attr_destroy (&attrs);
  if (err == 0)
    return 0;
  relay_free (r);
  return -err;

 nomem:
  if (r) {
    free (r->to_worker.data);
    free (r->to_client.data);
    free (r);
  }
  gnutls_deinit (session);
  router_tls_release (creds);
  close (client_fd);
  close (worker_fd);
  return -ENOMEM;
}

#endif /* HAVE_GNUTLS */
