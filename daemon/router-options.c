/* SPDX-License-Identifier: BSD-3-Clause
 * The options the daemon answers on the shared listener (nbd-protocol.md
 * "Option haggling"): NBD_OPT_LIST lists the shared exports, NBD_OPT_INFO
 * is answered from the worker's ready data, and GO, EXPORT_NAME and the
 * meta-context options pick the export whose worker answers them.
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

    if (!e->shared || e->broken_file)
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

  if (name == NULL)
    return -ENOMEM;
  e = find_shared (c->ctx, name);
  free (name);
  return e ? router_pick (c, option, e) : -ENOENT;
}

/* INFO, GO and the meta-context options name an export. */
static int
opt_named (struct router_conn *c, uint32_t option, const unsigned char *data,
           uint32_t len)
{
  uint32_t used = 0;
  char *name = option_name (data, len, &used);
  struct export *e;

  if (name == NULL)
    return router_send_error (c, option, NBD_REP_ERR_INVALID,
                              "malformed option");
  e = find_shared (c->ctx, name);
  free (name);
  if (e == NULL)
    return router_send_error (c, option, NBD_REP_ERR_UNKNOWN,
                              "unknown export");
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
    return router_send_error (c, option, NBD_REP_ERR_POLICY,
                              "TLS is not available on the shared listener");
  default:
    return router_send_error (c, option, NBD_REP_ERR_UNSUP,
                              "unsupported option");
  }
}
