/* SPDX-License-Identifier: BSD-3-Clause
 * The shared listener's connections: the daemon greets each client and
 * speaks the NBD fixed newstyle option phase itself (router-options.c),
 * then hands the client socket to the chosen export's worker
 * (nbdkit-worker(7) "hand-over", stage "options").  No plaintext data is
 * proxied; after STARTTLS (router-tls.c) the worker gets a socketpair
 * and a relay thread keeps the TLS session (router-relay.c).
 *
 * Nothing here blocks the event loop: sockets are non-blocking, replies
 * wait in a per-client buffer (no new option is read while one is
 * pending), each client has --handshake-timeout seconds to pick an export,
 * and at most ROUTER_MAX_CLIENTS are in the option phase at once (the
 * oldest is closed to make room).
 */

#include <config.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "router.h"
#include "worker.h"

/* The replies of one option (NBD_OPT_LIST of every export at most). */
#define ROUTER_OUT_MAX (64 * 1024 * 1024)

static bool
router_reading (const struct router_conn *c)
{
  return c->state == ROUTER_CLIENT_FLAGS || c->state == ROUTER_OPTIONS;
}

static bool
router_output_pending (const struct router_conn *c)
{
  return c->out_off < c->out_len;
}

static void
router_conn_free (struct router_conn *c)
{
  struct context *ctx = c->ctx;

  for (size_t i = 0; i < ctx->router_conns.len; i++)
    if (ctx->router_conns.ptr[i] == c) {
      router_conn_vector_remove (&ctx->router_conns, i);
      break;
    }
  sd_event_source_disable_unref (c->source);
  sd_event_source_disable_unref (c->deadline);
  router_tls_conn_free (c);
  if (c->fd >= 0)
    close (c->fd);
  free (c->out);
  free (c);
  context_check_idle (ctx);
}

/* Queue bytes for the client; router_flush sends them. */
static int
router_queue (struct router_conn *c, const void *data, size_t len)
{
  if (c->out_len - c->out_off + len > ROUTER_OUT_MAX)
    return -ENOBUFS;
  if (c->out_off == c->out_len)
    c->out_off = c->out_len = 0;
  if (c->out_len + len > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    unsigned char *p;
    while (cap < c->out_len + len)
      cap *= 2;
    p = realloc (c->out, cap);
    if (p == NULL)
      return -ENOMEM;
    c->out = p;
    c->out_cap = cap;
  }
  memcpy (c->out + c->out_len, data, len);
  c->out_len += len;
  return 0;
}

int
router_send_reply (struct router_conn *c, uint32_t option, uint32_t reply,
                   const void *data, size_t len)
{
  struct nbd_fixed_new_option_reply h = {
    .magic = htobe64 (NBD_REP_MAGIC), .option = htobe32 (option),
    .reply = htobe32 (reply), .replylen = htobe32 (len),
  };
  int r = router_queue (c, &h, sizeof h);

  if (r == 0 && len)
    r = router_queue (c, data, len);
  return r;
}

int
router_send_error (struct router_conn *c, uint32_t option, uint32_t reply,
                   const char *msg)
{
  return router_send_reply (c, option, reply, msg, strlen (msg));
}

/* Send what the socket takes now.  Returns 0 or a negative errno. */
static int
router_flush (struct router_conn *c)
{
  while (router_output_pending (c)) {
    ssize_t n = router_io_send (c, c->out + c->out_off,
                                c->out_len - c->out_off);
    if (n < 0)
      return n == -EAGAIN ? 0 : n;
    c->out_off += n;
  }
  return 0;
}

/* Wait for output room while replies are pending, else for the next
 * option; nothing while a worker is being waited for.
 */
static int
router_update_events (struct router_conn *c)
{
  uint32_t events = 0;
  int r;

  if (c->source == NULL)
    return 0;
  if (router_output_pending (c))
    events = EPOLLOUT;
  else if (router_reading (c))
    events = EPOLLIN;
  else if (c->state == ROUTER_TLS_HANDSHAKE)
    events = c->tls_wait;
  if (events == 0)
    return sd_event_source_set_enabled (c->source, SD_EVENT_OFF);
  r = sd_event_source_set_io_events (c->source, events);
  if (r >= 0)
    r = sd_event_source_set_enabled (c->source, SD_EVENT_ON);
  return r;
}

