/* SPDX-License-Identifier: BSD-3-Clause
 * The transmission phase: read a request, validate it completely, run it
 * through the backend chain and send the reply.  This is the one place
 * where errno becomes an NBD error.
 */

#include <config.h>

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nbd-protocol.h"
#include "utils.h"

/* The granularity at which read data is checked for zeroes, to send
 * zero blocks as holes.
 */
#define HOLE_BLOCK 4096

/* Request buffers up to this size stay allocated in their thread. */
#define KEEP_BUFFER_MAX (4 * 1024 * 1024)

/* nbd-protocol.md "Error values". */
uint32_t
errno_to_nbd_error (int err)
{
  switch (err) {
  case 0: return NBD_SUCCESS;
  case EROFS:
  case EPERM: return NBD_EPERM;
  case EIO: return NBD_EIO;
  case ENOMEM: return NBD_ENOMEM;
#ifdef EDQUOT
  case EDQUOT:
#endif
  case EFBIG:
  case ENOSPC: return NBD_ENOSPC;
#ifdef ESHUTDOWN
  case ESHUTDOWN: return NBD_ESHUTDOWN;
#endif
  case ENOTSUP:
#if EOPNOTSUPP != ENOTSUP
  case EOPNOTSUPP:
#endif
    return NBD_ENOTSUP;
  case EOVERFLOW: return NBD_EOVERFLOW;
  case EINVAL: return NBD_EINVAL;
  default: return NBD_EIO;
  }
}

/* Which command flags each command accepts, before checking what the
 * export advertised.  nbd-protocol.md "Command flags": FUA is valid on
 * every command once negotiated (it only matters for writes).
 */
static uint16_t
allowed_flags (uint16_t cmd)
{
  switch (cmd) {
  case NBD_CMD_READ: return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_DF;
  case NBD_CMD_WRITE_ZEROES:
    return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE | NBD_CMD_FLAG_FAST_ZERO;
  case NBD_CMD_BLOCK_STATUS: return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;
  default: return NBD_CMD_FLAG_FUA;
  }
}

/* Check everything about a request before the plugin sees it.  Returns
 * 0 or an errno value, with *WHY saying what was wrong.
 */
static int
validate_request (struct connection *conn, uint16_t cmd, uint16_t flags,
                  uint64_t offset, uint32_t count, const char **why)
{
  struct context *c = conn->top_context;
  uint16_t eflags = conn->eflags;
  bool is_write = cmd == NBD_CMD_WRITE || cmd == NBD_CMD_WRITE_ZEROES ||
    cmd == NBD_CMD_TRIM;

  switch (cmd) {
  case NBD_CMD_READ:
  case NBD_CMD_WRITE:
  case NBD_CMD_FLUSH:
  case NBD_CMD_TRIM:
  case NBD_CMD_CACHE:
  case NBD_CMD_WRITE_ZEROES:
  case NBD_CMD_BLOCK_STATUS:
    break;
  default:
    *why = "unknown command";
    return EINVAL;
  }

  /* Permission first: nbd-protocol.md "Error values" asks for EPERM for
   * any write to a read-only export, whatever its flags.
   */
  if (is_write && (eflags & NBD_FLAG_READ_ONLY)) {
    *why = "write to a read-only export";
    return EPERM;
  }

  /* Flags. */
  if (flags & ~allowed_flags (cmd)) {
    *why = "flag not valid for this command";
    return EINVAL;
  }
  if ((flags & NBD_CMD_FLAG_FUA) && !(eflags & NBD_FLAG_SEND_FUA)) {
    *why = "FUA flag used but not advertised";
    return EINVAL;
  }
  if ((flags & NBD_CMD_FLAG_DF) && !conn->structured_replies) {
    *why = "DF flag used without structured replies";
    return EINVAL;
  }
  if ((flags & NBD_CMD_FLAG_FAST_ZERO) &&
      !(eflags & NBD_FLAG_SEND_FAST_ZERO)) {
    *why = "FAST_ZERO flag used but not advertised";
    return EINVAL;
  }

  /* Commands the export did not advertise. */
  if ((cmd == NBD_CMD_FLUSH && !(eflags & NBD_FLAG_SEND_FLUSH)) ||
      (cmd == NBD_CMD_TRIM && !(eflags & NBD_FLAG_SEND_TRIM)) ||
      (cmd == NBD_CMD_WRITE_ZEROES &&
       !(eflags & NBD_FLAG_SEND_WRITE_ZEROES)) ||
      (cmd == NBD_CMD_CACHE && !(eflags & NBD_FLAG_SEND_CACHE))) {
    *why = "command not supported by this export";
    return EINVAL;
  }
  if (cmd == NBD_CMD_BLOCK_STATUS &&
      (!conn->structured_replies || !conn->meta_context_base_allocation)) {
    *why = "block status without a negotiated metadata context";
    return EINVAL;
  }

  /* Range. */
  if (cmd == NBD_CMD_FLUSH) {
    if (offset != 0 || count != 0) {
      *why = "flush offset and length must be zero";
      return EINVAL;
    }
    return 0;
  }
  if ((cmd == NBD_CMD_READ || cmd == NBD_CMD_WRITE) &&
      count > MAX_REQUEST_SIZE) {
    *why = "request is larger than the maximum payload";
    return EINVAL;
  }
  if (count == 0) {
    *why = "length is zero";
    return EINVAL;
  }
  if (!backend_valid_range (c, offset, count)) {
    *why = "offset and length are out of range";
    return cmd == NBD_CMD_WRITE || cmd == NBD_CMD_WRITE_ZEROES ?
      ENOSPC : EINVAL;
  }
  if (c->minimum_block_size > 1 &&
      ((offset | count) & (c->minimum_block_size - 1))) {
    *why = "request is not aligned to the minimum block size";
    return EINVAL;
  }
  if ((cmd == NBD_CMD_READ || cmd == NBD_CMD_WRITE) &&
      c->maximum_block_size && count > c->maximum_block_size) {
    *why = "request is larger than the export's maximum block size";
    return EINVAL;
  }
  return 0;
}

