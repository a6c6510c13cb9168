/* SPDX-License-Identifier: BSD-3-Clause
 * The shared listener: the daemon speaks the NBD fixed newstyle option
 * phase itself (nbd-protocol.md "Option haggling"), lists the shared
 * exports (NBD_OPT_LIST), answers NBD_OPT_INFO from the worker's ready
 * data, and hands the client socket to the export's worker when the client
 * picks an export (GO, EXPORT_NAME, or a meta-context option naming it):
 * nbdkit-worker(7) "hand-over", stage "options".  No data is proxied.
 */

#include <config.h>

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>

#include "nbdkitd.h"
#include "nbd-protocol.h"
#include "worker.h"

enum router_state {
  ROUTER_CLIENT_FLAGS,          /* waiting for the 4-byte client flags */
  ROUTER_OPTIONS,               /* reading options */
  ROUTER_WAITING,               /* an export was picked; its worker starts */
  ROUTER_HANDING_OVER,          /* sent to the worker, waiting for its reply */
};

struct router_conn {
  struct context *ctx;
  int fd;
  sd_event_source *source;
  enum router_state state;
  uint32_t client_flags;
  bool structured_replies;
  unsigned char buf[sizeof (struct nbd_new_option) + NBD_MAX_OPTION_LENGTH];
  size_t len;
  struct export *target;        /* ROUTER_WAITING, ROUTER_HANDING_OVER */
};

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
  if (c->fd >= 0)
    close (c->fd);
  free (c);
  context_check_idle (ctx);
}

/* Replies are small; the socket has a send timeout (router_accept). */
static int
send_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;

  while (len > 0) {
    ssize_t n = send (fd, p, len, MSG_NOSIGNAL);
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1)
      return -errno;
    p += n;
    len -= n;
  }
  return 0;
}

static int
send_reply (struct router_conn *c, uint32_t option, uint32_t reply,
            const void *data, size_t len)
{
  struct nbd_fixed_new_option_reply h = {
    .magic = htobe64 (NBD_REP_MAGIC), .option = htobe32 (option),
    .reply = htobe32 (reply), .replylen = htobe32 (len),
  };
  int r = send_all (c->fd, &h, sizeof h);

  if (r == 0 && len)
    r = send_all (c->fd, data, len);
  return r;
}

static int
send_error (struct router_conn *c, uint32_t option, uint32_t reply,
            const char *msg)
{
  return send_reply (c, option, reply, msg, strlen (msg));
}

static struct export *
find_shared (struct context *ctx, const char *name)
{
  struct export *e = export_registry_find (ctx, name);
  return e && e->shared && !e->broken_file ? e : NULL;
}

/* NBD_OPT_LIST: one NBD_REP_SERVER per shared export. */
static int
opt_list (struct router_conn *c, uint32_t option, const unsigned char *data,
          uint32_t len)
{
  int r = 0;

  if (len != 0)
    return send_error (c, option, NBD_REP_ERR_INVALID, "LIST takes no data");
  for (size_t i = 0; r == 0 && i < c->ctx->exports.len; i++) {
    struct export *e = c->ctx->exports.ptr[i];
    const char *desc = e->def.description ? e->def.description : "";
    size_t nlen = strlen (e->def.name), dlen = strlen (desc);
    unsigned char *p;
    uint32_t be;

    if (!e->shared || e->broken_file)
      continue;
    p = malloc (4 + nlen + dlen);
    if (p == NULL)
      return -ENOMEM;
    be = htobe32 (nlen);
    memcpy (p, &be, 4);
    memcpy (p + 4, e->def.name, nlen);
    memcpy (p + 4 + nlen, desc, dlen);
    r = send_reply (c, option, NBD_REP_SERVER, p, 4 + nlen + dlen);
    free (p);
  }
  if (r == 0)
    r = send_reply (c, option, NBD_REP_ACK, NULL, 0);
  return r;
}

/* The name in INFO, GO and the meta-context options: u32 length, name. */
static char *
option_name (const unsigned char *data, uint32_t len, uint32_t *used)
{
  uint32_t nlen;

  if (len < 4)
    return NULL;
  memcpy (&nlen, data, 4);
  nlen = be32toh (nlen);
  if (nlen > NBD_MAX_STRING || nlen > len - 4 || memchr (data + 4, 0, nlen))
    return NULL;
  *used = 4 + nlen;
  return strndup ((const char *) data + 4, nlen);
}

