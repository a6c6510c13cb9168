/* SPDX-License-Identifier: BSD-3-Clause
 * Zeroed fixed-size blocks for the sparse array (blocks.c).
 */

#ifndef NBDKIT_BLOCKS_H
#define NBDKIT_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>

struct blocks;

/* A source of zeroed blocks of BLOCK_SIZE bytes (a divisor of 2 MiB).
 * NULL with errno set on failure.
 */
extern struct blocks *blocks_new (size_t block_size);

/* Frees every block at once, whether given back or not, after the
 * caller has passed each block it still holds to blocks_forget.
 */
extern void blocks_free_all (struct blocks *b);

/* A block still held when everything is about to be freed: nothing to
 * do for blocks from the mappings, free for the calloc of the sanitizer
 * builds.
 */
extern void blocks_forget (struct blocks *b, void *p);

/* A zeroed block, or NULL with errno = ENOMEM.  Thread-safe.  DENSE:
 * the caller is about to write all of it.
 */
extern void *blocks_get (struct blocks *b, bool dense);

/* Gives back a block from blocks_get.  WRITTEN: it may hold data (a
 * block never written to is still zero and is kept as it is).
 */
extern void blocks_put (struct blocks *b, void *p, bool written);

#endif /* NBDKIT_BLOCKS_H */
