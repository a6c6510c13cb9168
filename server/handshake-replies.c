/* SPDX-License-Identifier: BSD-3-Clause
 * Replies to newstyle options (nbd-protocol.md "Option reply message",
 * "Option reply types"): the reply header, acknowledgements, errors
 * with a message, NBD_REP_INFO and NBD_REP_META_CONTEXT.
 */

#include <config.h>

#include <endian.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "cleanup.h"
#include "nbd-protocol.h"

/* One reply to OPTION, with LEN bytes of DATA. */
int
option_reply (struct connection *conn, uint32_t option, uint32_t reply,
              const void *data, size_t len)
{
  struct nbd_fixed_new_option_reply hdr = {
    .magic = htobe64 (NBD_REP_MAGIC),
    .option = htobe32 (option),
    .reply = htobe32 (reply),
    .replylen = htobe32 (len),
  };

  /* These replies are always followed by another (the final ACK or an
   * error), so they can wait for it and go out in one sendmsg.
   */
  int more = reply == NBD_REP_INFO || reply == NBD_REP_SERVER ||
    reply == NBD_REP_META_CONTEXT ? SEND_MORE : 0;

  debug ("replying to %s with %s", nbd_option_name (option),
         nbd_reply_name (reply));
  if (conn->send (conn, &hdr, sizeof hdr, len ? SEND_MORE : more) == -1 ||
      (len && conn->send (conn, data, len, more) == -1)) {
    nbdkit_error ("write reply to %s: %m", nbd_option_name (option));
    return -1;
  }
  return 0;
}

int
option_reply_ack (struct connection *conn, uint32_t option)
{
  return option_reply (conn, option, NBD_REP_ACK, NULL, 0);
}

/* An error reply carrying a message for the user.  Returns 0 (so that
 * an option handler can return it to go on with the next option), or
 * -1 if the reply could not be sent.
 */
int
option_reply_error (struct connection *conn, uint32_t option, uint32_t reply,
                    const char *fs, ...)
{
  char *msg = NULL;
  va_list args;
  int r;

  va_start (args, fs);
  if (vasprintf (&msg, fs, args) == -1)
    msg = NULL;
  va_end (args);
  debug ("%s: %s", nbd_option_name (option), msg ? msg : fs);
  r = option_reply (conn, option, reply, msg, msg ? strlen (msg) : 0);
  free (msg);
  return r == -1 ? -1 : 0;
}

/* NBD_REP_INFO replies to NBD_OPT_INFO and NBD_OPT_GO
 * (nbd-protocol.md "Option reply types", "NBD_REP_INFO"), for the export
 * open in CONN.
 */
int
option_reply_info_export (struct connection *conn, uint32_t option)
{
  struct nbd_info_export info = {
    .info = htobe16 (NBD_INFO_EXPORT),
    .exportsize = htobe64 (conn->exportsize),
    .eflags = htobe16 (conn->eflags),
  };
  return option_reply (conn, option, NBD_REP_INFO, &info, sizeof info);
}

int
option_reply_info_string (struct connection *conn, uint32_t option,
                          uint16_t type, const char *str)
{
  size_t len = strlen (str);
  CLEANUP_FREE char *buf = malloc (2 + len);
  uint16_t t = htobe16 (type);

  if (buf == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  memcpy (buf, &t, 2);
  memcpy (buf + 2, str, len);
  return option_reply (conn, option, NBD_REP_INFO, buf, 2 + len);
}

int
option_reply_info_block_size (struct connection *conn, uint32_t option)
{
  struct context *c = conn->top_context;
  struct nbd_info_block_size info = { .info = htobe16 (NBD_INFO_BLOCK_SIZE) };
  uint32_t minimum, preferred, maximum;

  if (backend_block_size (c, &minimum, &preferred, &maximum) == -1)
    return -1;
  if (minimum == 0) {
    /* The defaults of nbd-protocol.md "Size constraints". */
    minimum = 1;
    preferred = 4096;
    maximum = MAX_REQUEST_SIZE;
  }
  if (maximum > MAX_REQUEST_SIZE)
    maximum = MAX_REQUEST_SIZE;
  info.minimum = htobe32 (minimum);
  info.preferred = htobe32 (preferred);
  info.maximum = htobe32 (maximum);
  return option_reply (conn, option, NBD_REP_INFO, &info, sizeof info);
}

/* NBD_REP_META_CONTEXT: one metadata context and its ID. */
int
option_reply_meta_context (struct connection *conn, uint32_t option,
                           uint32_t id, const char *name)
{
  size_t len = strlen (name);
  CLEANUP_FREE char *buf = malloc (4 + len);

  if (buf == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  id = htobe32 (id);
  memcpy (buf, &id, 4);
  memcpy (buf + 4, name, len);
  return option_reply (conn, option, NBD_REP_META_CONTEXT, buf, 4 + len);
}
