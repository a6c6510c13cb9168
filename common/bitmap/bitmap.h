/* SPDX-License-Identifier: BSD-3-Clause
 * A small per-block state map: 1, 2, 4 or 8 bits of state for every
 * fixed-size block of a disk, packed into bytes.  Lookups and updates of
 * single blocks are atomic, so threads may read and change the states of
 * different blocks sharing a byte without a lock.  Header only.
 */

#ifndef NBDKIT_BITMAP_H
#define NBDKIT_BITMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <assert.h>

struct bitmap {
  uint32_t blksize;             /* bytes per block, a power of 2 */
  unsigned blksize_shift;       /* log2 (blksize) */
  unsigned bits;                /* bits of state per block: 1, 2, 4 or 8 */
  uint64_t nr_blocks;           /* blocks the map covers */
  size_t size;                  /* bytes in map */
  uint8_t *map;
};

/* Set up an empty map: no memory is allocated until bitmap_resize. */
static inline void
bitmap_init (struct bitmap *bm, uint32_t blksize, unsigned bits)
{
  assert (blksize > 0 && (blksize & (blksize - 1)) == 0);
  assert (bits == 1 || bits == 2 || bits == 4 || bits == 8);
  bm->blksize = blksize;
  bm->blksize_shift = __builtin_ctz (blksize);
  bm->bits = bits;
  bm->nr_blocks = 0;
  bm->size = 0;
  bm->map = NULL;
}

static inline void
bitmap_free (struct bitmap *bm)
{
  free (bm->map);
  bm->map = NULL;
  bm->nr_blocks = 0;
  bm->size = 0;
}

/* How many bytes a map covering DISK_SIZE bytes needs. */
static inline uint64_t
bitmap_bytes_for (uint32_t blksize, unsigned bits, uint64_t disk_size)
{
  uint64_t blocks = disk_size / blksize + (disk_size % blksize != 0);
  return (blocks * bits + 7) / 8;
}

/* Make the map cover DISK_SIZE bytes (rounded up to whole blocks).  New
 * blocks start in state 0.  Not safe against concurrent lookups: call it
 * before the map is shared, or under the owner's exclusive lock.
 * Returns -1 with errno set on failure.
 */
static inline int
bitmap_resize (struct bitmap *bm, uint64_t disk_size)
{
  uint64_t blocks = disk_size / bm->blksize + (disk_size % bm->blksize != 0);
  uint64_t want = bitmap_bytes_for (bm->blksize, bm->bits, disk_size);
  uint8_t *p;

  if (want > SIZE_MAX) {
    errno = ENOMEM;
    return -1;
  }
  if (want != bm->size) {
    p = realloc (bm->map, want ? want : 1);
    if (p == NULL)
      return -1;
    if (want > bm->size)
      __builtin_memset (p + bm->size, 0, want - bm->size);
    bm->map = p;
    bm->size = want;
  }
  /* Shrinking leaves stale state in the last byte's unused slots:
   * clear it, so growing again starts from 0.
   */
  if (blocks < bm->nr_blocks && want > 0) {
    unsigned used = (unsigned) ((blocks * bm->bits) % 8);
    if (used)
      bm->map[want - 1] &= (uint8_t) ((1u << used) - 1);
  }
  bm->nr_blocks = blocks;
  return 0;
}

/* Where block BLK lives: byte index, shift within it and field mask. */
static inline size_t
bitmap_byte_ (const struct bitmap *bm, uint64_t blk, unsigned *shift)
{
  uint64_t bit = blk * bm->bits;
  *shift = (unsigned) (bit % 8);
  return (size_t) (bit / 8);
}

static inline uint8_t
bitmap_mask_ (const struct bitmap *bm)
{
  return (uint8_t) ((1u << bm->bits) - 1);
}

/* The state of block BLK, or DEFAULT if the map does not reach it. */
static inline unsigned
bitmap_get_blk (const struct bitmap *bm, uint64_t blk, unsigned def)
{
  unsigned shift;
  size_t i;
  uint8_t byte;

  if (blk >= bm->nr_blocks)
    return def;
  i = bitmap_byte_ (bm, blk, &shift);
  byte = __atomic_load_n (&bm->map[i], __ATOMIC_ACQUIRE);
  return (byte >> shift) & bitmap_mask_ (bm);
}

/* The state of the block containing byte OFFSET. */
static inline unsigned
bitmap_get (const struct bitmap *bm, uint64_t offset, unsigned def)
{
  return bitmap_get_blk (bm, offset >> bm->blksize_shift, def);
}

/* Set the state of block BLK (which must be covered by the map) and
 * return its previous state.
 */
static inline unsigned
bitmap_set_blk (struct bitmap *bm, uint64_t blk, unsigned v)
{
  unsigned shift;
  size_t i;
  uint8_t mask = bitmap_mask_ (bm), old, new;

  assert (blk < bm->nr_blocks);
  assert (v <= mask);
  i = bitmap_byte_ (bm, blk, &shift);
  old = __atomic_load_n (&bm->map[i], __ATOMIC_RELAXED);
  do {
    new = (uint8_t) ((old & ~(mask << shift)) | (v << shift));
  } while (!__atomic_compare_exchange_n (&bm->map[i], &old, new, true,
                                         __ATOMIC_ACQ_REL,
                                         __ATOMIC_RELAXED));
  return (old >> shift) & mask;
}

/* The first block at or after BLK whose state is not 0, or -1 if none.
 * Whole zero bytes are skipped at once, so scanning a mostly empty map
 * is quick.
 */
static inline int64_t
bitmap_next (const struct bitmap *bm, uint64_t blk)
{
  unsigned shift;
  size_t i;

  while (blk < bm->nr_blocks) {
    i = bitmap_byte_ (bm, blk, &shift);
    if (shift == 0 && __atomic_load_n (&bm->map[i], __ATOMIC_RELAXED) == 0) {
      blk += 8 / bm->bits;
      continue;
    }
    if (bitmap_get_blk (bm, blk, 0) != 0)
      return (int64_t) blk;
    blk++;
  }
  return -1;
}

#endif /* NBDKIT_BITMAP_H */