/* NBD_OPT_INFO answered from the worker's ready event. */
static int
opt_info (struct router_conn *c, uint32_t option, struct export *e,
          const unsigned char *data, uint32_t len, uint32_t used)
{
  struct nbd_info_export ie = {
    .info = htobe16 (NBD_INFO_EXPORT), .exportsize = htobe64 (e->info.size),
    .eflags = htobe16 (e->info.eflags),
  };
  bool want_bs = false;
  uint16_t nreq, req;
  int r;

  if (len - used < 2)
    return send_error (c, option, NBD_REP_ERR_INVALID, "short INFO");
  memcpy (&nreq, data + used, 2);
  nreq = be16toh (nreq);
  if (len - used - 2 != nreq * 2u)
    return send_error (c, option, NBD_REP_ERR_INVALID, "bad INFO length");
  for (uint16_t i = 0; i < nreq; i++) {
    memcpy (&req, data + used + 2 + i * 2, 2);
    want_bs |= be16toh (req) == NBD_INFO_BLOCK_SIZE;
  }
  r = send_reply (c, option, NBD_REP_INFO, &ie, sizeof ie);
  if (r == 0 && e->info.description) {
    size_t dlen = strlen (e->info.description);
    unsigned char *p = malloc (2 + dlen);
    if (p == NULL)
      return -ENOMEM;
    p[0] = 0;
    p[1] = NBD_INFO_DESCRIPTION;
    memcpy (p + 2, e->info.description, dlen);
    r = send_reply (c, option, NBD_REP_INFO, p, 2 + dlen);
    free (p);
  }
  if (r == 0 && want_bs && e->info.min_block) {
    struct nbd_info_block_size bs = {
      .info = htobe16 (NBD_INFO_BLOCK_SIZE),
      .minimum = htobe32 (e->info.min_block),
      .preferred = htobe32 (e->info.pref_block),
      .maximum = htobe32 (e->info.max_block),
    };
    r = send_reply (c, option, NBD_REP_INFO, &bs, sizeof bs);
  }
  if (r == 0)
    r = send_reply (c, option, NBD_REP_ACK, NULL, 0);
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

/* Give the socket and the pending option (in c->buf) to the worker. */
static void
router_hand_over (struct router_conn *c)
{
  struct export *e = c->target;
  json_object *args = json_object_new_object ();
  char *option = base64_encode (c->buf, c->len);
  int r;

  json_object_object_add (args, "stage", json_object_new_string ("options"));
  json_object_object_add (args, "client_flags",
                          json_object_new_int64 (c->client_flags));
  json_object_object_add (args, "structured_replies",
                          json_object_new_boolean (c->structured_replies));
  json_object_object_add (args, "option",
                          json_object_new_string (option ? option : ""));
  free (option);
  c->state = ROUTER_HANDING_OVER;
  sd_event_source_set_enabled (c->source, SD_EVENT_OFF);
  r = worker_command (e, "hand-over", args, c->fd, hand_over_reply, c);
  if (r < 0) {
    log_warning (c->ctx, "export '%s': cannot hand a client over: %s",
                 e->def.name, strerror (-r));
    router_conn_free (c);
  }
}

/* The client picked export E with the option in c->buf. */
static int
router_pick (struct router_conn *c, uint32_t option, struct export *e)
{
  c->target = e;
  if (worker_running (e)) {
    router_hand_over (c);
    return 1;
  }
  if (e->worker == NULL && (e->def.start == START_ON_DEMAND ||
                            e->state == EXPORT_INACTIVE) &&
      e->def.start != START_MANUAL) {
    if (worker_start (e) < 0)
      goto unavailable;
  }
  if (e->worker == NULL)
    goto unavailable;
  /* Wait for the worker's ready event (router_export_ready). */
  c->state = ROUTER_WAITING;
  sd_event_source_set_enabled (c->source, SD_EVENT_OFF);
  return 1;

 unavailable:
  c->target = NULL;
  if (option == NBD_OPT_EXPORT_NAME)
    return -ESHUTDOWN;
  return send_error (c, option, NBD_REP_ERR_UNKNOWN, "export is not running");
}

/* One complete option in c->buf.  Returns 1 when the socket has been
 * given away or is waiting, 0 to read the next option, < 0 to close.
 */
static int
router_option (struct router_conn *c)
{
  struct nbd_new_option h;
  const unsigned char *data = c->buf + sizeof h;
  uint32_t option, len, used = 0;
  char *name;
  struct export *e;
  int r;

  memcpy (&h, c->buf, sizeof h);
  option = be32toh (h.option);
  len = be32toh (h.optlen);
  switch (option) {
  case NBD_OPT_ABORT:
    send_reply (c, option, NBD_REP_ACK, NULL, 0);
    return -ECONNRESET;
  case NBD_OPT_LIST:
    return opt_list (c, option, data, len);
  case NBD_OPT_STRUCTURED_REPLY:
    if (len != 0)
      return send_error (c, option, NBD_REP_ERR_INVALID, "no data expected");
    c->structured_replies = true;
    return send_reply (c, option, NBD_REP_ACK, NULL, 0);
  case NBD_OPT_EXPORT_NAME:
    name = strndup ((const char *) data, len);
    if (name == NULL)
      return -ENOMEM;
    e = find_shared (c->ctx, name);
    free (name);
    /* No way to say "unknown" after EXPORT_NAME: close (nbd-protocol.md). */
    return e ? router_pick (c, option, e) : -ENOENT;
  case NBD_OPT_INFO:
  case NBD_OPT_GO:
  case NBD_OPT_LIST_META_CONTEXT:
  case NBD_OPT_SET_META_CONTEXT:
    name = option_name (data, len, &used);
    if (name == NULL)
      return send_error (c, option, NBD_REP_ERR_INVALID, "malformed option");
    e = find_shared (c->ctx, name);
    free (name);
    if (e == NULL)
      return send_error (c, option, NBD_REP_ERR_UNKNOWN, "unknown export");
    if (option == NBD_OPT_INFO && worker_running (e) && e->info.valid)
      return opt_info (c, option, e, data, len, used);
    /* GO and the meta-context options belong to the export's worker,
     * which answers them and everything after.
     */
    r = router_pick (c, option, e);
    return r;
  case NBD_OPT_STARTTLS:
    return send_error (c, option, NBD_REP_ERR_POLICY,
                       "TLS is not available on the shared listener");
  default:
    return send_error (c, option, NBD_REP_ERR_UNSUP, "unsupported option");
  }
}

static int
on_router_readable (sd_event_source *s, int fd, uint32_t revents,
                    void *userdata)
{
  struct router_conn *c = userdata;
  size_t want;
  ssize_t n;
  int r = 0;

  for (;;) {
    if (c->state == ROUTER_CLIENT_FLAGS)
      want = 4;
    else if (c->len < sizeof (struct nbd_new_option))
      want = sizeof (struct nbd_new_option);
    else {
      struct nbd_new_option h;
      memcpy (&h, c->buf, sizeof h);
      if (be64toh (h.version) != NBD_NEW_VERSION ||
          be32toh (h.optlen) > NBD_MAX_OPTION_LENGTH) {
        r = -EPROTO;
        break;
      }
      want = sizeof h + be32toh (h.optlen);
    }
    if (c->len < want) {
      n = recv (fd, c->buf + c->len, want - c->len, MSG_DONTWAIT);
      if (n == -1 && (errno == EAGAIN || errno == EINTR))
        return 0;
      if (n <= 0) {
        r = -ECONNRESET;
        break;
      }
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
    r = router_option (c);
    if (r != 0)
      break;
    c->len = 0;
  }
  if (r < 0)
    router_conn_free (c);
  return 0;
}

static int
on_shared_accept (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  struct context *ctx = userdata;
  struct timeval tv = { .tv_sec = 5 };
  struct nbd_new_handshake hs = {
    .nbdmagic = htobe64 (NBD_MAGIC), .version = htobe64 (NBD_NEW_VERSION),
    .gflags = htobe16 (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
  };
  struct router_conn *c;
  int cfd;

  cfd = accept4 (fd, NULL, NULL, SOCK_CLOEXEC);
  if (cfd == -1)
    return 0;
  setsockopt (cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  c = calloc (1, sizeof *c);
  if (c == NULL || router_conn_vector_append (&ctx->router_conns, c) == -1) {
    free (c);
    close (cfd);
    return 0;
  }
  c->ctx = ctx;
  c->fd = cfd;
  if (send_all (cfd, &hs, sizeof hs) < 0 ||
      sd_event_add_io (ctx->event, &c->source, cfd, EPOLLIN,
                       on_router_readable, c) < 0) {
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
      router_hand_over (c);
      i = (size_t) -1;     /* the vector may have changed */
    }
  }
}

/* E's worker or E itself is gone: drop the clients waiting for it. */
void
router_export_gone (struct export *e)
{
  struct context *ctx = e->ctx;

  for (size_t i = 0; i < ctx->router_conns.len; i++) {
    struct router_conn *c = ctx->router_conns.ptr[i];
    if (c->target == e && (c->state == ROUTER_WAITING ||
                           export_registry_find_path (ctx, e->path) != e)) {
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
