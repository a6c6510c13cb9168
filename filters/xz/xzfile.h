/* SPDX-License-Identifier: BSD-3-Clause
 * Random access to an .xz file served by the layer below: its block
 * index (every stream's Index field, combined) and the decoding of one
 * block at a time.
 */

#ifndef NBDKIT_XZFILE_H
#define NBDKIT_XZFILE_H

#include <stdint.h>

#include <nbdkit-filter.h>

/* One block of the file, as the index describes it. */
struct xz_block {
  uint64_t number;              /* 1-based, across all streams */
  uint64_t offset;              /* first uncompressed byte */
  uint64_t size;                /* uncompressed bytes */
  uint64_t file_offset;         /* block header in the .xz file */
  uint64_t total_size;          /* header + data + padding + check */
  uint64_t unpadded_size;       /* header + data + check */
  int check;                    /* lzma_check of its stream */
};

struct xzfile;

/* Read and check the index of the .xz file NEXT serves.  A block whose
 * uncompressed size exceeds MAX_BLOCK is refused.  Errors are reported
 * with nbdkit_error.
 */
extern struct xzfile *xzfile_open (nbdkit_next *next, uint64_t max_block);
extern void xzfile_close (struct xzfile *xz);

/* The uncompressed size of the whole file. */
extern uint64_t xzfile_size (const struct xzfile *xz);

/* Fill BLK with the block holding uncompressed byte OFFSET, which must
 * be below xzfile_size.  Safe to call from several threads at once.
 */
extern void xzfile_find_block (const struct xzfile *xz, uint64_t offset,
                               struct xz_block *blk);

/* Decompress BLK into OUT, which has room for blk->size bytes.  Safe
 * to call from several threads at once; each call needs a decoder,
 * and decoders are kept in XZ for reuse until xzfile_close.
 */
extern int xzfile_decode_block (struct xzfile *xz, nbdkit_next *next,
                                const struct xz_block *blk, char *out,
                                int *err);

#endif /* NBDKIT_XZFILE_H */
