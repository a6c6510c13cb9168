/* SPDX-License-Identifier: BSD-3-Clause
 * The cow filter's overlay: a temporary file holding the blocks written
 * by clients, and a map saying for each block whether it still comes
 * from the plugin, lives in the overlay, or reads as zeroes.
 */

#ifndef NBDKIT_COW_BLK_H
#define NBDKIT_COW_BLK_H

#include <stdint.h>

#include <nbdkit-filter.h>

/* Where a block's current contents are (2 bits of state per block). */
enum block_state {
  BLOCK_NOT_ALLOCATED = 0,      /* unchanged: read it from the plugin */
  BLOCK_ALLOCATED = 1,          /* in the overlay file */
  BLOCK_ZERO = 2,               /* trimmed or zeroed: reads as zeroes */
};

/* Create the overlay file for blocks of BLKSIZE bytes. */
extern int blk_init (uint32_t blksize);
extern void blk_free (void);

/* Fix the size of the disk from the first connection; later
 * connections must see the same size.
 */
extern int blk_set_size (uint64_t size);

extern uint32_t blk_size (void);
extern uint64_t blk_disk_size (void);
extern enum block_state blk_get_state (uint64_t blknum);

/* Reads of the overlay file at a disk offset, for BLOCK_ALLOCATED
 * blocks; may be done without holding the block's lock.
 */
extern int blk_read_overlay (void *buf, uint32_t count, uint64_t offset,
                             int *err);

/* The operations that change a block.  Each one takes the block's lock,
 * so two requests touching different bytes of one block never lose
 * each other's data.
 *
 * blk_write_full: replace the whole of block BLKNUM with BUF.
 * blk_write_part: replace COUNT bytes at OFFSET within block BLKNUM with
 *   BUF (zeroes if BUF is NULL), reading the rest of the block first.
 * blk_zero_full: make the whole block read as zeroes.
 * blk_copy_up: copy the block from the plugin into the overlay unless it
 *   is already there (for cow-on-read and cow-on-cache); the block's
 *   contents are left in BOUNCE (blk_size () bytes).
 * BOUNCE is a caller-supplied buffer of blk_size () bytes.
 */
extern int blk_write_full (uint64_t blknum, const void *buf, int *err);
extern int blk_write_part (nbdkit_next *next, uint64_t blknum,
                           uint32_t offset, uint32_t count, const void *buf,
                           char *bounce, int *err);
extern int blk_zero_full (uint64_t blknum, int *err);
extern int blk_copy_up (nbdkit_next *next, uint64_t blknum, char *bounce,
                        int *err);

/* The number of bytes of block BLKNUM inside the disk: blk_size ()
 * except for a short last block.
 */
extern uint32_t blk_length (uint64_t blknum);

#endif /* NBDKIT_COW_BLK_H */
