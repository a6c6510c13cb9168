/* SPDX-License-Identifier: BSD-3-Clause
 * The blocksize filter: accept requests of any alignment and size from
 * clients, and pass the layer below only requests aligned to minblock
 * and no larger than maxdata (with data) or maxlen (without).  Unaligned
 * heads and tails of writes and zeroes become read-modify-write cycles.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"

/* The largest minblock accepted, and nbdkit's largest data request. */
#define MAX_MINBLOCK (64 * 1024)
#define MAX_DATA (64 * 1024 * 1024)

/* minblock=, maxdata=, maxlen=; 0 when not given, in which case each
 * connection works them out from the layer below.
 */
static uint32_t config_minblock;
static uint32_t config_maxdata;
static uint32_t config_maxlen;

/* Read-modify-write cycles of all connections are serialized, so two
 * unaligned writes to different bytes of one block cannot undo each
 * other.  (A write overlapping the same bytes as a concurrent one has
 * no defined result in NBD anyway.)
 */
static pthread_mutex_t rmw_lock = PTHREAD_MUTEX_INITIALIZER;

static int
parse_limit (const char *key, const char *value, uint64_t max, uint32_t *r)
{
  const char *error;
  int64_t v = parse_human_size (value, &error);

  if (v == -1) {
    nbdkit_error ("%s=%s: %s", key, value, error);
    return -1;
  }
  if (v == 0 || (uint64_t) v > max) {
    nbdkit_error ("%s=%s: must be between 1 and %" PRIu64, key, value, max);
    return -1;
  }
  *r = v;
  return 0;
}

static int
blocksize_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                  const char *key, const char *value)
{
  if (strcmp (key, "minblock") == 0) {
    if (parse_limit (key, value, MAX_MINBLOCK, &config_minblock) == -1)
      return -1;
    if (!is_power_of_2 (config_minblock)) {
      nbdkit_error ("minblock=%s: must be a power of 2", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "maxdata") == 0)
    return parse_limit (key, value, MAX_DATA, &config_maxdata);
  if (strcmp (key, "maxlen") == 0)
    return parse_limit (key, value, UINT32_MAX, &config_maxlen);
  return next (nxdata, key, value);
}

static int
blocksize_config_complete (nbdkit_next_config_complete *next,
                           nbdkit_backend *nxdata)
{
  uint32_t minblock = config_minblock ? config_minblock : 1;

  if (config_maxdata % minblock) {
    nbdkit_error ("maxdata=%" PRIu32 " must be a multiple of minblock=%"
                  PRIu32, config_maxdata, minblock);
    return -1;
  }
  if (config_maxlen % minblock) {
    nbdkit_error ("maxlen=%" PRIu32 " must be a multiple of minblock=%"
                  PRIu32, config_maxlen, minblock);
    return -1;
  }
  return next (nxdata);
}

#define blocksize_config_help \
  "minblock=<SIZE>      Alignment of requests passed on (power of 2).\n" \
  "maxdata=<SIZE>       Largest read or write passed on.\n" \
  "maxlen=<SIZE>        Largest trim, zero, cache or extents passed on."

/* The limits in force on one connection. */
struct handle {
  uint32_t minblock;
  uint32_t maxdata;
  uint32_t maxlen;
  uint32_t preferred;           /* the next layer's, for block_size */
};

static void *
blocksize_open (nbdkit_next_open *next, nbdkit_context *context,
                int readonly, const char *exportname, int is_tls)
{
  struct handle *h;

  if (next (context, readonly, exportname) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  return h;
}

static void
blocksize_close (void *handle)
{
  free (handle);
}

/* Fill in the limits not given on the command line from what the layer
 * below advertises.
 */
static int
blocksize_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;
  uint32_t minimum, preferred, maximum;

  if (next->block_size (next, &minimum, &preferred, &maximum) == -1)
    return -1;
  h->preferred = preferred;
  h->minblock = config_minblock;
  if (h->minblock == 0) {
    h->minblock = minimum ? minimum : 1;
    if (!is_power_of_2 (h->minblock)) {
      nbdkit_error ("the layer below has a minimum block size of %" PRIu32
                    ", which is not a power of 2: set minblock=",
                    h->minblock);
      return -1;
    }
  }
  h->maxdata = config_maxdata;
  if (h->maxdata == 0) {
    h->maxdata = maximum ? MIN (maximum, MAX_DATA) : MAX_DATA;
    h->maxdata = MAX (ROUND_DOWN (h->maxdata, h->minblock), h->minblock);
  }
  h->maxlen = config_maxlen;
  if (h->maxlen == 0)
    h->maxlen = ROUND_DOWN (UINT32_MAX, h->minblock);
  if (h->maxdata % h->minblock || h->maxlen % h->minblock) {
    nbdkit_error ("maxdata and maxlen must be multiples of the minimum "
                  "block size %" PRIu32 " of the layer below", h->minblock);
    return -1;
  }
  nbdkit_debug ("blocksize: minblock=%" PRIu32 " maxdata=%" PRIu32
                " maxlen=%" PRIu32, h->minblock, h->maxdata, h->maxlen);
  return 0;
}

/* The unaligned tail of the disk cannot be written safely: hide it. */
static int64_t
blocksize_get_size (nbdkit_next *next, void *handle)
{
  struct handle *h = handle;
  int64_t size = next->get_size (next);

  return size == -1 ? -1 : ROUND_DOWN (size, (int64_t) h->minblock);
}

/* Clients may send anything; say which alignment is cheap. */
static int
blocksize_block_size (nbdkit_next *next, void *handle, uint32_t *minimum,
                      uint32_t *preferred, uint32_t *maximum)
{
  struct handle *h = handle;

  *minimum = 1;
  *preferred = MAX (MAX (h->minblock, h->preferred), 4096);
  *maximum = 0xffffffff;
  return 0;
}

/* Read the part [skip, skip+count) of the block at BLOCK_OFFSET. */
static int
read_partial (nbdkit_next *next, struct handle *h, char *buf, uint32_t skip,
              uint32_t count, uint64_t block_offset, int *err)
{
  CLEANUP_FREE char *block = malloc (h->minblock);

  if (block == NULL) {
    *err = ENOMEM;
    return -1;
  }
  if (next->pread (next, block, h->minblock, block_offset, 0, err) == -1)
    return -1;
  memcpy (buf, block + skip, count);
  return 0;
}

/* Replace [skip, skip+count) of the block at BLOCK_OFFSET with DATA, or
 * with zeroes if DATA is NULL.
 */
static int
write_partial (nbdkit_next *next, struct handle *h, const char *data,
               uint32_t skip, uint32_t count, uint64_t block_offset,
               uint32_t flags, int *err)
{
  CLEANUP_FREE char *block = malloc (h->minblock);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&rmw_lock);

  if (block == NULL) {
    *err = ENOMEM;
    return -1;
  }
  if (next->pread (next, block, h->minblock, block_offset, 0, err) == -1)
    return -1;
  if (data)
    memcpy (block + skip, data, count);
  else
    memset (block + skip, 0, count);
  return next->pwrite (next, block, h->minblock, block_offset,
                       flags & NBDKIT_FLAG_FUA, err);
}

