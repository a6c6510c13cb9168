/* SPDX-License-Identifier: BSD-3-Clause
 * Fixed newstyle negotiation (nbd-protocol.md "Fixed newstyle
 * negotiation", "Option types"): one handler per option, chosen by a
 * switch, until EXPORT_NAME or a successful GO ends the option phase
 * (the replies are built in handshake-replies.c).  The greeting and the
 * option loop are separate steps and the negotiated state lives in
 * struct connection, so a supervisor can hand a client over in the
 * middle (nbdkit-worker(7)).
 */

#include <config.h>

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "cleanup.h"
#include "nbd-protocol.h"

/* A client may not haggle forever. */
#define MAX_OPTIONS 256

/* Options longer than this are refused without being stored. */
#define MAX_DISCARDED_OPTION_LENGTH (16 * 1024 * 1024)

/* Handlers return 0 to read the next option (as option_reply_error
 * does), 1 when the transmission phase starts, -1 to close the
 * connection.
 */
#define NEXT_OPTION 0
#define START_TRANSMISSION 1

/* A string item (name or query) within option data: 32-bit length then
 * bytes.  Advances *POS; returns -1 if it runs past LEN.
 */
static int
get_string (const char *data, uint32_t len, uint32_t *pos,
            const char **str, uint32_t *slen)
{
  uint32_t n;

  if (len - *pos < 4)
    return -1;
  memcpy (&n, data + *pos, 4);
  n = be32toh (n);
  *pos += 4;
  if (n > len - *pos)
    return -1;
  *str = data + *pos;
  *slen = n;
  *pos += n;
  return 0;
}

/* Resolve the client's export name: "" means the default export. */
static const char *
canonical_export_name (const char *name)
{
  if (*name)
    return name;
  return backend_default_export (top, config.readonly);
}

static int
opt_export_name (struct connection *conn, const char *data, uint32_t len)
{
  bool no_zeroes = conn->client_flags & NBD_FLAG_C_NO_ZEROES;
  struct nbd_export_name_reply reply;
  CLEANUP_FREE char *name = strndup (data, len);
  const char *canonical;

  if (name == NULL) {
    nbdkit_error ("strndup: %m");
    return -1;
  }
  if (len > NBD_MAX_STRING || strlen (name) != len) {
    nbdkit_error ("NBD_OPT_EXPORT_NAME: export name is too long or "
                  "contains a NUL byte");
    return -1;
  }
  canonical = canonical_export_name (name);
  if (canonical == NULL) {
    nbdkit_error ("NBD_OPT_EXPORT_NAME: there is no default export");
    return -1;
  }
  /* No way to send an error: a failure closes the connection. */
  if (protocol_open_export (conn, canonical) == -1)
    return -1;
  if (conn->meta_context_exportname &&
      strcmp (conn->meta_context_exportname, name) != 0)
    conn->meta_context_base_allocation = false;

  connection_limits_handshake_end (conn);
  memset (&reply, 0, sizeof reply);
  reply.exportsize = htobe64 (conn->exportsize);
  reply.eflags = htobe16 (conn->eflags);
  if (conn->send (conn, &reply,
                  no_zeroes ? offsetof (struct nbd_export_name_reply, zeroes)
                  : sizeof reply, 0) == -1) {
    nbdkit_error ("write reply to NBD_OPT_EXPORT_NAME: %m");
    return -1;
  }
  return START_TRANSMISSION;
}

static int
opt_list (struct connection *conn, uint32_t option, uint32_t len)
{
  struct nbdkit_exports *exports;
  size_t i;
  int r = NEXT_OPTION;

  if (len != 0)
    return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                               "NBD_OPT_LIST must not have data");
  exports = nbdkit_exports_new ();
  if (exports == NULL)
    return -1;
  if (backend_list_exports (top, config.readonly, exports) == -1) {
    nbdkit_exports_free (exports);
    return option_reply_error (conn, option, NBD_REP_ERR_PLATFORM,
                               "the plugin could not list its exports");
  }
  for (i = 0; i < nbdkit_exports_count (exports); ++i) {
    const struct nbdkit_export e = nbdkit_get_export (exports, i);
    size_t nlen = strlen (e.name);
    size_t dlen = e.description ? strlen (e.description) : 0;
    CLEANUP_FREE char *buf = malloc (4 + nlen + dlen);
    uint32_t n = htobe32 (nlen);

    if (buf == NULL) {
      nbdkit_error ("malloc: %m");
      r = -1;
      break;
    }
    memcpy (buf, &n, 4);
    memcpy (buf + 4, e.name, nlen);
    if (dlen)
      memcpy (buf + 4 + nlen, e.description, dlen);
    if (option_reply (conn, option, NBD_REP_SERVER, buf, 4 + nlen + dlen)) {
      r = -1;
      break;
    }
  }
  nbdkit_exports_free (exports);
  if (r == NEXT_OPTION && option_reply_ack (conn, option) == -1)
    r = -1;
  return r;
}

