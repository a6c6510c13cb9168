/* SPDX-License-Identifier: BSD-3-Clause
 * The options the daemon answers on the shared listener (nbd-protocol.md
 * "Option haggling"): NBD_OPT_LIST lists the shared exports, NBD_OPT_INFO
 * is answered from the worker's ready data, and GO, EXPORT_NAME and the
 * meta-context options pick the export whose worker answers them.
 *
 * SELECTIVETLS (nbd-protocol.md "NBD_OPT_STARTTLS"): before STARTTLS a
 * client sees only exports it may use in plaintext (tls off or on, and
 * no tls-allow or tls-verify-peer); a tls=require export answers
 * NBD_REP_ERR_TLS_REQD.  After STARTTLS it sees the exports its TLS
 * identity is allowed (tls-allow); another tenant's export does not
 * exist for it (NBD_REP_ERR_UNKNOWN).
 */

#include <config.h>

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

static struct export *
find_shared (struct context *ctx, const char *name)
{
  struct export *e = export_registry_find (ctx, name);
  return e && e->shared && !e->broken_file && !e->removing ? e : NULL;
}

enum access {
  ACCESS_OK,
  ACCESS_TLS_REQUIRED,          /* plaintext client, TLS export */
  ACCESS_HIDDEN,                /* TLS identity not in tls-allow */
  ACCESS_NO_CERTIFICATE,        /* tls-verify-peer, no verified certificate */
};

static bool
identity_allowed (const struct router_conn *c, const struct export *e)
{
  if (e->def.tls_allow.len == 0)
    return true;
  if (c->tls_identity == NULL)
    return false;
  for (size_t i = 0; i < e->def.tls_allow.len; i++)
    if (strcmp (e->def.tls_allow.ptr[i], c->tls_identity) == 0)
      return true;
  return false;
}

/* What this client may do with export E. */
static enum access
export_access (const struct router_conn *c, const struct export *e)
{
  bool verify = e->def.tls != TLS_MODE_OFF && e->def.tls_verify_peer;

  if (c->tls_session == NULL)
    return e->def.tls == TLS_MODE_REQUIRE || e->def.tls_allow.len || verify
      ? ACCESS_TLS_REQUIRED : ACCESS_OK;
  if (!identity_allowed (c, e))
    return ACCESS_HIDDEN;
  if (verify && !c->tls_verified)
    return ACCESS_NO_CERTIFICATE;
  return ACCESS_OK;
}

/* An export the client may not use: the error for INFO, GO and the
 * meta-context options.  NBD_OPT_EXPORT_NAME has no error reply: close.
 */
static int
refuse (struct router_conn *c, uint32_t option, enum access a)
{
  if (option == NBD_OPT_EXPORT_NAME)
    return a == ACCESS_TLS_REQUIRED ? -EACCES : -ENOENT;
  switch (a) {
  case ACCESS_TLS_REQUIRED:
    return router_send_error (c, option, NBD_REP_ERR_TLS_REQD,
                              "this export needs TLS (NBD_OPT_STARTTLS)");
  case ACCESS_NO_CERTIFICATE:
    return router_send_error (c, option, NBD_REP_ERR_POLICY,
                              "this export needs a verified client "
                              "certificate");
  default:
    return router_send_error (c, option, NBD_REP_ERR_UNKNOWN,
                              "unknown export");
  }
}

/* NBD_OPT_STARTTLS: ACK in plaintext, then the handshake (router.c and
 * router-tls.c) once the ACK has gone out.
 */
static int
opt_starttls (struct router_conn *c, uint32_t option, uint32_t len)
{
  int r;

  if (len != 0)
    return router_send_error (c, option, NBD_REP_ERR_INVALID,
                              "STARTTLS takes no data");
  if (c->tls_started)
    return router_send_error (c, option, NBD_REP_ERR_INVALID,
                              "TLS was already negotiated");
  if (!router_tls_available (c->ctx))
    return router_send_error (c, option, NBD_REP_ERR_POLICY,
                              "TLS is not configured on the shared listener "
                              "(nbdkitd --tls-certificates or --tls-psk)");
  r = router_send_reply (c, option, NBD_REP_ACK, NULL, 0);
  if (r == 0) {
    c->tls_started = true;
    c->state = ROUTER_TLS_HANDSHAKE;
  }
  return r;
}