/* For a structured read: the parts of BUF that read as zeroes, in
 * blocks of HOLE_BLOCK aligned to the export (clipped to the request),
 * to send as holes; NULL if there are none (or on ENOMEM: then it all
 * goes as data).  A hole chunk says only that its range reads as zeroes
 * (nbd-protocol.md, NBD_REPLY_TYPE_OFFSET_HOLE), which the data itself
 * shows.  Asking the plugin's .extents instead would cost another round
 * trip for a network-backed plugin (the nbd plugin read a zero block at
 * half speed) and could describe a later state than the data read.  For
 * data the check stops at the first non-zero byte of each block.
 */
static struct nbdkit_extents *
find_holes (const char *buf, uint32_t count, uint64_t offset)
{
  struct nbdkit_extents *holes = NULL;
  uint32_t pos = 0;

  while (pos < count) {
    uint32_t n = HOLE_BLOCK - ((offset + pos) & (HOLE_BLOCK - 1));
    bool zero;

    if (n > count - pos)
      n = count - pos;
    zero = is_zero (buf + pos, n);
    if (zero && holes == NULL) {
      holes = extents_new_internal (offset, offset + count);
      if (holes == NULL ||
          nbdkit_add_extent (holes, offset, pos, 0) == -1)
        goto fail;
    }
    if (holes &&
        nbdkit_add_extent (holes, offset + pos, n,
                           zero ? NBDKIT_EXTENT_ZERO : 0) == -1)
      goto fail;
    pos += n;
  }
  return holes;

 fail:
  nbdkit_extents_free (holes);
  return NULL;
}

/* Run a valid request.  Returns 0 or an errno value. */
static int
handle_request (struct connection *conn, uint16_t cmd, uint16_t flags,
                uint64_t offset, uint32_t count, void *buf,
                struct nbdkit_extents **extents)
{
  struct context *c = conn->top_context;
  uint32_t f = 0;
  int err = 0;

  if ((flags & NBD_CMD_FLAG_FUA) &&
      (cmd == NBD_CMD_WRITE || cmd == NBD_CMD_TRIM ||
       cmd == NBD_CMD_WRITE_ZEROES))
    f |= NBDKIT_FLAG_FUA;