/* NBD_OPT_INFO and NBD_OPT_GO share their format and replies. */
static int
opt_info_go (struct connection *conn, uint32_t option,
             const char *data, uint32_t len)
{
  uint32_t pos = 0, nlen, i;
  const char *name_data;
  uint16_t ninfos;
  bool want_name = false, want_description = false, want_block_size = false;
  CLEANUP_FREE char *name = NULL;
  const char *canonical, *description;

  if (get_string (data, len, &pos, &name_data, &nlen) == -1 ||
      len - pos < 2)
    return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                               "%s: option data is too short",
                               nbd_option_name (option));
  memcpy (&ninfos, data + pos, 2);
  ninfos = be16toh (ninfos);
  pos += 2;
  if ((uint64_t) len - pos != 2 * (uint64_t) ninfos)
    return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                               "%s: the number of information requests "
                               "does not match the option length",
                               nbd_option_name (option));
  for (i = 0; i < ninfos; ++i) {
    uint16_t type;
    memcpy (&type, data + pos + 2 * i, 2);
    switch (be16toh (type)) {
    case NBD_INFO_NAME: want_name = true; break;
    case NBD_INFO_DESCRIPTION: want_description = true; break;
    case NBD_INFO_BLOCK_SIZE: want_block_size = true; break;
    default: break;             /* NBD_INFO_EXPORT is always sent */
    }
  }

  if (nlen > NBD_MAX_STRING)
    return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                               "export name is longer than %d bytes",
                               NBD_MAX_STRING);
  name = strndup (name_data, nlen);
  if (name == NULL) {
    nbdkit_error ("strndup: %m");
    return -1;
  }
  if (strlen (name) != nlen)
    return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                               "export name contains a NUL byte");
  canonical = canonical_export_name (name);
  if (canonical == NULL)
    return option_reply_error (conn, option, NBD_REP_ERR_UNKNOWN,
                               "there is no default export");
  if (protocol_open_export (conn, canonical) == -1)
    return option_reply_error (conn, option, NBD_REP_ERR_UNKNOWN,
                               "export '%s' could not be opened "
                               "(see the server log)", canonical);

  if (option_reply_info_export (conn, option) == -1)
    goto fail;
  if ((want_name || strcmp (canonical, name) != 0) &&
      option_reply_info_string (conn, option, NBD_INFO_NAME,
                                canonical) == -1)
    goto fail;
  if (want_description) {
    lock_request ();
    description = backend_export_description (conn->top_context);
    unlock_request ();
    if (description &&
        option_reply_info_string (conn, option, NBD_INFO_DESCRIPTION,
                                  description) == -1)
      goto fail;
  }
  if ((want_block_size || conn->top_context->minimum_block_size) &&
      option_reply_info_block_size (conn, option) == -1)
    goto fail;
  if (option == NBD_OPT_GO)
    connection_limits_handshake_end (conn);
  if (option_reply_ack (conn, option) == -1)
    goto fail;

  if (option == NBD_OPT_INFO) {
    protocol_close_export (conn);
    return NEXT_OPTION;
  }
  /* Block status only for the export named in SET_META_CONTEXT. */
  if (conn->meta_context_exportname &&
      strcmp (conn->meta_context_exportname, name) != 0)
    conn->meta_context_base_allocation = false;
  return START_TRANSMISSION;

 fail:
  protocol_close_export (conn);
  return -1;
}

static int
opt_structured_reply (struct connection *conn, uint32_t option, uint32_t len)
{
  if (len != 0)
    return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                               "NBD_OPT_STRUCTURED_REPLY must not have data");
  if (config.no_sr)
    return option_reply_error (conn, option, NBD_REP_ERR_UNSUP,
                               "structured replies are disabled (--no-sr)");
  if (conn->structured_replies)
    return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                               "structured replies were already negotiated");
  if (option_reply_ack (conn, option) == -1)
    return -1;
  conn->structured_replies = true;
  return NEXT_OPTION;
}

/* The context id of base:allocation (any nonzero value will do). */
#define BASE_ALLOCATION_ID 1

/* NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT (nbd-protocol.md
 * "Metadata querying").  Only base:allocation exists here.
 */