/* How a request [offset, offset+count) divides into an unaligned head,
 * whole blocks, and an unaligned tail.
 */
struct split {
  uint32_t head_skip, head;     /* head bytes, from head_skip in its block */
  uint32_t body;
  uint32_t tail;
};

static struct split
split_request (const struct handle *h, uint32_t count, uint64_t offset)
{
  struct split s = { 0 };
  uint32_t mask = h->minblock - 1;

  s.head_skip = offset & mask;
  if (s.head_skip) {
    s.head = MIN (h->minblock - s.head_skip, count);
    count -= s.head;
  }
  s.body = count & ~mask;
  s.tail = count & mask;
  return s;
}

static int
blocksize_pread (nbdkit_next *next, void *handle, void *b, uint32_t count,
                 uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;
  struct split s = split_request (h, count, offset);
  char *buf = b;

  if (s.head) {
    if (read_partial (next, h, buf, s.head_skip, s.head,
                      offset - s.head_skip, err) == -1)
      return -1;
    buf += s.head;
    offset += s.head;
  }
  while (s.body > 0) {
    uint32_t n = MIN (s.body, h->maxdata);
    if (next->pread (next, buf, n, offset, flags, err) == -1)
      return -1;
    buf += n;
    offset += n;
    s.body -= n;
  }
  if (s.tail)
    return read_partial (next, h, buf, 0, s.tail, offset, err);
  return 0;
}

static int
blocksize_pwrite (nbdkit_next *next, void *handle, const void *b,
                  uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;
  struct split s = split_request (h, count, offset);
  const char *buf = b;

  if (s.head) {
    if (write_partial (next, h, buf, s.head_skip, s.head,
                       offset - s.head_skip, flags, err) == -1)
      return -1;
    buf += s.head;
    offset += s.head;
  }
  while (s.body > 0) {
    uint32_t n = MIN (s.body, h->maxdata);
    if (next->pwrite (next, buf, n, offset, flags, err) == -1)
      return -1;
    buf += n;
    offset += n;
    s.body -= n;
  }
  if (s.tail)
    return write_partial (next, h, buf, 0, s.tail, offset, flags, err);
  return 0;
}

