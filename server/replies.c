/* SPDX-License-Identifier: BSD-3-Clause
 * Sending replies in the transmission phase: simple replies, and
 * structured replies with data, hole, block status and error chunks
 * (nbd-protocol.md "Simple reply message", "Structured reply types").
 * Each reply is written whole under the connection's write lock.
 */

#include <config.h>

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nbd-protocol.h"
#include "utils.h"

static void
lock_write (struct connection *conn)
{
  if (conn->nworkers > 1)
    pthread_mutex_lock (&conn->write_lock);
}

static void
unlock_write (struct connection *conn)
{
  if (conn->nworkers > 1)
    pthread_mutex_unlock (&conn->write_lock);
}

static int
write_failed (struct connection *conn, uint16_t cmd)
{
  nbdkit_error ("write reply: %s: %m", nbd_command_name (cmd));
  return -1;
}

int
send_simple_reply (struct connection *conn, uint64_t handle, uint16_t cmd,
                   const char *buf, uint32_t count, uint32_t error)
{
  struct nbd_simple_reply reply = {
    .magic = htobe32 (NBD_SIMPLE_REPLY_MAGIC),
    .error = htobe32 (error),
    .handle = handle,
  };
  bool with_data = cmd == NBD_CMD_READ && error == 0;
  int r;

  lock_write (conn);
  r = conn->send (conn, &reply, sizeof reply, with_data ? SEND_MORE : 0);
  if (r == 0 && with_data)
    r = conn->send (conn, buf, count, 0);
  unlock_write (conn);
  return r == -1 ? write_failed (conn, cmd) : 0;
}

static void
chunk_header (struct nbd_structured_reply *hdr, uint64_t handle,
              uint16_t flags, uint16_t type, uint32_t length)
{
  hdr->magic = htobe32 (NBD_STRUCTURED_REPLY_MAGIC);
  hdr->flags = htobe16 (flags);
  hdr->type = htobe16 (type);
  hdr->handle = handle;
  hdr->length = htobe32 (length);
}

static int
send_data_chunk (struct connection *conn, uint64_t handle, bool last,
                 const char *buf, uint32_t count, uint64_t offset)
{
  struct {
    struct nbd_structured_reply hdr;
    struct nbd_structured_reply_offset_data data;
  } __attribute__ ((__packed__)) chunk;

  chunk_header (&chunk.hdr, handle, last ? NBD_REPLY_FLAG_DONE : 0,
                NBD_REPLY_TYPE_OFFSET_DATA, sizeof chunk.data + count);
  chunk.data.offset = htobe64 (offset);
  if (conn->send (conn, &chunk, sizeof chunk, SEND_MORE) == -1)
    return -1;
  return conn->send (conn, buf, count, last ? 0 : SEND_MORE);
}

static int
send_hole_chunk (struct connection *conn, uint64_t handle, bool last,
                 uint32_t count, uint64_t offset)
{
  struct {
    struct nbd_structured_reply hdr;
    struct nbd_structured_reply_offset_hole hole;
  } __attribute__ ((__packed__)) chunk;

  chunk_header (&chunk.hdr, handle, last ? NBD_REPLY_FLAG_DONE : 0,
                NBD_REPLY_TYPE_OFFSET_HOLE, sizeof chunk.hole);
  chunk.hole.offset = htobe64 (offset);
  chunk.hole.length = htobe32 (count);
  return conn->send (conn, &chunk, sizeof chunk, last ? 0 : SEND_MORE);
}

/* A successful read: one data chunk, or data and hole chunks following
 * HOLES (the extents of the range) where parts read as zeroes.
 */
