/* SPDX-License-Identifier: BSD-3-Clause
 * The backend layer's data operations: each asserts the caller's
 * preconditions, writes the debug trace and calls the layer, emulating
 * FUA and zeroing where the layer declared it cannot do them natively.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend-internal.h"
#include "cleanup.h"
#include "nbd-protocol.h"
#include "utils.h"

/* Emulation of what a layer declared it cannot do natively (can_fua,
 * can_zero or can_cache answering EMULATE): the same for plugins and
 * filters.
 */

#define EMULATION_BUFFER (1024 * 1024)

/* One shared block of zeroes for emulated zeroing. */
static const char zero_buffer[256 * 1024];

/* Strip an emulated FUA flag; the caller flushes afterwards. */
static bool
emulating_fua (struct context *c, uint32_t *flags)
{
  if ((*flags & NBDKIT_FLAG_FUA) && c->can_fua == NBDKIT_FUA_EMULATE) {
    *flags &= ~NBDKIT_FLAG_FUA;
    return true;
  }
  return false;
}

static int
emulated_fua_flush (struct context *c, int *err)
{
  struct backend *b = c->b;

  datapath_debug ("%s: flush (emulating FUA)", b->name);
  return IN_LAYER (b, b->flush (c, 0, err));
}

/* Zero by writing zeroes through layer C: for plugins without a native
 * zero (or whose zero failed with ENOTSUP), and filters answering
 * can_zero with EMULATE and no .zero callback of their own.  Never fast.
 */
int
backend_emulate_zero (struct context *c, uint32_t count, uint64_t offset,
                      uint32_t flags, int *err)
{
  uint32_t fua = flags & NBDKIT_FLAG_FUA;

  if (flags & NBDKIT_FLAG_FAST_ZERO) {
    *err = ENOTSUP;
    return -1;
  }
  while (count > 0) {
    uint32_t n = MIN (count, sizeof zero_buffer);
    if (backend_pwrite (c, zero_buffer, n, offset, fua, err) == -1)
      return -1;
    count -= n;
    offset += n;
  }
  return 0;
}

/* Data operations.  The caller (protocol.c or a filter) has validated the
 * request; here it is only asserted.
 */

int
backend_pread (struct context *c, void *buf, uint32_t count,
               uint64_t offset, uint32_t flags, int *err)
{
  struct backend *b = c->b;

  assert (c->state & CONTEXT_CONNECTED);
  assert (backend_valid_range (c, offset, count));
  assert (flags == 0);
  datapath_debug ("%s: pread count=%" PRIu32 " offset=%" PRIu64,
                  b->name, count, offset);
  return IN_LAYER (b, b->pread (c, buf, count, offset, flags, err));
}

int
backend_pwrite (struct context *c, const void *buf, uint32_t count,
                uint64_t offset, uint32_t flags, int *err)
{
  struct backend *b = c->b;
  bool fua;

  assert (c->state & CONTEXT_CONNECTED);
  assert (c->can_write == 1);
  assert (backend_valid_range (c, offset, count));
  assert (!(flags & ~NBDKIT_FLAG_FUA));
  assert (!(flags & NBDKIT_FLAG_FUA) || c->can_fua > NBDKIT_FUA_NONE);
  datapath_debug ("%s: pwrite count=%" PRIu32 " offset=%" PRIu64 " fua=%d",
                  b->name, count, offset, !!(flags & NBDKIT_FLAG_FUA));
  fua = emulating_fua (c, &flags);
  if (IN_LAYER (b, b->pwrite (c, buf, count, offset, flags, err)) == -1)
    return -1;
  return fua ? emulated_fua_flush (c, err) : 0;
}

int
backend_flush (struct context *c, uint32_t flags, int *err)
{
  struct backend *b = c->b;

  assert (c->state & CONTEXT_CONNECTED);
  assert (c->can_flush == 1);
  assert (flags == 0);
  datapath_debug ("%s: flush", b->name);
  return IN_LAYER (b, b->flush (c, flags, err));
}

