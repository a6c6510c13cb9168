/* SPDX-License-Identifier: BSD-3-Clause
 * The cache filter's block store: an unlinked temporary file laid out
 * like the disk (block N at offset N * blksize), a map with 2 bits of
 * state per block (not cached, clean, dirty), and a fixed set of locks
 * serializing the operations on a block.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/statvfs.h>

#include <nbdkit-filter.h>

#include "bitmap.h"
#include "blk.h"
#include "cleanup.h"
#include "fileio.h"
#include "utils.h"

/* Operations on block N hold block_locks[N % NR_BLOCK_LOCKS]: a fixed
 * number of locks, so memory does not grow with the disk.  Code holds at
 * most one of them at a time.
 */
#define NR_BLOCK_LOCKS 128
static pthread_mutex_t block_locks[NR_BLOCK_LOCKS] = {
  [0 ... NR_BLOCK_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER
};

#define BLOCK_LOCK(blknum) \
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&block_locks[(blknum) % NR_BLOCK_LOCKS])

/* Guards setting the disk size (once, by the first connection). */
static pthread_mutex_t size_lock = PTHREAD_MUTEX_INITIALIZER;

static int fd = -1;             /* the cache file */
static struct bitmap bm;        /* enum block_state of every block */
static uint64_t disk_size;
static bool size_known;

/* Counters kept with atomic operations. */
static uint64_t cached_blocks;
static uint64_t dirty_blocks;

#define MAX_BLOCK_SIZE (64 * 1024 * 1024)

/* An unlinked temporary file in $TMPDIR (default /var/tmp). */
static int
create_cache_file (void)
{
  const char *tmpdir;
  int r = make_unlinked_tmpfile ("nbdkit-cache", &tmpdir);

  if (r == -1)
    nbdkit_error ("cannot create the cache file in %s: %m "
                  "(set TMPDIR to a writable directory)", tmpdir);
  return r;
}

/* The block size is cache-min-block-size, or the file system's block
 * size if that is larger, so punching a block out frees whole file
 * system blocks.
 */
int
blk_init (void)
{
  struct statvfs sv;
  uint32_t blksize = min_block_size;

  fd = create_cache_file ();
  if (fd == -1)
    return -1;
  if (fstatvfs (fd, &sv) == 0 && is_power_of_2 (sv.f_bsize) &&
      sv.f_bsize > blksize && sv.f_bsize <= MAX_BLOCK_SIZE)
    blksize = sv.f_bsize;
  bitmap_init (&bm, blksize, 2);
  if (max_size > 0 && max_size < blksize) {
    nbdkit_error ("cache-max-size=%" PRIu64 " is smaller than the block "
                  "size (%" PRIu32 ")", max_size, blksize);
    return -1;
  }
  nbdkit_debug ("cache: block size %" PRIu32, blksize);
  return 0;
}

void
blk_free (void)
{
  if (fd >= 0)
    close (fd);
  fd = -1;
  bitmap_free (&bm);
  /* After unload, get_ready starts again from an empty map. */
  size_known = false;
  reclaim_free ();
}

int
blk_set_size (uint64_t size)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&size_lock);

  if (size_known) {
    if (size != disk_size) {
      nbdkit_error ("the underlying disk is %" PRIu64 " bytes, but the "
                    "cache was made for %" PRIu64 " bytes: the plugin must "
                    "not change size under the cache filter", size, disk_size);
      return -1;
    }
    return 0;
  }
  if (bitmap_resize (&bm, size) == -1 || reclaim_init (bm.nr_blocks) == -1) {
    nbdkit_error ("cannot allocate the block map for %" PRIu64 " bytes: %m",
                  size);
    return -1;
  }
  disk_size = size;
  size_known = true;
  nbdkit_debug ("cache: %" PRIu64 " blocks of %" PRIu32 " bytes, block map "
                "%zu bytes", bm.nr_blocks, bm.blksize, bm.size);
  return 0;
}

uint32_t
blk_size (void)
{
  return bm.blksize;
}

uint32_t
blk_length (uint64_t blknum)
{
  return MIN ((uint64_t) bm.blksize, disk_size - blknum * bm.blksize);
}