static int
opt_meta_context (struct connection *conn, uint32_t option,
                  const char *data, uint32_t len)
{
  bool list = option == NBD_OPT_LIST_META_CONTEXT;
  uint32_t pos = 0, nlen, nqueries, qlen, i;
  const char *name, *query;
  bool match = false;

  if (!conn->structured_replies)
    return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                               "%s requires structured replies to be "
                               "negotiated first", nbd_option_name (option));
  if (!list) {
    /* SET replaces the previous selection even when it fails. */
    conn->meta_context_base_allocation = false;
    free (conn->meta_context_exportname);
    conn->meta_context_exportname = NULL;
  }
  if (get_string (data, len, &pos, &name, &nlen) == -1 || len - pos < 4)
    return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                               "%s: option data is too short",
                               nbd_option_name (option));
  if (nlen > NBD_MAX_STRING)
    return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                               "export name is longer than %d bytes",
                               NBD_MAX_STRING);
  memcpy (&nqueries, data + pos, 4);
  nqueries = be32toh (nqueries);
  pos += 4;

  /* Check the whole request before replying to any of it. */
  {
    uint32_t p = pos;
    for (i = 0; i < nqueries; ++i)
      if (get_string (data, len, &p, &query, &qlen) == -1)
        return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                                   "%s: query %" PRIu32 " runs past the "
                                   "end of the option",
                                   nbd_option_name (option), i);
      else if (qlen > NBD_MAX_STRING)
        /* nbd-protocol.md "Metadata querying": strings are at most
         * 4096 bytes.
         */
        return option_reply_error (conn, option, NBD_REP_ERR_TOO_BIG,
                                   "%s: query %" PRIu32 " is longer than "
                                   "%d bytes", nbd_option_name (option), i,
                                   NBD_MAX_STRING);
    if (p != len)
      return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                                 "%s: trailing data after the queries",
                                 nbd_option_name (option));
  }

  if (list && nqueries == 0)
    match = true;               /* list everything available */
  for (i = 0; i < nqueries; ++i) {
    get_string (data, len, &pos, &query, &qlen);
    if (qlen == strlen ("base:allocation") &&
        memcmp (query, "base:allocation", qlen) == 0)
      match = true;
    else if (list && qlen == strlen ("base:") &&
             memcmp (query, "base:", qlen) == 0)
      match = true;             /* the namespace wildcard */
    /* Anything else names a context we do not have: ignored. */
  }

  if (match &&
      option_reply_meta_context (conn, option,
                                 list ? 0 : BASE_ALLOCATION_ID,
                                 "base:allocation") == -1)
    return -1;
  if (!list && match) {
    conn->meta_context_base_allocation = true;
    conn->meta_context_exportname = strndup (name, nlen);
    if (conn->meta_context_exportname == NULL) {
      nbdkit_error ("strndup: %m");
      return -1;
    }
  }
  if (option_reply_ack (conn, option) == -1)
    return -1;
  return NEXT_OPTION;
}

static int
opt_starttls (struct connection *conn, uint32_t option, uint32_t len)
{
  if (len != 0)
    return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                               "NBD_OPT_STARTTLS must not have data");
  if (conn->using_tls)
    return option_reply_error (conn, option, NBD_REP_ERR_INVALID,
                               "TLS was already negotiated");
  if (config.tls == TLS_OFF)
    return option_reply_error (conn, option, HAVE_GNUTLS
                               ? NBD_REP_ERR_POLICY : NBD_REP_ERR_UNSUP,
                               "TLS is not enabled on this server");
  if (option_reply_ack (conn, option) == -1)
    return -1;
  if (tls_upgrade (conn) == -1)
    return -1;
  /* nbd-protocol.md: no negotiation state survives STARTTLS. */
  conn->structured_replies = false;
  conn->meta_context_base_allocation = false;
  free (conn->meta_context_exportname);
  conn->meta_context_exportname = NULL;
  conn->default_exportname = NULL;
  return NEXT_OPTION;
}

/* Option bytes come from what a supervisor handed over first (see
 * nbdkit-worker(7) "hand-over"), then from the socket, so a handed-over
 * option is read exactly as if it had come from the client.
 */
static int
option_recv (struct connection *conn, void *vbuf, size_t len,
             const char *what)
{
  char *buf = vbuf;
  size_t n = conn->pending_option_len - conn->pending_option_pos;

  if (n > len)
    n = len;
  if (n > 0) {
    memcpy (buf, conn->pending_option + conn->pending_option_pos, n);
    conn->pending_option_pos += n;
    if (conn->pending_option_pos == conn->pending_option_len) {
      free (conn->pending_option);
      conn->pending_option = NULL;
      conn->pending_option_len = conn->pending_option_pos = 0;
    }
  }
  if (n == len)
    return 0;
  return conn_recv_full (conn, buf + n, len - n, "%s", what);
}