static char *
base64_encode (const unsigned char *in, size_t len)
{
  static const char tbl[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc ((len + 2) / 3 * 4 + 1), *p = out;

  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = in[i] << 16;
    if (i + 1 < len)
      v |= in[i + 1] << 8;
    if (i + 2 < len)
      v |= in[i + 2];
    *p++ = tbl[(v >> 18) & 63];
    *p++ = tbl[(v >> 12) & 63];
    *p++ = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
    *p++ = i + 2 < len ? tbl[v & 63] : '=';
  }
  *p = '\0';
  return out;
}

static void
hand_over_reply (struct export *e, json_object *reply, void *opaque)
{
  struct router_conn *c = opaque;
  json_object *ok;

  if (reply == NULL || !json_object_object_get_ex (reply, "ok", &ok) ||
      !json_object_get_boolean (ok))
    log_warning (c->ctx, "export '%s': the worker refused a client: %s",
                 e->def.name, reply ? json_object_to_json_string (reply)
                 : "the worker went away");
  router_conn_free (c);
  export_idle_check (e);
}

static void
router_handed_over (struct router_conn *c)
{
  c->state = ROUTER_HANDING_OVER;
  c->source = sd_event_source_disable_unref (c->source);
  c->deadline = sd_event_source_disable_unref (c->deadline);
  if (c->fd >= 0)
    close (c->fd);
  c->fd = -1;
}

/* A TLS client: the worker gets one end of a socketpair, marked as
 * already TLS with the client's identity (nbdkit-worker(7) "hand-over"),
 * and a relay thread takes the session, the client socket and the other
 * end.  Takes ARGS.
 */
static int
router_hand_over_tls (struct router_conn *c, json_object *args)
{
  int sv[2], r;

  json_object_object_add (args, "tls", json_object_new_boolean (true));
  if (c->tls_identity)
    json_object_object_add (args, "tls_identity",
                            json_object_new_string (c->tls_identity));
  /* The worker's end blocks, the relay's does not. */
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1 ||
      fcntl (sv[0], F_SETFL, O_NONBLOCK) == -1) {
    r = -errno;
    json_object_put (args);
    return r;
  }
  r = worker_command (c->target, "hand-over", args, sv[1], hand_over_reply, c);
  close (sv[1]);
  if (r < 0) {
    close (sv[0]);
    return r;
  }
  r = router_relay_start (c->tls_session, c->tls_creds, c->fd, sv[0]);
  c->tls_session = NULL;
  c->tls_creds = NULL;
  c->fd = -1;
  router_handed_over (c);
  if (r < 0)
    log_warning (c->ctx, "shared listener: no relay for a TLS client: %s",
                 strerror (-r));
  return 0;
}

/* Give the socket and the pending option (in c->buf) to the worker.  The
 * output is empty: nothing the daemon said is left behind.  On error the
 * caller closes the connection.
 */
