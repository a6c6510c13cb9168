/* SPDX-License-Identifier: BSD-3-Clause
 * The cache filter: keep blocks of the plugin in a temporary file so
 * that reading them again does not reach the plugin, and (in writeback
 * mode) collect writes there until the client flushes.  Requests are
 * split into blocks here; the block store is blk.c, eviction reclaim.c.
 */

#include <config.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nbdkit-filter.h>

#include "blk.h"
#include "cleanup.h"
#include "utils.h"

/* cache=: what happens to writes and flushes. */
enum cache_mode cache_mode = CACHE_MODE_WRITEBACK;

/* cache-min-block-size=: the smallest block size (the file system's
 * block size is used if larger).
 */
uint32_t min_block_size = 65536;

/* cache-max-size=: the most the cache may hold, 0 for no limit, and
 * cache-high-threshold= / cache-low-threshold=: start evicting above
 * high% of it, stop below low%.
 */
uint64_t max_size = 0;
unsigned high_threshold = 95;
unsigned low_threshold = 80;

/* cache-on-read=: also cache what is read: never, always, or while the
 * file cache_on_read_path exists.
 */
static bool cache_on_read = false;
static char *cache_on_read_path = NULL;

#define MIN_BLOCK_SIZE 4096
#define MAX_BLOCK_SIZE (64 * 1024 * 1024)

static void
cache_unload (void)
{
  blk_free ();
  free (cache_on_read_path);
}

static int
parse_threshold (const char *key, const char *value, unsigned *ret)
{
  if (nbdkit_parse_unsigned (key, value, ret) == -1)
    return -1;
  if (*ret == 0 || *ret > 100) {
    nbdkit_error ("%s=%s: the threshold is a percentage from 1 to 100",
                  key, value);
    return -1;
  }
  return 0;
}

static int
cache_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
              const char *key, const char *value)
{
  int64_t r;
  int b;

  if (strcmp (key, "cache") == 0) {
    if (strcmp (value, "writeback") == 0)
      cache_mode = CACHE_MODE_WRITEBACK;
    else if (strcmp (value, "writethrough") == 0)
      cache_mode = CACHE_MODE_WRITETHROUGH;
    else if (strcmp (value, "unsafe") == 0)
      cache_mode = CACHE_MODE_UNSAFE;
    else {
      nbdkit_error ("cache=%s: expected writeback, writethrough or unsafe",
                    value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "cache-min-block-size") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1 || r < MIN_BLOCK_SIZE || r > MAX_BLOCK_SIZE ||
        !is_power_of_2 (r)) {
      nbdkit_error ("cache-min-block-size=%s: the block size must be a "
                    "power of 2 between 4K and 64M", value);
      return -1;
    }
    min_block_size = r;
    return 0;
  }
  if (strcmp (key, "cache-max-size") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1) {
      nbdkit_error ("cache-max-size: cannot parse '%s'", value);
      return -1;
    }
    max_size = r;
    return 0;
  }
  if (strcmp (key, "cache-high-threshold") == 0)
    return parse_threshold (key, value, &high_threshold);
  if (strcmp (key, "cache-low-threshold") == 0)
    return parse_threshold (key, value, &low_threshold);
  if (strcmp (key, "cache-on-read") == 0) {
    free (cache_on_read_path);
    cache_on_read_path = NULL;
    if (value[0] == '/') {
      cache_on_read_path = strdup (value);
      if (cache_on_read_path == NULL) {
        nbdkit_error ("strdup: %m");
        return -1;
      }
      cache_on_read = false;
      return 0;
    }
    b = nbdkit_parse_bool (value);
    if (b == -1) {
      nbdkit_error ("cache-on-read: expected a boolean or an absolute "
                    "path, got '%s'", value);
      return -1;
    }
    cache_on_read = b;
    return 0;
  }
  return next (nxdata, key, value);
}

static int
cache_config_complete (nbdkit_next_config_complete *next,
                       nbdkit_backend *nxdata)
{
  if (low_threshold >= high_threshold) {
    nbdkit_error ("cache-low-threshold (%u) must be below "
                  "cache-high-threshold (%u)", low_threshold, high_threshold);
    return -1;
  }
  return next (nxdata);
}

#define cache_config_help \
  "cache=MODE                   writeback (default), writethrough or unsafe.\n" \
  "cache-min-block-size=SIZE    Smallest block size of the cache (64K).\n" \
  "cache-max-size=SIZE          Largest size of the cache (no limit).\n" \
  "cache-high-threshold=PCT     Start evicting above PCT% of it (95).\n" \
  "cache-low-threshold=PCT      Stop evicting below PCT% of it (80).\n" \
  "cache-on-read=BOOL|/PATH     Cache what is read (always, never, or\n" \
  "                             while /PATH exists)."