enum block_state
blk_get_state (uint64_t blknum)
{
  return bitmap_get_blk (&bm, blknum, BLOCK_NOT_CACHED);
}

uint64_t
blk_dirty_count (void)
{
  return __atomic_load_n (&dirty_blocks, __ATOMIC_RELAXED);
}

uint64_t
blk_cached_count (void)
{
  return __atomic_load_n (&cached_blocks, __ATOMIC_RELAXED);
}

uint64_t
blk_nr_blocks (void)
{
  return bm.nr_blocks;
}

int64_t
blk_next_cached (uint64_t blknum)
{
  return bitmap_next (&bm, blknum);
}

/* With the block's lock held: change its state and the counters. */
static enum block_state
set_state (uint64_t blknum, enum block_state new)
{
  enum block_state old = bitmap_set_blk (&bm, blknum, new);

  if (old == BLOCK_NOT_CACHED && new != BLOCK_NOT_CACHED)
    __atomic_add_fetch (&cached_blocks, 1, __ATOMIC_RELAXED);
  else if (old != BLOCK_NOT_CACHED && new == BLOCK_NOT_CACHED)
    __atomic_sub_fetch (&cached_blocks, 1, __ATOMIC_RELAXED);
  if (old == BLOCK_DIRTY && new != BLOCK_DIRTY)
    __atomic_sub_fetch (&dirty_blocks, 1, __ATOMIC_RELAXED);
  else if (old != BLOCK_DIRTY && new == BLOCK_DIRTY)
    __atomic_add_fetch (&dirty_blocks, 1, __ATOMIC_RELAXED);
  return old;
}

/* Reads and writes of the cache file; reading past its end gives
 * zeroes.
 */
static int
read_cache (void *buf, uint32_t count, uint64_t offset, int *err)
{
  if (full_pread (fd, buf, count, offset) == -1) {
    *err = errno;
    nbdkit_error ("pread: cache file: %m");
    return -1;
  }
  return 0;
}

static int
write_cache (const void *buf, uint32_t count, uint64_t offset, int *err)
{
  if (full_pwrite (fd, buf, count, offset) == -1) {
    *err = errno;
    nbdkit_error ("pwrite: cache file: %m");
    return -1;
  }
  return 0;
}

/* With the block's lock held: forget a block and free its space. */
static void
drop_block (uint64_t blknum)
{
  if (set_state (blknum, BLOCK_NOT_CACHED) == BLOCK_NOT_CACHED)
    return;
  if (fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                 blknum * bm.blksize, bm.blksize) == -1 &&
      errno != EOPNOTSUPP && errno != ENOSYS)
    nbdkit_debug ("cache: punching a hole in the cache file: %m");
}

/* Writes to the plugin.  With FUA the data must be stable on return:
 * the plugin's FUA if it has one, else a flush.
 */
static int
plugin_write (nbdkit_next *next, const void *buf, uint32_t count,
              uint64_t offset, bool fua, int *err)
{
  uint32_t flags = 0;

  if (fua && next->can_fua (next) > NBDKIT_FUA_NONE)
    flags = NBDKIT_FLAG_FUA;
  if (next->pwrite (next, buf, count, offset, flags, err) == -1)
    return -1;
  if (fua && flags == 0 && next->can_flush (next) == 1)
    return next->flush (next, 0, err);
  return 0;
}

/* Zero part of the plugin, natively if it can. */
static int
plugin_zero (nbdkit_next *next, uint32_t count, uint64_t offset,
             uint32_t flags, char *bounce, int *err)
{
  bool fua = flags & NBDKIT_FLAG_FUA;

  if (next->can_zero (next) > NBDKIT_ZERO_NONE) {
    if (fua && next->can_fua (next) == NBDKIT_FUA_NONE) {
      flags &= ~NBDKIT_FLAG_FUA;
      if (next->zero (next, count, offset, flags, err) == -1)
        return -1;
      return next->can_flush (next) == 1 ? next->flush (next, 0, err) : 0;
    }
    return next->zero (next, count, offset, flags, err);
  }
  memset (bounce, 0, count);
  return plugin_write (next, bounce, count, offset, fua, err);
}