int
backend_trim (struct context *c, uint32_t count, uint64_t offset,
              uint32_t flags, int *err)
{
  struct backend *b = c->b;
  bool fua;

  assert (c->state & CONTEXT_CONNECTED);
  assert (c->can_write == 1 && c->can_trim == 1);
  assert (backend_valid_range (c, offset, count));
  assert (!(flags & ~NBDKIT_FLAG_FUA));
  assert (!(flags & NBDKIT_FLAG_FUA) || c->can_fua > NBDKIT_FUA_NONE);
  datapath_debug ("%s: trim count=%" PRIu32 " offset=%" PRIu64 " fua=%d",
                  b->name, count, offset, !!(flags & NBDKIT_FLAG_FUA));
  fua = emulating_fua (c, &flags);
  if (IN_LAYER (b, b->trim (c, count, offset, flags, err)) == -1)
    return -1;
  return fua ? emulated_fua_flush (c, err) : 0;
}

int
backend_zero (struct context *c, uint32_t count, uint64_t offset,
              uint32_t flags, int *err)
{
  struct backend *b = c->b;
  bool fua;
  int r;

  assert (c->state & CONTEXT_CONNECTED);
  assert (c->can_write == 1 && c->can_zero > NBDKIT_ZERO_NONE);
  assert (backend_valid_range (c, offset, count));
  assert (!(flags & ~(NBDKIT_FLAG_MAY_TRIM | NBDKIT_FLAG_FUA |
                      NBDKIT_FLAG_FAST_ZERO)));
  assert (!(flags & NBDKIT_FLAG_FUA) || c->can_fua > NBDKIT_FUA_NONE);
  assert (!(flags & NBDKIT_FLAG_FAST_ZERO) || c->can_fast_zero == 1);
  datapath_debug ("%s: zero count=%" PRIu32 " offset=%" PRIu64
                  " may_trim=%d fua=%d fast=%d", b->name, count, offset,
                  !!(flags & NBDKIT_FLAG_MAY_TRIM),
                  !!(flags & NBDKIT_FLAG_FUA),
                  !!(flags & NBDKIT_FLAG_FAST_ZERO));
  fua = emulating_fua (c, &flags);
  r = IN_LAYER (b, b->zero (c, count, offset, flags, err));
  if (r == 0 && fua)
    r = emulated_fua_flush (c, err);
  return r;
}

int
backend_extents (struct context *c, uint32_t count, uint64_t offset,
                 uint32_t flags, struct nbdkit_extents *extents, int *err)
{
  struct backend *b = c->b;

  assert (c->state & CONTEXT_CONNECTED);
  assert (c->can_extents >= 0);
  assert (backend_valid_range (c, offset, count));
  assert (!(flags & ~NBDKIT_FLAG_REQ_ONE));
  datapath_debug ("%s: extents count=%" PRIu32 " offset=%" PRIu64
                  " req_one=%d", b->name, count, offset,
                  !!(flags & NBDKIT_FLAG_REQ_ONE));
  if (c->can_extents == 0) {
    /* Without extents support, everything is allocated data. */
    if (nbdkit_add_extent (extents, offset, count, 0) == -1) {
      *err = errno;
      return -1;
    }
    return 0;
  }
  return IN_LAYER (b, b->extents (c, count, offset, flags, extents, err));
}

int
backend_cache (struct context *c, uint32_t count, uint64_t offset,
               uint32_t flags, int *err)
{
  struct backend *b = c->b;

  assert (c->state & CONTEXT_CONNECTED);
  assert (c->can_cache > NBDKIT_CACHE_NONE);
  assert (backend_valid_range (c, offset, count));
  assert (flags == 0);
  datapath_debug ("%s: cache count=%" PRIu32 " offset=%" PRIu64,
                  b->name, count, offset);
  if (c->can_cache == NBDKIT_CACHE_NATIVE)
    return IN_LAYER (b, b->cache (c, count, offset, flags, err));

  /* Emulated: read the range through this layer and drop the data. */
  uint32_t n = MIN (count, EMULATION_BUFFER);
  CLEANUP_FREE char *buf = malloc (n);
  if (buf == NULL) {
    *err = ENOMEM;
    return -1;
  }
  while (count > 0) {
    n = MIN (count, EMULATION_BUFFER);
    if (backend_pread (c, buf, n, offset, 0, err) == -1)
      return -1;
    count -= n;
    offset += n;
  }
  return 0;
}