  switch (cmd) {
  case NBD_CMD_READ:
    if (backend_pread (c, buf, count, offset, 0, &err) == -1)
      return err;
    if (conn->structured_replies && !(flags & NBD_CMD_FLAG_DF))
      *extents = find_holes (buf, count, offset);
    break;

  case NBD_CMD_WRITE:
    if (backend_pwrite (c, buf, count, offset, f, &err) == -1)
      return err;
    break;

  case NBD_CMD_FLUSH:
    if (backend_flush (c, 0, &err) == -1)
      return err;
    break;

  case NBD_CMD_TRIM:
    if (backend_trim (c, count, offset, f, &err) == -1)
      return err;
    break;

  case NBD_CMD_CACHE:
    if (backend_cache (c, count, offset, 0, &err) == -1)
      return err;
    break;

  case NBD_CMD_WRITE_ZEROES:
    if (!(flags & NBD_CMD_FLAG_NO_HOLE))
      f |= NBDKIT_FLAG_MAY_TRIM;
    if (flags & NBD_CMD_FLAG_FAST_ZERO)
      f |= NBDKIT_FLAG_FAST_ZERO;
    if (backend_zero (c, count, offset, f, &err) == -1)
      return err;
    break;

  case NBD_CMD_BLOCK_STATUS:
    *extents = extents_new_internal (offset, offset + count);
    if (*extents == NULL)
      return ENOMEM;
    if (flags & NBD_CMD_FLAG_REQ_ONE)
      f |= NBDKIT_FLAG_REQ_ONE;
    if (backend_extents (c, count, offset, f, *extents, &err) == -1)
      return err;
    if (nbdkit_extents_count (*extents) == 0)
      return EIO;
    break;

  default:
    abort ();                   /* validate_request rejected it */
  }
  return 0;
}

static int
send_reply (struct connection *conn, uint64_t handle, uint16_t cmd,
            uint16_t flags, const char *buf, uint32_t count, uint64_t offset,
            const struct nbdkit_extents *extents, uint32_t error)
{
  if (!conn->structured_replies)
    return send_simple_reply (conn, handle, cmd, buf, count, error);
  if (error)
    return send_structured_reply_error (conn, handle, cmd, error);
  if (cmd == NBD_CMD_READ)
    return send_structured_reply_read (conn, handle, flags, buf, count,
                                       offset, extents);
  if (cmd == NBD_CMD_BLOCK_STATUS)
    return send_structured_reply_block_status (conn, handle, count, offset,
                                               flags, extents);
  return send_simple_reply (conn, handle, cmd, NULL, 0, 0);
}

/* Worker mode: count the request in the connection's counters.  Only
 * this connection's request threads write them, so relaxed atomics are
 * enough; without a control socket this is never called.
 */
static void
count_request (struct connection *conn, uint16_t cmd, uint32_t count,
               int err)
{
  struct conn_counters *c = &conn->counters;
  enum counted_request type;

  switch (cmd) {
  case NBD_CMD_READ: type = COUNT_READ; break;
  case NBD_CMD_WRITE: type = COUNT_WRITE; break;
  case NBD_CMD_FLUSH: type = COUNT_FLUSH; break;
  case NBD_CMD_TRIM: type = COUNT_TRIM; break;
  case NBD_CMD_WRITE_ZEROES: type = COUNT_ZERO; break;
  case NBD_CMD_BLOCK_STATUS: type = COUNT_BLOCK_STATUS; break;
  case NBD_CMD_CACHE: type = COUNT_CACHE; break;
  default:
    /* An unknown command is refused: only an error to count. */
    __atomic_fetch_add (&c->errors, 1, __ATOMIC_RELAXED);
    return;
  }
  __atomic_fetch_add (&c->requests[type], 1, __ATOMIC_RELAXED);
  if (err)
    __atomic_fetch_add (&c->errors, 1, __ATOMIC_RELAXED);
  else if (type == COUNT_READ)
    __atomic_fetch_add (&c->bytes_read, count, __ATOMIC_RELAXED);
  else if (type == COUNT_WRITE)
    __atomic_fetch_add (&c->bytes_written, count, __ATOMIC_RELAXED);
}

/* Take one request and reply to it.  False if there was none to take
 * (the connection is closing or closed), so the thread stops.
 */
