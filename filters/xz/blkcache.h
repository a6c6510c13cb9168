/* SPDX-License-Identifier: BSD-3-Clause
 * A small least-recently-used cache of decompressed xz blocks, shared by
 * the requests of one connection.  At most DEPTH blocks are held, those
 * being decompressed included.
 */

#ifndef NBDKIT_XZ_BLKCACHE_H
#define NBDKIT_XZ_BLKCACHE_H

#include <stdint.h>

#include <nbdkit-filter.h>

#include "xzfile.h"

struct blkcache;

extern struct blkcache *blkcache_new (unsigned depth);
extern void blkcache_free (struct blkcache *c);

/* Copy COUNT bytes starting SKIP bytes into block BLK to BUF,
 * decompressing the block from XZ through NEXT first unless it is
 * cached.  With COUNT 0 (and BUF NULL) it only makes sure the block is
 * cached.  Safe to call from several threads: each block is
 * decompressed once.
 */
extern int blkcache_read (struct blkcache *c, struct xzfile *xz,
                          nbdkit_next *next, const struct xz_block *blk,
                          uint64_t skip, uint32_t count, void *buf,
                          int *err);

#endif /* NBDKIT_XZ_BLKCACHE_H */
