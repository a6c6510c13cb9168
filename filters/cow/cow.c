/* SPDX-License-Identifier: BSD-3-Clause
 * The cow filter: a writable copy-on-write view of a plugin.  The plugin
 * is opened read-only; writes, trims and zeroes go to an overlay shared
 * by all clients (blk.c) and are lost when nbdkit exits.
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

/* cow-block-size=: the unit of copying, a power of 2, at least 4K. */
static uint32_t blksize = 65536;

/* cow-on-cache=: copy blocks named by NBD_CMD_CACHE into the overlay. */
static bool cow_on_cache = false;

/* cow-on-read=: copy blocks that are read into the overlay: never,
 * always, or while the file cow_on_read_path exists.
 */
static bool cow_on_read = false;
static char *cow_on_read_path = NULL;

#define MIN_BLOCK_SIZE 4096
#define MAX_BLOCK_SIZE (64 * 1024 * 1024)

static void
cow_unload (void)
{
  blk_free ();
  free (cow_on_read_path);
}

static int
cow_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
            const char *key, const char *value)
{
  int64_t r;
  int b;

  if (strcmp (key, "cow-block-size") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1) {
      nbdkit_error ("cow-block-size: cannot parse '%s'", value);
      return -1;
    }
    if (r < MIN_BLOCK_SIZE || r > MAX_BLOCK_SIZE || !is_power_of_2 (r)) {
      nbdkit_error ("cow-block-size=%s: the block size must be a power of 2 "
                    "between 4K and 64M", value);
      return -1;
    }
    blksize = r;
    return 0;
  }
  if (strcmp (key, "cow-on-cache") == 0) {
    b = nbdkit_parse_bool (value);
    if (b == -1) {
      nbdkit_error ("cow-on-cache: expected a boolean, got '%s'", value);
      return -1;
    }
    cow_on_cache = b;
    return 0;
  }
  if (strcmp (key, "cow-on-read") == 0) {
    free (cow_on_read_path);
    cow_on_read_path = NULL;
    if (value[0] == '/') {
      cow_on_read_path = strdup (value);
      if (cow_on_read_path == NULL) {
        nbdkit_error ("strdup: %m");
        return -1;
      }
      cow_on_read = false;
      return 0;
    }
    b = nbdkit_parse_bool (value);
    if (b == -1) {
      nbdkit_error ("cow-on-read: expected a boolean or an absolute path, "
                    "got '%s'", value);
      return -1;
    }
    cow_on_read = b;
    return 0;
  }
  return next (nxdata, key, value);
}

#define cow_config_help \
  "cow-block-size=<N>       Block size of the overlay (default 64K).\n" \
  "cow-on-cache=<BOOL>      Copy cache (prefetch) requests to the overlay.\n" \
  "cow-on-read=<BOOL>|/PATH Copy read blocks to the overlay (always,\n" \
  "                         never, or while /PATH exists)."

/* The overlay file is made before nbdkit forks, so a bad TMPDIR stops
 * nbdkit at start-up instead of failing every connection.
 */
static int
cow_get_ready (int thread_model)
{
  return blk_init (blksize);
}

/* The plugin never sees writes: open it read-only. */
static void *
cow_open (nbdkit_next_open *next, nbdkit_context *context,
          int readonly, const char *exportname, int is_tls)
{
  if (next (context, 1, exportname) == -1)
    return NULL;
  return NBDKIT_HANDLE_NOT_NEEDED;
}

static int
cow_prepare (nbdkit_next *next, void *handle, int readonly)
{
  int64_t size = next->get_size (next);

  if (size == -1)
    return -1;
  /* Asked now: the overlay passes extents questions on for blocks it
   * does not hold, and the next layer must know its answer first.
   */
  if (next->can_extents (next) == -1)
    return -1;
  return blk_set_size (size);
}

/* Writes of every kind are done in the overlay, so they are always
 * possible, fast, and visible to every connection at once.
 */