/* The cache file is made before nbdkit forks, so a bad TMPDIR or size
 * stops nbdkit at start-up instead of failing every connection.
 */
static int
cache_get_ready (int thread_model)
{
  return blk_init ();
}

/* The answers of the next layer used on the data path are asked here,
 * once, so they are known before any request needs them.
 */
static int
cache_prepare (nbdkit_next *next, void *handle, int readonly)
{
  int64_t size = next->get_size (next);

  if (size == -1)
    return -1;
  if (next->can_write (next) == -1 || next->can_flush (next) == -1 ||
      next->can_extents (next) == -1)
    return -1;
  if (next->can_write (next) == 1 &&
      (next->can_fua (next) == -1 || next->can_zero (next) == -1 ||
       next->can_trim (next) == -1))
    return -1;
  return blk_set_size (size);
}

/* Flush is always needed to write back dirty blocks; FUA, zero and
 * cache are done here whatever the plugin can do.
 */
static int
cache_can_flush (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
cache_can_fua (nbdkit_next *next, void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

static int
cache_can_zero (nbdkit_next *next, void *handle)
{
  return NBDKIT_ZERO_NATIVE;
}

static int
cache_can_fast_zero (nbdkit_next *next, void *handle)
{
  return 0;
}

static int
cache_can_cache (nbdkit_next *next, void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

static bool
caching_on_read (void)
{
  if (cache_on_read_path)
    return access (cache_on_read_path, F_OK) == 0;
  return cache_on_read;
}

/* A one-block buffer, allocated when a request first needs it. */
static char *
get_bounce (char **bounce, int *err)
{
  if (*bounce == NULL) {
    *bounce = malloc (blk_size ());
    if (*bounce == NULL) {
      *err = ENOMEM;
      nbdkit_error ("malloc: %m");
    }
  }
  return *bounce;
}

static int
cache_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  CLEANUP_FREE char *bounce = NULL;
  bool copy = caching_on_read ();
  uint32_t bs = blk_size ();
  char *p = buf;

  while (count > 0) {
    uint64_t blknum = offset / bs;
    uint32_t in_blk = offset % bs;
    uint32_t n = MIN (count, blk_length (blknum) - in_blk);

    if (!copy && blk_get_state (blknum) == BLOCK_NOT_CACHED) {
      /* A run of blocks that are not cached: one request to the plugin. */
      while (n < count && blk_get_state ((offset + n) / bs) ==
             BLOCK_NOT_CACHED)
        n = MIN (count, n + bs);
      if (next->pread (next, p, n, offset, 0, err) == -1)
        return -1;
    }
    else if (get_bounce (&bounce, err) == NULL ||
             blk_read (next, blknum, in_blk, n, p, copy, bounce, err) == -1)
      return -1;
    p += n;
    offset += n;
    count -= n;
  }
  return 0;
}

/* Write BUF, or zeroes if BUF is NULL, block by block. */
static int
write_range (nbdkit_next *next, const char *buf, uint32_t count,
             uint64_t offset, uint32_t flags, bool zero_whole_blocks,
             int *err)
{
  CLEANUP_FREE char *bounce = NULL;
  bool fua = flags & NBDKIT_FLAG_FUA;
  uint32_t bs = blk_size ();

  if (get_bounce (&bounce, err) == NULL)
    return -1;
  while (count > 0) {
    uint64_t blknum = offset / bs;
    uint32_t in_blk = offset % bs;
    uint32_t len = blk_length (blknum);
    uint32_t n = MIN (count, len - in_blk);
    int r;

    if (zero_whole_blocks && in_blk == 0 && n == len)
      r = blk_zero_full (next, blknum, flags, bounce, err);
    else
      r = blk_write (next, blknum, in_blk, n, buf, fua, bounce, err);
    if (r == -1)
      return -1;
    if (buf)
      buf += n;
    offset += n;
    count -= n;
  }
  return 0;
}

static int
cache_pwrite (nbdkit_next *next, void *handle, const void *buf,
              uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  return write_range (next, buf, count, offset, flags, false, err);
}

/* Whole blocks are zeroed in the plugin at once and dropped from the
 * cache; parts of blocks are written as zeroes like any write.
 */
static int
cache_zero (nbdkit_next *next, void *handle, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  return write_range (next, NULL, count, offset, flags, true, err);
}

/* Only whole blocks are trimmed; a trim is advisory, so skipping the
 * parts of blocks is allowed.
 */
static int
cache_trim (nbdkit_next *next, void *handle, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  uint32_t bs = blk_size ();
  uint64_t end = offset + count;
  uint64_t blknum;

  for (blknum = (offset + bs - 1) / bs; blknum * bs < end; ++blknum) {
    if (blknum * bs + blk_length (blknum) > end)
      break;
    if (blk_trim_full (next, blknum, flags, err) == -1)
      return -1;
  }
  return 0;
}

static int
write_back (nbdkit_next *next, int *err)
{
  CLEANUP_FREE char *bounce = NULL;

  /* A read-only connection has no dirty blocks of its own, and cannot
   * write back those of others.
   */
  if (blk_dirty_count () > 0 && next->can_write (next) == 1 &&
      (get_bounce (&bounce, err) == NULL ||
       blk_write_back_all (next, bounce, err) == -1))
    return -1;
  if (next->can_flush (next) == 1)
    return next->flush (next, 0, err);
  return 0;
}

static int
cache_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  if (cache_mode == CACHE_MODE_UNSAFE)
    return 0;
  return write_back (next, err);
}

/* Dirty blocks are not left behind when the last client of them goes:
 * write them back as a connection ends (not in unsafe mode).
 */
static int
cache_finalize (nbdkit_next *next, void *handle)
{
  int err = 0;

  if (cache_mode != CACHE_MODE_WRITEBACK || blk_dirty_count () == 0)
    return 0;
  if (write_back (next, &err) == -1) {
    nbdkit_error ("cache: writing back dirty blocks at disconnect: %s",
                  strerror (err));
    return -1;
  }
  return 0;
}

static int
cache_cache (nbdkit_next *next, void *handle, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  CLEANUP_FREE char *bounce = NULL;
  uint32_t bs = blk_size ();
  uint64_t blknum, last = (offset + count - 1) / bs;

  if (get_bounce (&bounce, err) == NULL)
    return -1;
  for (blknum = offset / bs; blknum <= last; ++blknum)
    if (blk_prefetch (next, blknum, bounce, err) == -1)
      return -1;
  return 0;
}

/* The plugin's extents, except that dirty blocks are data: the plugin
 * does not know about them yet.
 */
static int
cache_extents (nbdkit_next *next, void *handle, uint32_t count,
               uint64_t offset, uint32_t flags,
               struct nbdkit_extents *extents, int *err)
{
  struct nbdkit_extents *sub;
  uint32_t bs = blk_size ();
  uint64_t end = offset + count, pos = offset;
  size_t i;
  int r = -1;

  if (blk_dirty_count () == 0)
    return next->extents (next, count, offset, flags, extents, err);

  sub = nbdkit_extents_new (offset, end);
  if (sub == NULL) {
    *err = errno;
    return -1;
  }
  if (next->extents (next, count, offset, flags & ~NBDKIT_FLAG_REQ_ONE,
                     sub, err) == -1)
    goto out;
  for (i = 0; i < nbdkit_extents_count (sub) && pos < end; ++i) {
    struct nbdkit_extent e = nbdkit_get_extent (sub, i);
    uint64_t e_end = MIN (e.offset + e.length, end);

    if (e.offset != pos)
      break;
    /* Split the extent at block boundaries where dirtiness changes. */
    while (pos < e_end) {
      uint64_t next_pos = MIN (ROUND_DOWN (pos, bs) + bs, e_end);
      uint32_t type = e.type;

      if (blk_get_state (pos / bs) == BLOCK_DIRTY)
        type = 0;
      if (nbdkit_add_extent (extents, pos, next_pos - pos, type) == -1) {
        *err = errno;
        goto out;
      }
      pos = next_pos;
    }
  }
  r = 0;
 out:
  nbdkit_extents_free (sub);
  return r;
}

static struct nbdkit_filter filter = {
  .name              = "cache",
  .longname          = "nbdkit caching filter",
  .version           = PACKAGE_VERSION,
  .description       = "Cache blocks of the plugin in a temporary file",
  .unload            = cache_unload,
  .config            = cache_config,
  .config_complete   = cache_config_complete,
  .config_help       = cache_config_help,
  .get_ready         = cache_get_ready,
  .prepare           = cache_prepare,
  .finalize          = cache_finalize,
  .can_flush         = cache_can_flush,
  .can_fua           = cache_can_fua,
  .can_zero          = cache_can_zero,
  .can_fast_zero     = cache_can_fast_zero,
  .can_cache         = cache_can_cache,
  .pread             = cache_pread,
  .pwrite            = cache_pwrite,
  .zero              = cache_zero,
  .trim              = cache_trim,
  .flush             = cache_flush,
  .cache             = cache_cache,
  .extents           = cache_extents,
};

NBDKIT_REGISTER_FILTER (filter)