/* Read one option and dispatch it. */
static int
handle_option (struct connection *conn)
{
  struct nbd_new_option hdr;
  uint32_t option, len;
  CLEANUP_FREE char *data = NULL;

  if (option_recv (conn, &hdr, sizeof hdr, "reading option header") == -1)
    return -1;
  if (be64toh (hdr.version) != NBD_NEW_VERSION) {
    nbdkit_error ("unknown option version %" PRIx64 ", expecting %" PRIx64,
                  be64toh (hdr.version), NBD_NEW_VERSION);
    return -1;
  }
  option = be32toh (hdr.option);
  len = be32toh (hdr.optlen);
  debug ("newstyle negotiation: %s (%" PRIu32 "), length %" PRIu32,
         nbd_option_name (option), option, len);

  if (len > NBD_MAX_OPTION_LENGTH) {
    if (option == NBD_OPT_EXPORT_NAME || len > MAX_DISCARDED_OPTION_LENGTH) {
      nbdkit_error ("%s: option data is too long (%" PRIu32 " bytes)",
                    nbd_option_name (option), len);
      return -1;
    }
    if (conn_discard (conn, len) == -1) {
      nbdkit_error ("discarding option data: %m");
      return -1;
    }
    return option_reply_error (conn, option, NBD_REP_ERR_TOO_BIG,
                               "option data is too long (%" PRIu32 " bytes)",
                               len);
  }
  data = malloc (len + 1);
  if (data == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  if (len > 0 &&
      option_recv (conn, data, len, nbd_option_name (option)) == -1)
    return -1;
  data[len] = '\0';

  /* FORCEDTLS (nbd-protocol.md): nothing but STARTTLS or ABORT before
   * the upgrade.
   */
  if (config.tls == TLS_REQUIRE && !conn->using_tls &&
      option != NBD_OPT_STARTTLS && option != NBD_OPT_ABORT) {
    if (option == NBD_OPT_EXPORT_NAME) {
      nbdkit_error ("client asked for an export without TLS, but TLS is "
                    "required");
      return -1;
    }
    return option_reply_error (conn, option, NBD_REP_ERR_TLS_REQD,
                               "TLS is required on this server");
  }

  switch (option) {
  case NBD_OPT_EXPORT_NAME:
    return opt_export_name (conn, data, len);
  case NBD_OPT_ABORT: {
    /* The client may hang up without waiting for our ACK (the spec
     * allows both), so a failure to send it is not worth an error.
     */
    struct nbd_fixed_new_option_reply ack = {
      .magic = htobe64 (NBD_REP_MAGIC),
      .option = htobe32 (option),
      .reply = htobe32 (NBD_REP_ACK),
    };
    debug ("client sent NBD_OPT_ABORT");
    conn->send (conn, &ack, sizeof ack, 0);
    return -1;
  }
  case NBD_OPT_LIST:
    return opt_list (conn, option, len);
  case NBD_OPT_STARTTLS:
    return opt_starttls (conn, option, len);
  case NBD_OPT_INFO:
  case NBD_OPT_GO:
    return opt_info_go (conn, option, data, len);
  case NBD_OPT_STRUCTURED_REPLY:
    return opt_structured_reply (conn, option, len);
  case NBD_OPT_LIST_META_CONTEXT:
  case NBD_OPT_SET_META_CONTEXT:
    return opt_meta_context (conn, option, data, len);
  default:
    return option_reply_error (conn, option, NBD_REP_ERR_UNSUP,
                               "option %" PRIu32 " is not supported", option);
  }
}

/* The global flags of the greeting. */
uint16_t
protocol_newstyle_gflags (void)
{
  return (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES) &
    config.mask_handshake;
}

/* Send the greeting and read the client flags into conn->client_flags. */
int
protocol_handshake_newstyle_greeting (struct connection *conn)
{
  struct nbd_new_handshake hs;
  uint16_t gflags = protocol_newstyle_gflags ();
  uint32_t cflags;

  hs.nbdmagic = htobe64 (NBD_MAGIC);
  hs.version = htobe64 (NBD_NEW_VERSION);
  hs.gflags = htobe16 (gflags);
  if (conn->send (conn, &hs, sizeof hs, 0) == -1) {
    nbdkit_error ("newstyle handshake: write: %m");
    return -1;
  }
  if (conn_recv_full (conn, &cflags, sizeof cflags,
                      "reading initial client flags") == -1)
    return -1;
  cflags = be32toh (cflags);
  /* nbd-protocol.md "Client flags": unknown or unoffered flags mean we
   * must drop the connection.
   */
  if (cflags & ~(uint32_t) gflags) {
    nbdkit_error ("client requested unexpected flags 0x%" PRIx32, cflags);
    return -1;
  }
  conn->client_flags = cflags;
  conn->handshake_stage = HANDSHAKE_OPTIONS;
  return 0;
}

/* The option phase, until the transmission phase starts. */
int
protocol_handshake_newstyle_options (struct connection *conn)
{
  int i, r;

  for (i = 0; i < MAX_OPTIONS; ++i) {
    r = handle_option (conn);
    if (r == -1)
      return -1;
    if (r == START_TRANSMISSION)
      return 0;
  }
  nbdkit_error ("client sent too many options (more than %d)", MAX_OPTIONS);
  return -1;
}