static int
cow_can_write (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
cow_can_flush (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
cow_can_trim (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
cow_can_zero (nbdkit_next *next, void *handle)
{
  return NBDKIT_ZERO_NATIVE;
}

static int
cow_can_fast_zero (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
cow_can_fua (nbdkit_next *next, void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

static int
cow_can_multi_conn (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
cow_can_extents (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
cow_can_cache (nbdkit_next *next, void *handle)
{
  if (cow_on_cache)
    return NBDKIT_CACHE_NATIVE;
  return next->can_cache (next);
}

static bool
copying_on_read (void)
{
  if (cow_on_read_path)
    return access (cow_on_read_path, F_OK) == 0;
  return cow_on_read;
}

/* A buffer of one block for read-modify-write, made when first needed
 * by a request and freed at its end.
 */
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

/* How many bytes from OFFSET (at most COUNT) lie in blocks in the same
 * state as the block containing OFFSET.
 */
static uint32_t
same_state_run (uint64_t offset, uint32_t count, enum block_state state)
{
  uint64_t bs = blk_size ();
  uint64_t blknum = offset / bs;
  uint64_t end = offset + count;
  uint64_t run_end = (blknum + 1) * bs;

  while (run_end < end && blk_get_state (run_end / bs) == state)
    run_end += bs;
  return MIN (run_end, end) - offset;
}

static int
cow_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
           uint64_t offset, uint32_t flags, int *err)
{
  CLEANUP_FREE char *bounce = NULL;
  bool copy = copying_on_read ();
  uint32_t bs = blk_size ();
  char *p = buf;

  while (count > 0) {
    uint64_t blknum = offset / bs;
    uint32_t in_blk = offset % bs;
    enum block_state state = blk_get_state (blknum);
    uint32_t n;

    if (state == BLOCK_NOT_ALLOCATED && copy) {
      n = MIN (count, bs - in_blk);
      if (get_bounce (&bounce, err) == NULL ||
          blk_copy_up (next, blknum, bounce, err) == -1)
        return -1;
      memcpy (p, bounce + in_blk, n);
    }
    else {
      n = same_state_run (offset, count, state);
      switch (state) {
      case BLOCK_NOT_ALLOCATED:
        if (next->pread (next, p, n, offset, 0, err) == -1)
          return -1;
        break;
      case BLOCK_ALLOCATED:
        if (blk_read_overlay (p, n, offset, err) == -1)
          return -1;
        break;
      case BLOCK_ZERO:
      default:
        memset (p, 0, n);
      }
    }
    p += n;
    offset += n;
    count -= n;
  }
  return 0;
}

/* Write BUF (or zeroes if BUF is NULL; a whole zero block is recorded
 * in the block map, not written) over [OFFSET, OFFSET+COUNT).
 */
static int
write_range (nbdkit_next *next, const char *buf, uint32_t count,
             uint64_t offset, int *err)
{
  CLEANUP_FREE char *bounce = NULL;
  uint32_t bs = blk_size ();

  while (count > 0) {
    uint64_t blknum = offset / bs;
    uint32_t in_blk = offset % bs;
    uint32_t len = blk_length (blknum);
    uint32_t n = MIN (count, len - in_blk);
    int r;

    if (in_blk == 0 && n == len)
      r = buf ? blk_write_full (blknum, buf, err) : blk_zero_full (blknum, err);
    else if (get_bounce (&bounce, err) == NULL)
      r = -1;
    else
      r = blk_write_part (next, blknum, in_blk, n, buf, bounce, err);
    if (r == -1)
      return -1;
    if (buf)
      buf += n;
    offset += n;
    count -= n;
  }
  return 0;
}

/* FUA needs nothing: the overlay does not outlive nbdkit anyway. */
static int
cow_pwrite (nbdkit_next *next, void *handle, const void *buf,
            uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  return write_range (next, buf, count, offset, err);
}

static int
cow_zero (nbdkit_next *next, void *handle, uint32_t count,
          uint64_t offset, uint32_t flags, int *err)
{
  return write_range (next, NULL, count, offset, err);
}

/* A trim is recorded like a zero, so trimmed data never reappears from
 * the plugin.
 */
static int
cow_trim (nbdkit_next *next, void *handle, uint32_t count,
          uint64_t offset, uint32_t flags, int *err)
{
  return write_range (next, NULL, count, offset, err);
}

static int
cow_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  return 0;
}

/* Add the plugin's extents for [OFFSET, END) to EXTENTS, clipped to the
 * range.  Returns 1 if it answered for all of it, 0 if for less.
 */
static int
plugin_extents (nbdkit_next *next, uint64_t offset, uint64_t end,
                uint32_t flags, struct nbdkit_extents *extents, int *err)
{
  struct nbdkit_extents *sub;
  uint64_t covered = offset;
  size_t i;
  int r = -1;

  sub = nbdkit_extents_new (offset, end);
  if (sub == NULL) {
    *err = errno;
    return -1;
  }
  if (next->extents (next, end - offset, offset, flags, sub, err) == -1)
    goto out;
  for (i = 0; i < nbdkit_extents_count (sub); ++i) {
    struct nbdkit_extent e = nbdkit_get_extent (sub, i);
    uint64_t e_end = MIN (e.offset + e.length, end);

    if (e.offset != covered || e_end <= e.offset)
      break;
    if (nbdkit_add_extent (extents, e.offset, e_end - e.offset,
                           e.type) == -1) {
      *err = errno;
      goto out;
    }
    covered = e_end;
  }
  r = covered == end;
 out:
  nbdkit_extents_free (sub);
  return r;
}

static int
cow_extents (nbdkit_next *next, void *handle, uint32_t count,
             uint64_t offset, uint32_t flags,
             struct nbdkit_extents *extents, int *err)
{
  uint32_t bs = blk_size ();

  while (count > 0) {
    enum block_state state = blk_get_state (offset / bs);
    uint32_t n = same_state_run (offset, count, state);
    int r;

    switch (state) {
    case BLOCK_NOT_ALLOCATED:
      r = plugin_extents (next, offset, offset + n, flags, extents, err);
      if (r == -1)
        return -1;
      if (r == 0)
        return 0;               /* a short answer is allowed */
      break;
    case BLOCK_ALLOCATED:
      if (nbdkit_add_extent (extents, offset, n, 0) == -1) {
        *err = errno;
        return -1;
      }
      break;
    case BLOCK_ZERO:
    default:
      if (nbdkit_add_extent (extents, offset, n,
                             NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) == -1) {
        *err = errno;
        return -1;
      }
    }
    if (flags & NBDKIT_FLAG_REQ_ONE)
      return 0;
    offset += n;
    count -= n;
  }
  return 0;
}

static int
cow_cache (nbdkit_next *next, void *handle, uint32_t count,
           uint64_t offset, uint32_t flags, int *err)
{
  CLEANUP_FREE char *bounce = NULL;
  uint32_t bs = blk_size ();
  uint64_t blknum, last;

  if (!cow_on_cache)
    return next->cache (next, count, offset, flags, err);

  last = (offset + count - 1) / bs;
  for (blknum = offset / bs; blknum <= last; ++blknum) {
    if (blk_get_state (blknum) != BLOCK_NOT_ALLOCATED)
      continue;
    if (get_bounce (&bounce, err) == NULL ||
        blk_copy_up (next, blknum, bounce, err) == -1)
      return -1;
  }
  return 0;
}

static struct nbdkit_filter filter = {
  .name              = "cow",
  .longname          = "nbdkit copy-on-write (COW) filter",
  .version           = PACKAGE_VERSION,
  .description       = "Make a plugin writable with a temporary "
                       "copy-on-write overlay",
  .unload            = cow_unload,
  .config            = cow_config,
  .config_help       = cow_config_help,
  .get_ready         = cow_get_ready,
  .open              = cow_open,
  .prepare           = cow_prepare,
  .can_write         = cow_can_write,
  .can_flush         = cow_can_flush,
  .can_trim          = cow_can_trim,
  .can_zero          = cow_can_zero,
  .can_fast_zero     = cow_can_fast_zero,
  .can_fua           = cow_can_fua,
  .can_multi_conn    = cow_can_multi_conn,
  .can_extents       = cow_can_extents,
  .can_cache         = cow_can_cache,
  .pread             = cow_pread,
  .pwrite            = cow_pwrite,
  .zero              = cow_zero,
  .trim              = cow_trim,
  .flush             = cow_flush,
  .extents           = cow_extents,
  .cache             = cow_cache,
};

NBDKIT_REGISTER_FILTER (filter)