/* NBD_OPT_LIST: one NBD_REP_SERVER per shared export. */
static int
opt_list (struct router_conn *c, uint32_t option, uint32_t len)
{
  int r = 0;

  if (len != 0)
    return router_send_error (c, option, NBD_REP_ERR_INVALID,
                              "LIST takes no data");
  for (size_t i = 0; r == 0 && i < c->ctx->exports.len; i++) {
    struct export *e = c->ctx->exports.ptr[i];
    const char *desc = e->def.description ? e->def.description : "";
    size_t nlen = strlen (e->def.name), dlen = strlen (desc);
    unsigned char *p;
    uint32_t be;

    if (!e->shared || e->broken_file || export_access (c, e) != ACCESS_OK)
      continue;
    p = malloc (4 + nlen + dlen);
    if (p == NULL)
      return -ENOMEM;
    be = htobe32 (nlen);
    memcpy (p, &be, 4);
    memcpy (p + 4, e->def.name, nlen);
    memcpy (p + 4 + nlen, desc, dlen);
    r = router_send_reply (c, option, NBD_REP_SERVER, p, 4 + nlen + dlen);
    free (p);
  }
  if (r == 0)
    r = router_send_reply (c, option, NBD_REP_ACK, NULL, 0);
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

static int
info_description (struct router_conn *c, uint32_t option, const char *desc)
{
  size_t dlen = strlen (desc);
  unsigned char *p = malloc (2 + dlen);
  int r;

  if (p == NULL)
    return -ENOMEM;
  p[0] = 0;
  p[1] = NBD_INFO_DESCRIPTION;
  memcpy (p + 2, desc, dlen);
  r = router_send_reply (c, option, NBD_REP_INFO, p, 2 + dlen);
  free (p);
  return r;
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
    return router_send_error (c, option, NBD_REP_ERR_INVALID, "short INFO");
  memcpy (&nreq, data + used, 2);
  nreq = be16toh (nreq);
  if (len - used - 2 != nreq * 2u)
    return router_send_error (c, option, NBD_REP_ERR_INVALID,
                              "bad INFO length");
  for (uint16_t i = 0; i < nreq; i++) {
    memcpy (&req, data + used + 2 + i * 2, 2);
    want_bs |= be16toh (req) == NBD_INFO_BLOCK_SIZE;
  }
  r = router_send_reply (c, option, NBD_REP_INFO, &ie, sizeof ie);
  if (r == 0 && e->info.description)
    r = info_description (c, option, e->info.description);
  if (r == 0 && want_bs && e->info.min_block) {
    struct nbd_info_block_size bs = {
      .info = htobe16 (NBD_INFO_BLOCK_SIZE),
      .minimum = htobe32 (e->info.min_block),
      .preferred = htobe32 (e->info.pref_block),
      .maximum = htobe32 (e->info.max_block),
    };
    r = router_send_reply (c, option, NBD_REP_INFO, &bs, sizeof bs);
  }
  if (r == 0)
    r = router_send_reply (c, option, NBD_REP_ACK, NULL, 0);
  return r;
}

/* NBD_OPT_EXPORT_NAME: there is no way to say "unknown" after it, so an
 * unknown name closes the connection (nbd-protocol.md).
 */
static int
opt_export_name (struct router_conn *c, uint32_t option,
                 const unsigned char *data, uint32_t len)
{
  char *name = strndup ((const char *) data, len);
  struct export *e;
  enum access a;

  if (name == NULL)
    return -ENOMEM;
  e = find_shared (c->ctx, name);
  free (name);
  if (e == NULL)
    return -ENOENT;
  a = export_access (c, e);
  return a == ACCESS_OK ? router_pick (c, option, e) : refuse (c, option, a);
}

/* INFO, GO and the meta-context options name an export. */
static int
opt_named (struct router_conn *c, uint32_t option, const unsigned char *data,
           uint32_t len)
{
  uint32_t used = 0;
  char *name = option_name (data, len, &used);
  struct export *e;
  enum access a;

  if (name == NULL)
    return router_send_error (c, option, NBD_REP_ERR_INVALID,
                              "malformed option");
  e = find_shared (c->ctx, name);
  free (name);
  if (e == NULL)
    return router_send_error (c, option, NBD_REP_ERR_UNKNOWN,
                              "unknown export");
  if ((a = export_access (c, e)) != ACCESS_OK)
    return refuse (c, option, a);
  if (option == NBD_OPT_INFO && worker_running (e) && e->info.valid)
    return opt_info (c, option, e, data, len, used);
  /* GO and the meta-context options belong to the export's worker,
   * which answers them and everything after.
   */
  return router_pick (c, option, e);
}

/* One complete option in c->buf.  Returns 0 to go on (the state says
 * whether to read another option), < 0 to close the connection.
 */
int
router_option (struct router_conn *c)
{
  struct nbd_new_option h;
  const unsigned char *data = c->buf + sizeof h;
  uint32_t option, len;
  int r;

  memcpy (&h, c->buf, sizeof h);
  option = be32toh (h.option);
  len = be32toh (h.optlen);
  switch (option) {
  case NBD_OPT_ABORT:
    r = router_send_reply (c, option, NBD_REP_ACK, NULL, 0);
    c->state = ROUTER_CLOSING;
    return r;
  case NBD_OPT_LIST:
    return opt_list (c, option, len);
  case NBD_OPT_STRUCTURED_REPLY:
    if (len != 0)
      return router_send_error (c, option, NBD_REP_ERR_INVALID,
                                "no data expected");
    c->structured_replies = true;
    return router_send_reply (c, option, NBD_REP_ACK, NULL, 0);
  case NBD_OPT_EXPORT_NAME:
    return opt_export_name (c, option, data, len);
  case NBD_OPT_INFO:
  case NBD_OPT_GO:
  case NBD_OPT_LIST_META_CONTEXT:
  case NBD_OPT_SET_META_CONTEXT:
    return opt_named (c, option, data, len);
  case NBD_OPT_STARTTLS:
    return opt_starttls (c, option, len);
  default:
    return router_send_error (c, option, NBD_REP_ERR_UNSUP,
                              "unsupported option");
  }
}