static int
blocksize_zero (nbdkit_next *next, void *handle, uint32_t count,
                uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;
  struct split s = split_request (h, count, offset);

  /* A read-modify-write is no faster than writing zeroes. */
  if ((flags & NBDKIT_FLAG_FAST_ZERO) && (s.head || s.tail)) {
    *err = ENOTSUP;
    return -1;
  }
  if (s.head) {
    if (write_partial (next, h, NULL, s.head_skip, s.head,
                       offset - s.head_skip, flags, err) == -1)
      return -1;
    offset += s.head;
  }
  while (s.body > 0) {
    uint32_t n = MIN (s.body, h->maxlen);
    if (next->zero (next, n, offset, flags, err) == -1)
      return -1;
    offset += n;
    s.body -= n;
  }
  if (s.tail)
    return write_partial (next, h, NULL, 0, s.tail, offset, flags, err);
  return 0;
}

/* Trimming is advisory: unaligned heads and tails are left alone. */
static int
blocksize_trim (nbdkit_next *next, void *handle, uint32_t count,
                uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;
  struct split s = split_request (h, count, offset);

  offset += s.head;
  while (s.body > 0) {
    uint32_t n = MIN (s.body, h->maxlen);
    if (next->trim (next, n, offset, flags, err) == -1)
      return -1;
    offset += n;
    s.body -= n;
  }
  return 0;
}

/* The blocks touched by [offset, offset+count), as [*start, *end), which
 * lies within the (aligned) export.
 */
static void
widen (const struct handle *h, uint32_t count, uint64_t offset,
       uint64_t *start, uint64_t *end)
{
  *start = ROUND_DOWN (offset, (uint64_t) h->minblock);
  *end = ROUND_UP (offset + count, (uint64_t) h->minblock);
}

static int
blocksize_cache (nbdkit_next *next, void *handle, uint32_t count,
                 uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;
  uint64_t start, end;

  widen (h, count, offset, &start, &end);
  while (start < end) {
    uint32_t n = MIN (end - start, h->maxlen);
    if (next->cache (next, n, start, flags, err) == -1)
      return -1;
    start += n;
  }
  return 0;
}

/* Extents of whole blocks: a block whose parts differ is reported with
 * the properties they share.  One answer of at most maxlen bytes; the
 * client asks again for the rest.
 */
static int
blocksize_extents (nbdkit_next *next, void *handle, uint32_t count,
                   uint64_t offset, uint32_t flags,
                   struct nbdkit_extents *extents, int *err)
{
  struct handle *h = handle;
  struct nbdkit_extents *aligned;
  uint64_t start, end;
  size_t i;
  int r = -1;

  widen (h, count, offset, &start, &end);
  end = MIN (end, start + h->maxlen);
  aligned = nbdkit_extents_new (start, end);
  if (aligned == NULL) {
    *err = errno;
    return -1;
  }
  if (nbdkit_extents_aligned (next, end - start, start, flags, h->minblock,
                              aligned, err) == -1)
    goto out;
  for (i = 0; i < nbdkit_extents_count (aligned); ++i) {
    struct nbdkit_extent e = nbdkit_get_extent (aligned, i);
    if (nbdkit_add_extent (extents, e.offset, e.length, e.type) == -1) {
      *err = errno;
      goto out;
    }
  }
  r = 0;
 out:
  nbdkit_extents_free (aligned);
  return r;
}

static struct nbdkit_filter filter = {
  .name              = "blocksize",
  .longname          = "nbdkit blocksize filter",
  .version           = PACKAGE_VERSION,
  .description       = "Align and split requests for the layer below",
  .config            = blocksize_config,
  .config_complete   = blocksize_config_complete,
  .config_help       = blocksize_config_help,
  .open              = blocksize_open,
  .close             = blocksize_close,
  .prepare           = blocksize_prepare,
  .get_size          = blocksize_get_size,
  .block_size        = blocksize_block_size,
  .pread             = blocksize_pread,
  .pwrite            = blocksize_pwrite,
  .zero              = blocksize_zero,
  .trim              = blocksize_trim,
  .cache             = blocksize_cache,
  .extents           = blocksize_extents,
};

NBDKIT_REGISTER_FILTER (filter)