/* The whole block from the plugin into BOUNCE, zero-padded. */
static int
read_plugin_block (nbdkit_next *next, uint64_t blknum, char *bounce,
                   int *err)
{
  uint32_t len = blk_length (blknum);

  if (next->pread (next, bounce, len, blknum * bm.blksize, 0, err) == -1)
    return -1;
  memset (bounce + len, 0, bm.blksize - len);
  return 0;
}

int
blk_read (nbdkit_next *next, uint64_t blknum, uint32_t offset,
          uint32_t count, void *buf, bool copy, char *bounce, int *err)
{
  uint64_t start = blknum * bm.blksize;

  assert (offset + count <= blk_length (blknum));
  {
    BLOCK_LOCK (blknum);
    if (blk_get_state (blknum) != BLOCK_NOT_CACHED) {
      reclaim_touch (blknum);
      return read_cache (buf, count, start + offset, err);
    }
    if (!copy)
      return next->pread (next, buf, count, start + offset, 0, err);
    if (read_plugin_block (next, blknum, bounce, err) == -1 ||
        write_cache (bounce, blk_length (blknum), start, err) == -1)
      return -1;
    set_state (blknum, BLOCK_CLEAN);
    reclaim_touch (blknum);
    memcpy (buf, bounce + offset, count);
  }
  reclaim_maybe (next);
  return 0;
}

/* With the block's lock held: the write-through part of blk_write.  The
 * plugin is written first; the cache follows only if that worked.
 */
static int
write_through_locked (nbdkit_next *next, uint64_t blknum, uint32_t offset,
                      uint32_t count, const void *buf, bool fua,
                      char *bounce, bool *added, int *err)
{
  uint64_t start = blknum * bm.blksize;
  enum block_state state = blk_get_state (blknum);
  int r;

  if (buf)
    r = plugin_write (next, buf, count, start + offset, fua, err);
  else
    r = plugin_zero (next, count, start + offset,
                     fua ? NBDKIT_FLAG_FUA : 0, bounce, err);
  if (r == -1) {
    /* The plugin's contents are unknown now: do not trust a clean copy. */
    if (state == BLOCK_CLEAN)
      drop_block (blknum);
    return -1;
  }
  if (buf == NULL) {
    memset (bounce, 0, count);
    buf = bounce;
  }
  if (state != BLOCK_NOT_CACHED)
    return write_cache (buf, count, start + offset, err);
  if (offset == 0 && count == blk_length (blknum)) {
    if (write_cache (buf, count, start, err) == -1)
      return -1;
    set_state (blknum, BLOCK_CLEAN);
    *added = true;
  }
  return 0;
}

/* With the block's lock held: the write-back part of blk_write.  A
 * partial write to a block that is not cached reads the rest of the
 * block from the plugin first.
 */
static int
write_back_locked (nbdkit_next *next, uint64_t blknum, uint32_t offset,
                   uint32_t count, const void *buf, char *bounce,
                   bool *added, int *err)
{
  uint64_t start = blknum * bm.blksize;
  uint32_t len = blk_length (blknum);

  if (blk_get_state (blknum) != BLOCK_NOT_CACHED) {
    if (buf == NULL) {
      memset (bounce, 0, count);
      buf = bounce;
    }
    if (write_cache (buf, count, start + offset, err) == -1)
      return -1;
  }
  else if (offset == 0 && count == len && buf) {
    if (write_cache (buf, len, start, err) == -1)
      return -1;
    *added = true;
  }
  else {
    if (!(offset == 0 && count == len) &&
        read_plugin_block (next, blknum, bounce, err) == -1)
      return -1;
    if (buf)
      memcpy (bounce + offset, buf, count);
    else
      memset (bounce + offset, 0, count);
    if (write_cache (bounce, len, start, err) == -1)
      return -1;
    *added = true;
  }
  set_state (blknum, BLOCK_DIRTY);
  return 0;
}

int
blk_write (nbdkit_next *next, uint64_t blknum, uint32_t offset,
           uint32_t count, const void *buf, bool fua, char *bounce, int *err)
{
  bool added = false;
  int r;

  assert (offset + count <= blk_length (blknum));
  {
    BLOCK_LOCK (blknum);
    if (cache_mode == CACHE_MODE_WRITETHROUGH ||
        (cache_mode == CACHE_MODE_WRITEBACK && fua))
      r = write_through_locked (next, blknum, offset, count, buf, fua,
                                bounce, &added, err);
    else
      r = write_back_locked (next, blknum, offset, count, buf, bounce,
                             &added, err);
    if (r == 0)
      reclaim_touch (blknum);
  }
  if (added)
    reclaim_maybe (next);
  return r;
}