int
send_structured_reply_read (struct connection *conn, uint64_t handle,
                            uint16_t flags, const char *buf, uint32_t count,
                            uint64_t offset,
                            const struct nbdkit_extents *holes)
{
  const struct nbdkit_extent *e = NULL;
  size_t n = 0, i;
  uint64_t pos = offset, end = offset + count;
  int r = 0;

  if (holes)
    e = extents_array (holes, &n);

  lock_write (conn);
  if (n <= 1 && !(n == 1 && (e[0].type & NBDKIT_EXTENT_ZERO)))
    r = send_data_chunk (conn, handle, true, buf, count, offset);
  else {
    i = 0;
    while (pos < end && r == 0) {
      bool zero = false, last;
      uint64_t run_end = end;

      /* A run of extents of the same kind becomes one chunk; anything
       * the extents do not cover is sent as data.
       */
      if (i < n) {
        zero = e[i].type & NBDKIT_EXTENT_ZERO;
        run_end = MIN (e[i].offset + e[i].length, end);
        for (i++; i < n && run_end < end &&
               !!(e[i].type & NBDKIT_EXTENT_ZERO) == zero; i++)
          run_end = MIN (e[i].offset + e[i].length, end);
      }
      last = run_end >= end;
      if (zero)
        r = send_hole_chunk (conn, handle, last, run_end - pos, pos);
      else
        r = send_data_chunk (conn, handle, last, buf + (pos - offset),
                             run_end - pos, pos);
      pos = run_end;
    }
  }
  unlock_write (conn);
  return r == -1 ? write_failed (conn, NBD_CMD_READ) : 0;
}

/* Block status for base:allocation: one chunk of descriptors. */
int
send_structured_reply_block_status (struct connection *conn,
                                    uint64_t handle,
                                    uint32_t count, uint64_t offset,
                                    uint16_t flags,
                                    const struct nbdkit_extents *extents)
{
  const struct nbdkit_extent *e;
  size_t n, i, nr;
  struct nbd_block_descriptor *desc;
  struct nbd_structured_reply hdr;
  uint32_t id = htobe32 (1);    /* BASE_ALLOCATION_ID */
  uint64_t end = offset + count;
  int r;

  e = extents_array (extents, &n);
  if (flags & NBD_CMD_FLAG_REQ_ONE)
    n = MIN (n, 1);
  desc = malloc (n * sizeof *desc);
  if (desc == NULL) {
    nbdkit_error ("malloc: %m");
    return send_structured_reply_error (conn, handle, NBD_CMD_BLOCK_STATUS,
                                        NBD_ENOMEM);
  }
  for (i = nr = 0; i < n; ++i) {
    uint64_t len = e[i].length;
    /* A descriptor length is 32 bits; with REQ_ONE it must not exceed
     * the request.
     */
    if ((flags & NBD_CMD_FLAG_REQ_ONE) && e[i].offset + len > end)
      len = end - e[i].offset;
    if (len > UINT32_MAX - 511)
      len = UINT32_MAX - 511;   /* keep it a multiple of 512 */
    desc[nr].length = htobe32 (len);
    desc[nr].status_flags = htobe32 (e[i].type & 3);
    nr++;
    if (len != e[i].length)
      break;                    /* truncated: the client asks again */
  }

  chunk_header (&hdr, handle, NBD_REPLY_FLAG_DONE,
                NBD_REPLY_TYPE_BLOCK_STATUS, 4 + nr * sizeof *desc);
  lock_write (conn);
  r = conn->send (conn, &hdr, sizeof hdr, SEND_MORE);
  if (r == 0)
    r = conn->send (conn, &id, sizeof id, SEND_MORE);
  if (r == 0)
    r = conn->send (conn, desc, nr * sizeof *desc, 0);
  unlock_write (conn);
  free (desc);
  return r == -1 ? write_failed (conn, NBD_CMD_BLOCK_STATUS) : 0;
}

int
send_structured_reply_error (struct connection *conn, uint64_t handle,
                             uint16_t cmd, uint32_t error)
{
  struct {
    struct nbd_structured_reply hdr;
    struct nbd_structured_reply_error err;
  } __attribute__ ((__packed__)) chunk;
  int r;

  chunk_header (&chunk.hdr, handle, NBD_REPLY_FLAG_DONE,
                NBD_REPLY_TYPE_ERROR, sizeof chunk.err);
  chunk.err.error = htobe32 (error);
  chunk.err.len = 0;
  lock_write (conn);
  r = conn->send (conn, &chunk, sizeof chunk, 0);
  unlock_write (conn);
  return r == -1 ? write_failed (conn, cmd) : 0;
}
