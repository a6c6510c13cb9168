/* SPDX-License-Identifier: BSD-3-Clause
 * The handshake phase: choose oldstyle or newstyle, and open the export
 * the client chose, working out its size and transmission flags from the
 * chain's can_* answers (nbd-protocol.md "Transmission flags").
 */

#include <config.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nbd-protocol.h"

int
protocol_handshake (struct connection *conn)
{
  if (config.oldstyle)
    return protocol_handshake_oldstyle (conn);
  if (conn->handshake_stage == HANDSHAKE_GREETING &&
      protocol_handshake_newstyle_greeting (conn) == -1)
    return -1;
  return protocol_handshake_newstyle_options (conn);
}

/* The transmission flags of the open export. */
static int
compute_eflags (struct context *c, bool structured_replies, uint16_t *flags)
{
  uint16_t eflags = NBD_FLAG_HAS_FLAGS;
  int r;

  if ((r = backend_can_write (c)) == -1)
    return -1;
  if (!r)
    eflags |= NBD_FLAG_READ_ONLY;
  else {
    if ((r = backend_can_zero (c)) == -1)
      return -1;
    if (r > NBDKIT_ZERO_NONE) {
      eflags |= NBD_FLAG_SEND_WRITE_ZEROES;
      if ((r = backend_can_fast_zero (c)) == -1)
        return -1;
      if (r)
        eflags |= NBD_FLAG_SEND_FAST_ZERO;
    }
    if ((r = backend_can_trim (c)) == -1)
      return -1;
    if (r)
      eflags |= NBD_FLAG_SEND_TRIM;
    if ((r = backend_can_fua (c)) == -1)
      return -1;
    if (r > NBDKIT_FUA_NONE)
      eflags |= NBD_FLAG_SEND_FUA;
  }
  if ((r = backend_can_flush (c)) == -1)
    return -1;
  if (r)
    eflags |= NBD_FLAG_SEND_FLUSH;
  if ((r = backend_is_rotational (c)) == -1)
    return -1;
  if (r)
    eflags |= NBD_FLAG_ROTATIONAL;
  if ((r = backend_can_multi_conn (c)) == -1)
    return -1;
  if (r)
    eflags |= NBD_FLAG_CAN_MULTI_CONN;
  if ((r = backend_can_cache (c)) == -1)
    return -1;
  if (r > NBDKIT_CACHE_NONE)
    eflags |= NBD_FLAG_SEND_CACHE;
  /* Asked now so the data path only reads cached answers. */
  if (backend_can_extents (c) == -1)
    return -1;
  if (structured_replies)
    eflags |= NBD_FLAG_SEND_DF;
  *flags = eflags;
  return 0;
}

/* Open the chain for EXPORTNAME (already canonical) and fill in
 * conn->exportsize and conn->eflags.
 */
int
protocol_open_export (struct connection *conn, const char *exportname)
{
  struct context *c;
  int64_t size;
  uint32_t minimum, preferred, maximum;
  int r = -1;

  free (conn->exportname);
  conn->exportname = strdup (exportname);
  if (conn->exportname == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }

  lock_request ();
  c = backend_open (top, config.readonly, exportname, conn->using_tls);
  if (c == NULL)
    goto out;
  conn->top_context = c;
  if (backend_prepare (c) == -1)
    goto out;
  size = backend_get_size (c);
  if (size == -1)
    goto out;
  if (compute_eflags (c, conn->structured_replies, &conn->eflags) == -1)
    goto out;
  if (backend_block_size (c, &minimum, &preferred, &maximum) == -1)
    goto out;
  conn->exportsize = size;
  debug ("newstyle negotiation: export \"%s\": size=%" PRIi64
         " flags=0x%x", exportname, size, conn->eflags);
  r = 0;
 out:
  unlock_request ();
  if (r == -1)
    protocol_close_export (conn);
  return r;
}

void
protocol_close_export (struct connection *conn)
{
  struct context *c = conn->top_context;

  if (c == NULL)
    return;
  lock_request ();
  if (c->state & CONTEXT_CONNECTED)
    backend_finalize (c);
  backend_close (c);
  unlock_request ();
  conn->top_context = NULL;
}

/* Open the default export once, outside any client, and describe it as
 * a client would see it.  Returns 1 if the plugin has no default
 * export, -1 on error.
 */
int
protocol_summarize_default_export (struct export_summary *s)
{
  struct connection *probe = connection_new_probe ();
  const char *name, *description;
  int r = -1;

  memset (s, 0, sizeof *s);
  if (probe == NULL)
    return -1;
  threadlocal_set_conn (probe);
  name = backend_default_export (top, config.readonly);
  if (name == NULL) {
    r = 1;
    goto out;
  }
  if (protocol_open_export (probe, name) == -1)
    goto out;
  s->name = strdup (name);
  s->size = probe->exportsize;
  s->eflags = probe->eflags;
  lock_request ();
  /* Block status is answered (emulated if the plugin has no extents)
   * whenever base:allocation can be negotiated.
   */
  s->can_extents = probe->structured_replies;
  description = backend_export_description (probe->top_context);
  if (description)
    s->description = strdup (description);
  r = backend_block_size (probe->top_context, &s->minimum, &s->preferred,
                          &s->maximum);
  unlock_request ();
  if (s->minimum == 0) {
    /* The defaults of nbd-protocol.md "Size constraints". */
    s->minimum = 1;
    s->preferred = 4096;
    s->maximum = MAX_REQUEST_SIZE;
  }
  if (s->maximum > MAX_REQUEST_SIZE)
    s->maximum = MAX_REQUEST_SIZE;
  if (r == 0 && (s->name == NULL || (description && !s->description))) {
    nbdkit_error ("strdup: %m");
    r = -1;
  }
  protocol_close_export (probe);
 out:
  threadlocal_set_conn (NULL);
  connection_free_probe (probe);
  if (r == -1)
    export_summary_free (s);
  return r;
}

void
export_summary_free (struct export_summary *s)
{
  free (s->name);
  free (s->description);
  s->name = s->description = NULL;
}