int
blk_zero_full (nbdkit_next *next, uint64_t blknum, uint32_t flags,
               char *bounce, int *err)
{
  BLOCK_LOCK (blknum);

  flags &= NBDKIT_FLAG_MAY_TRIM | NBDKIT_FLAG_FUA;
  if (cache_mode == CACHE_MODE_UNSAFE)
    flags &= ~NBDKIT_FLAG_FUA;
  if (plugin_zero (next, blk_length (blknum), blknum * bm.blksize, flags,
                   bounce, err) == -1)
    return -1;
  drop_block (blknum);
  return 0;
}

int
blk_trim_full (nbdkit_next *next, uint64_t blknum, uint32_t flags, int *err)
{
  BLOCK_LOCK (blknum);

  flags &= NBDKIT_FLAG_FUA;
  if (cache_mode == CACHE_MODE_UNSAFE || next->can_fua (next) == 0)
    flags = 0;
  if (next->can_trim (next) == 1 &&
      next->trim (next, blk_length (blknum), blknum * bm.blksize, flags,
                  err) == -1)
    return -1;
  drop_block (blknum);
  return 0;
}

int
blk_prefetch (nbdkit_next *next, uint64_t blknum, char *bounce, int *err)
{
  {
    BLOCK_LOCK (blknum);
    if (blk_get_state (blknum) != BLOCK_NOT_CACHED) {
      reclaim_touch (blknum);
      return 0;
    }
    if (read_plugin_block (next, blknum, bounce, err) == -1 ||
        write_cache (bounce, blk_length (blknum), blknum * bm.blksize,
                     err) == -1)
      return -1;
    set_state (blknum, BLOCK_CLEAN);
    reclaim_touch (blknum);
  }
  reclaim_maybe (next);
  return 0;
}

/* With the block's lock held: write a dirty block back to the plugin. */
static int
write_back_block_locked (nbdkit_next *next, uint64_t blknum, char *bounce,
                         int *err)
{
  uint32_t len = blk_length (blknum);
  uint64_t start = blknum * bm.blksize;

  if (blk_get_state (blknum) != BLOCK_DIRTY)
    return 0;
  /* A connection opened read-only cannot write back other clients'
   * blocks: leave them for another connection.
   */
  if (next->can_write (next) != 1) {
    *err = EROFS;
    return -1;
  }
  if (read_cache (bounce, len, start, err) == -1 ||
      next->pwrite (next, bounce, len, start, 0, err) == -1)
    return -1;
  set_state (blknum, BLOCK_CLEAN);
  return 0;
}

int
blk_write_back_all (nbdkit_next *next, char *bounce, int *err)
{
  int64_t blknum;

  if (blk_dirty_count () == 0)
    return 0;
  for (blknum = bitmap_next (&bm, 0); blknum >= 0;
       blknum = bitmap_next (&bm, blknum + 1)) {
    if (blk_get_state (blknum) != BLOCK_DIRTY)
      continue;
    BLOCK_LOCK (blknum);
    if (write_back_block_locked (next, blknum, bounce, err) == -1)
      return -1;
  }
  return 0;
}

int
blk_evict (nbdkit_next *next, uint64_t blknum, char *bounce)
{
  int err;
  BLOCK_LOCK (blknum);

  switch (blk_get_state (blknum)) {
  case BLOCK_NOT_CACHED:
    return 0;
  case BLOCK_DIRTY:
    /* Through a read-only connection: leave it for another one. */
    if (next->can_write (next) != 1)
      return 0;
    break;
  default:
    break;
  }
  if (write_back_block_locked (next, blknum, bounce, &err) == -1) {
    nbdkit_error ("cache: cannot write back block %" PRIu64 " to make "
                  "room in the cache: %s", blknum, strerror (err));
    return -1;
  }
  drop_block (blknum);
  return 1;
}
