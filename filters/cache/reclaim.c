/* SPDX-License-Identifier: BSD-3-Clause
 * Keeping the cache under cache-max-size: once it grows above the high
 * threshold, blocks are evicted until it is below the low threshold.
 * Victims are chosen by the "clock" (second chance) approximation of
 * least-recently-used: one reference bit per block, set on every use;
 * the clock hand sweeps the cached blocks, clearing set bits and
 * evicting blocks whose bit is already clear.
 */

#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>

#include <nbdkit-filter.h>

#include "bitmap.h"
#include "blk.h"
#include "cleanup.h"

static struct bitmap refs;      /* 1 bit per block: recently used */
static bool enabled;

/* Held by the one thread reclaiming at a time; guards hand. */
static pthread_mutex_t reclaim_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t hand;

int
reclaim_init (uint64_t nr_blocks)
{
  if (max_size == 0)
    return 0;
  bitmap_init (&refs, blk_size (), 1);
  if (bitmap_resize (&refs, nr_blocks * blk_size ()) == -1)
    return -1;
  enabled = true;
  return 0;
}

void
reclaim_free (void)
{
  if (enabled)
    bitmap_free (&refs);
  enabled = false;
}

void
reclaim_touch (uint64_t blknum)
{
  if (enabled && bitmap_get_blk (&refs, blknum, 1) == 0)
    bitmap_set_blk (&refs, blknum, 1);
}

/* PERCENT % of cache-max-size, without overflowing. */
static uint64_t
percent_of_max (unsigned percent)
{
  return max_size / 100 * percent + max_size % 100 * percent / 100;
}

static uint64_t
cache_bytes (void)
{
  return blk_cached_count () * blk_size ();
}

void
reclaim_maybe (nbdkit_next *next)
{
  uint64_t high, low, steps, limit;
  CLEANUP_FREE char *bounce = NULL;
  int64_t blknum;

  if (!enabled)
    return;
  high = percent_of_max (high_threshold);
  low = percent_of_max (low_threshold);
  if (cache_bytes () <= high)
    return;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&reclaim_lock);
  /* Another thread may have made room while we waited. */
  if (cache_bytes () <= high)
    return;
  bounce = malloc (blk_size ());
  if (bounce == NULL) {
    nbdkit_error ("malloc: %m");
    return;
  }

  /* Each cached block is passed at most twice (once to clear its bit,
   * once to evict it), which bounds the sweep even if some dirty blocks
   * cannot be written back.
   */
  limit = 2 * blk_cached_count () + 2;
  for (steps = 0; cache_bytes () > low && steps < limit; ++steps) {
    blknum = blk_next_cached (hand);
    if (blknum == -1) {
      blknum = blk_next_cached (0);
      if (blknum == -1)
        break;
    }
    hand = blknum + 1;
    if (bitmap_get_blk (&refs, blknum, 0)) {
      bitmap_set_blk (&refs, blknum, 0);
      continue;
    }
    blk_evict (next, blknum, bounce);
  }
  nbdkit_debug ("cache: reclaimed to %" PRIu64 " bytes in %" PRIu64
                " steps", cache_bytes (), steps);
}