bool
protocol_recv_request_send_reply (struct connection *conn)
{
  struct nbd_request req;
  uint16_t cmd, flags;
  uint32_t count, magic;
  uint64_t offset, handle;
  void *buf = NULL;
  int err = 0, r;
  const char *why = NULL;
  struct nbdkit_extents *extents = NULL;
  bool locked = conn->nworkers > 1;

  /* Read the whole request under the read lock. */
  if (locked)
    pthread_mutex_lock (&conn->read_lock);
  if (!connection_may_take_request (conn)) {
    if (locked)
      pthread_mutex_unlock (&conn->read_lock);
    return false;
  }
  r = conn->recv (conn, &req, sizeof req);
  if (r == 0) {
    debug ("client closed input socket, closing connection");
    connection_set_status (conn, CONN_CLOSING);
    goto unlock_and_return;
  }
  if (r == -1) {
    nbdkit_error ("read request: %s",
                  errno == EBADMSG ? "the client closed the connection "
                  "in the middle of a request" : strerror (errno));
    connection_set_status (conn, CONN_DEAD);
    goto unlock_and_return;
  }
  magic = be32toh (req.magic);
  if (magic != NBD_REQUEST_MAGIC) {
    nbdkit_error ("invalid request: 'magic' field is incorrect (0x%" PRIx32
                  "), closing the connection", magic);
    connection_set_status (conn, CONN_DEAD);
    goto unlock_and_return;
  }
  flags = be16toh (req.flags);
  cmd = be16toh (req.type);
  handle = req.handle;          /* opaque: echoed back unchanged */
  offset = be64toh (req.offset);
  count = be32toh (req.count);

  if (cmd == NBD_CMD_DISC) {
    debug ("client sent %s, closing connection", nbd_command_name (cmd));
    connection_set_status (conn, CONN_CLOSING);
    connection_drop_input (conn);
    goto unlock_and_return;
  }

  err = validate_request (conn, cmd, flags, offset, count, &why);

  /* The write payload always follows the header: read it, or skip it if
   * the request is refused.
   */
  if (cmd == NBD_CMD_WRITE) {
    if (count > MAX_REQUEST_SIZE) {
      /* Skipping a payload this large would let one request tie the
       * connection up for gigabytes: nbd-protocol.md "Size constraints"
       * lets the server hard-disconnect a payload large enough to be a
       * denial of service, and upstream nbdkit does the same.
       */
      nbdkit_error ("invalid request: %s: payload of %" PRIu32 " bytes is "
                    "larger than the maximum %d, closing the connection",
                    nbd_command_name (cmd), count, MAX_REQUEST_SIZE);
      connection_set_status (conn, CONN_DEAD);
      goto unlock_and_return;
    }
    if (err == 0 && (buf = threadlocal_buffer (count)) == NULL)
      err = ENOMEM;
    if (err) {
      if (conn_discard (conn, count) == -1) {
        nbdkit_error ("invalid request: cannot skip write payload: %m");
        connection_set_status (conn, CONN_DEAD);
        goto unlock_and_return;
      }
    }
    else if (conn_recv_full (conn, buf, count, "read data for %s",
                             nbd_command_name (cmd)) == -1) {
      connection_set_status (conn, CONN_DEAD);
      goto unlock_and_return;
    }
  }
  connection_request_started (conn);
  if (locked)
    pthread_mutex_unlock (&conn->read_lock);

  if (err) {
    nbdkit_error ("invalid request: %s: %s (offset %" PRIu64 ", count %"
                  PRIu32 ", flags 0x%" PRIx16 ")", nbd_command_name (cmd),
                  why, offset, count, flags);
  }
  else {
    if (cmd == NBD_CMD_READ && (buf = threadlocal_buffer (count)) == NULL)
      err = ENOMEM;
    else {
      struct request_cost cost;

      request_cost_begin (conn, &cost);
      lock_request ();
      err = handle_request (conn, cmd, flags, offset, count, buf, &extents);
      unlock_request ();
      request_cost_end (conn, &cost);
    }
  }

  /* With one request thread, hold the reply back while more requests
   * are already waiting, to send the replies together.  Atomic: when the
   * connection goes parallel, the first threads may still be here.
   */
  __atomic_store_n (&conn->batching,
                    !__atomic_load_n (&conn->parallel, __ATOMIC_ACQUIRE) &&
                    connection_input_pending (conn), __ATOMIC_RELAXED);
  if (send_reply (conn, handle, cmd, flags, buf, count, offset, extents,
                  errno_to_nbd_error (err)) == -1)
    connection_set_status (conn, CONN_DEAD);
  if (counters_enabled)
    count_request (conn, cmd, count, err);
  nbdkit_extents_free (extents);
  /* Keep ordinary buffers for the next request, but do not let every
   * request thread hold on to a huge one.
   */
  if (buf && count > KEEP_BUFFER_MAX)
    threadlocal_free_buffer ();
  connection_request_done (conn);
  return true;

 unlock_and_return:
  if (locked)
    pthread_mutex_unlock (&conn->read_lock);
  return true;                  /* the status says whether to go on */
}
