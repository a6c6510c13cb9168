/* SPDX-License-Identifier: BSD-3-Clause
 * The cache filter's block store: a temporary file holding cached
 * blocks of the plugin, a map of which blocks are cached and which of
 * them are dirty, and the reclaim of blocks when the cache is full.
 */

#ifndef NBDKIT_CACHE_BLK_H
#define NBDKIT_CACHE_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include <nbdkit-filter.h>

enum cache_mode {
  CACHE_MODE_WRITEBACK,         /* writes stay in the cache until flush */
  CACHE_MODE_WRITETHROUGH,      /* writes go to the plugin at once */
  CACHE_MODE_UNSAFE,            /* like writeback, and flush is ignored */
};

/* The state of one block (2 bits per block). */
enum block_state {
  BLOCK_NOT_CACHED = 0,
  BLOCK_CLEAN = 1,              /* cached, same as the plugin */
  BLOCK_DIRTY = 2,              /* cached, newer than the plugin */
};

/* Settings, from cache.c. */
extern enum cache_mode cache_mode;
extern uint32_t min_block_size;   /* cache-min-block-size= */
extern uint64_t max_size;         /* cache-max-size=, 0 for no limit */
extern unsigned high_threshold;   /* cache-high-threshold=, percent */
extern unsigned low_threshold;    /* cache-low-threshold=, percent */

/* Create the cache file and choose the block size. */
extern int blk_init (void);
extern void blk_free (void);
extern int blk_set_size (uint64_t size);

extern uint32_t blk_size (void);
extern uint32_t blk_length (uint64_t blknum);
extern enum block_state blk_get_state (uint64_t blknum);
extern uint64_t blk_dirty_count (void);

/* The operations on one block.  Each takes the block's lock; BOUNCE is
 * a caller-supplied buffer of blk_size () bytes.  COUNT bytes at
 * OFFSET within the block are meant, and must not cross its end.
 *
 * blk_read: read, from the cache if the block is cached; otherwise from
 *   the plugin, and with COPY also store the whole block in the cache.
 * blk_write: write BUF (zeroes if NULL) according to the cache mode;
 *   FUA makes this write reach the plugin before returning.
 * blk_zero_full: zero the whole block in the plugin and drop it from
 *   the cache.
 * blk_trim_full: trim the whole block in the plugin (if it can) and drop
 *   it from the cache.
 * blk_prefetch: store the block in the cache if it is not there.
 */
extern int blk_read (nbdkit_next *next, uint64_t blknum, uint32_t offset,
                     uint32_t count, void *buf, bool copy, char *bounce,
                     int *err);
extern int blk_write (nbdkit_next *next, uint64_t blknum, uint32_t offset,
                      uint32_t count, const void *buf, bool fua,
                      char *bounce, int *err);
extern int blk_zero_full (nbdkit_next *next, uint64_t blknum, uint32_t flags,
                          char *bounce, int *err);
extern int blk_trim_full (nbdkit_next *next, uint64_t blknum, uint32_t flags,
                          int *err);
extern int blk_prefetch (nbdkit_next *next, uint64_t blknum, char *bounce,
                         int *err);

/* Write every dirty block back to the plugin. */
extern int blk_write_back_all (nbdkit_next *next, char *bounce, int *err);

/* reclaim.c: with cache-max-size, evict blocks once the cache is above
 * the high threshold.  Called after a block was added, with no block
 * lock held.
 */
extern int reclaim_init (uint64_t nr_blocks);
extern void reclaim_free (void);
extern void reclaim_touch (uint64_t blknum);
extern void reclaim_maybe (nbdkit_next *next);

/* blk.c, for reclaim.c: the number of cached blocks, and evicting one
 * (writing it back first if it is dirty).  blk_evict returns 1 if the
 * block was evicted, 0 if it was not cached (or is dirty and NEXT is
 * read-only), -1 if writing it back failed.
 */
extern uint64_t blk_cached_count (void);
extern int64_t blk_next_cached (uint64_t blknum);
extern uint64_t blk_nr_blocks (void);
extern int blk_evict (nbdkit_next *next, uint64_t blknum, char *bounce);

#endif /* NBDKIT_CACHE_BLK_H */