static int
router_hand_over (struct router_conn *c)
{
  struct export *e = c->target;
  json_object *args = json_object_new_object ();
  char *option = base64_encode (c->buf, c->len);
  int flags, r;

  if (args == NULL || option == NULL) {
    json_object_put (args);
    free (option);
    return -ENOMEM;
  }
  json_object_object_add (args, "stage", json_object_new_string ("options"));
  json_object_object_add (args, "client_flags",
                          json_object_new_int64 (c->client_flags));
  json_object_object_add (args, "structured_replies",
                          json_object_new_boolean (c->structured_replies));
  json_object_object_add (args, "option", json_object_new_string (option));
  free (option);
  if (c->tls_session)
    return router_hand_over_tls (c, args);
  /* The worker does blocking I/O on the socket it is given. */
  flags = fcntl (c->fd, F_GETFL);
  if (flags == -1 || fcntl (c->fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
    json_object_put (args);
    return -errno;
  }
  r = worker_command (e, "hand-over", args, c->fd, hand_over_reply, c);
  if (r < 0)
    return r;
  /* The message in flight holds the socket now. */
  router_handed_over (c);
  return 0;
}

/* The client picked export E with the option in c->buf. */
int
router_pick (struct router_conn *c, uint32_t option, struct export *e)
{
  struct context *ctx = c->ctx;

  c->target = e;
  if (worker_running (e))
    return router_hand_over (c);
  if (e->worker == NULL && (e->def.start == START_ON_DEMAND ||
                            e->state == EXPORT_INACTIVE) &&
      e->def.start != START_MANUAL) {
    if (worker_start (e) < 0)
      goto unavailable;
  }
  if (e->worker == NULL)
    goto unavailable;
  /* Wait for the worker's ready event (router_export_ready), as long as
   * a client may take for its own handshake.
   */
  c->state = ROUTER_WAITING;
  if (c->deadline && ctx->config.handshake_timeout)
    sd_event_source_set_time_relative (c->deadline,
                                       ctx->config.handshake_timeout *
                                       UINT64_C (1000000));
  return 0;

 unavailable:
  c->target = NULL;
  if (option == NBD_OPT_EXPORT_NAME)
    return -ESHUTDOWN;
  return router_send_error (c, option, NBD_REP_ERR_UNKNOWN,
                            "export is not running");
}

/* The length of what is being read: the client flags, an option header,
 * or a whole option.
 */
static int
router_want (struct router_conn *c, size_t *want)
{
  struct nbd_new_option h;

  if (c->state == ROUTER_CLIENT_FLAGS) {
    *want = 4;
    return 0;
  }
  if (c->len < sizeof h) {
    *want = sizeof h;
    return 0;
  }
  memcpy (&h, c->buf, sizeof h);
  if (be64toh (h.version) != NBD_NEW_VERSION ||
      be32toh (h.optlen) > NBD_MAX_OPTION_LENGTH)
    return -EPROTO;
  *want = sizeof h + be32toh (h.optlen);
  return 0;
}

/* Read and answer options while the client sends them and nothing is
 * waiting to go out.  Returns 0 or a negative errno (close).
 */
static int
router_read (struct router_conn *c)
{
  size_t want;
  ssize_t n;
  int r;

  while (router_reading (c) && !router_output_pending (c)) {
    if ((r = router_want (c, &want)) < 0)
      return r;
    if (c->len < want) {
      n = router_io_recv (c, c->buf + c->len, want - c->len);
      if (n == -EAGAIN)
        return 0;
      if (n <= 0)
        return n == 0 ? -ECONNRESET : n;
      c->len += n;
      continue;
    }
    if (c->state == ROUTER_CLIENT_FLAGS) {
      uint32_t f;
      memcpy (&f, c->buf, 4);
      c->client_flags = be32toh (f);
      c->state = ROUTER_OPTIONS;
      c->len = 0;
      continue;
    }
    if ((r = router_option (c)) < 0)
      return r;
    if (c->state == ROUTER_HANDING_OVER)
      return 0;
    if (c->state != ROUTER_WAITING)
      c->len = 0;
  }
  return 0;
}

/* After the plaintext ACK of STARTTLS has gone out: the handshake.
 * Returns 1 when the option phase goes on over TLS.
 */
static int
router_step_tls (struct router_conn *c)
{
  int r;

  if (c->state != ROUTER_TLS_HANDSHAKE || router_output_pending (c))
    return 0;
  r = router_tls_handshake (c, &c->tls_wait);
  if (r <= 0)
    return r;
  /* nbd-protocol.md "NBD_OPT_STARTTLS": nothing agreed before the
   * upgrade survives it.
   */
  c->structured_replies = false;
  c->state = ROUTER_OPTIONS;
  c->len = 0;
  return 1;
}

/* Everything the client allows now: send, handshake, read options.
 * Returns 0 or a negative errno (close).
 */
static int
router_step (struct router_conn *c)
{
  int r = router_flush (c);

  for (;;) {
    if (r == 0)
      r = router_step_tls (c);
    if (r < 0)
      return r;
    r = 0;
    if (router_reading (c))
      r = router_read (c);
    /* router_read may have handed the socket over (c->fd == -1). */
    if (r == 0 && c->fd >= 0)
      r = router_flush (c);
    if (r < 0 || c->fd < 0 || router_output_pending (c))
      return r;
    /* Records GnuTLS has already read, or the handshake to begin. */
    if (!(router_reading (c) && router_io_pending (c)) &&
        !(c->state == ROUTER_TLS_HANDSHAKE && c->tls_session == NULL))
      return 0;
  }
}

static int
on_router_io (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  struct router_conn *c = userdata;
  int r = router_step (c);

  if (r == 0 && c->state == ROUTER_CLOSING && !router_output_pending (c))
    r = -ECONNRESET;
  if (r == 0 && c->state != ROUTER_HANDING_OVER)
    r = router_update_events (c);
  if (r < 0)
    router_conn_free (c);
  return 0;
}

static int
on_router_deadline (sd_event_source *s, uint64_t usec, void *userdata)
{
  struct router_conn *c = userdata;

  log_info (c->ctx, "shared listener: a client %s within %u s "
            "(--handshake-timeout), closing it",
            c->state == ROUTER_WAITING ? "waited for a worker to start"
            : "picked no export", c->ctx->config.handshake_timeout);
  router_conn_free (c);
  return 0;
}

/* Make room for one more client in the option phase: close the oldest
 * one still talking (it has had the longest to pick an export).
 */
static bool
router_make_room (struct context *ctx)
{
  size_t n = 0;

  for (size_t i = 0; i < ctx->router_conns.len; i++)
    n += ctx->router_conns.ptr[i]->state != ROUTER_HANDING_OVER;
  if (n < ROUTER_MAX_CLIENTS)
    return true;
  for (size_t i = 0; i < ctx->router_conns.len; i++) {
    struct router_conn *c = ctx->router_conns.ptr[i];
    if (router_reading (c) || c->state == ROUTER_CLOSING ||
        c->state == ROUTER_TLS_HANDSHAKE) {
      log_warning (ctx, "shared listener: %d clients in the option phase, "
                   "closing the oldest", ROUTER_MAX_CLIENTS);
      router_conn_free (c);
      return true;
    }
  }
  return false;
}

static int
on_shared_accept (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  struct context *ctx = userdata;
  struct nbd_new_handshake hs = {
    .nbdmagic = htobe64 (NBD_MAGIC), .version = htobe64 (NBD_NEW_VERSION),
    .gflags = htobe16 (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
  };
  struct router_conn *c;
  int cfd, r;

  cfd = accept4 (fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (cfd == -1)
    return 0;
  if (!router_make_room (ctx)) {
    close (cfd);
    return 0;
  }
  c = calloc (1, sizeof *c);
  if (c == NULL || router_conn_vector_append (&ctx->router_conns, c) == -1) {
    free (c);
    close (cfd);
    return 0;
  }
  c->ctx = ctx;
  c->fd = cfd;
  r = router_queue (c, &hs, sizeof hs);
  if (r >= 0)
    r = sd_event_add_io (ctx->event, &c->source, cfd, EPOLLOUT,
                         on_router_io, c);
  if (r >= 0 && ctx->config.handshake_timeout)
    r = sd_event_add_time_relative (ctx->event, &c->deadline, CLOCK_MONOTONIC,
                                    ctx->config.handshake_timeout *
                                    UINT64_C (1000000), 0,
                                    on_router_deadline, c);
  if (r >= 0)
    r = router_flush (c);
  if (r >= 0)
    r = router_update_events (c);
  if (r < 0) {
    router_conn_free (c);
    return 0;
  }
  context_check_idle (ctx);
  return 0;
}

int
router_listen (struct context *ctx, size_t idx)
{
  struct listener *l = &ctx->shared.ptr[idx];

  return sd_event_add_io (ctx->event, &l->watch, l->fd, EPOLLIN,
                          on_shared_accept, ctx);
}

void
router_free_all (struct context *ctx)
{
  while (ctx->router_conns.len)
    router_conn_free (ctx->router_conns.ptr[0]);
  router_conn_vector_reset (&ctx->router_conns);
}

/* E's worker is ready: hand over the clients that picked it. */
void
router_export_ready (struct export *e)
{
  struct context *ctx = e->ctx;

  for (size_t i = 0; i < ctx->router_conns.len; i++) {
    struct router_conn *c = ctx->router_conns.ptr[i];
    if (c->target == e && c->state == ROUTER_WAITING) {
      if (router_hand_over (c) < 0)
        router_conn_free (c);
      i = (size_t) -1;     /* the vector may have changed */
    }
  }
}

/* E's worker or E itself is gone: drop the clients waiting for it.  A
 * client being handed over is freed when its command fails (the
 * worker's pending commands fail when it goes).
 */
void
router_export_gone (struct export *e)
{
  struct context *ctx = e->ctx;

  for (size_t i = 0; i < ctx->router_conns.len; i++) {
    struct router_conn *c = ctx->router_conns.ptr[i];
    if (c->target == e && c->state == ROUTER_WAITING) {
      router_conn_free (c);
      i = (size_t) -1;
    }
  }
}

unsigned
router_active (const struct context *ctx)
{
  return ctx->router_conns.len;
}

bool
router_has_pending (const struct export *e)
{
  for (size_t i = 0; i < e->ctx->router_conns.len; i++)
    if (e->ctx->router_conns.ptr[i]->target == e)
      return true;
  return false;
}
