/* SPDX-License-Identifier: BSD-3-Clause
 * The ext2 filter's private header: the io_manager that lets libext2fs
 * read and write the filesystem through the next layer.
 */

#ifndef NBDKIT_EXT2_H
#define NBDKIT_EXT2_H

#include <ext2fs.h>

#include <nbdkit-filter.h>

/* io.c */

/* The libext2fs I/O manager whose channels call next->pread/pwrite. */
extern io_manager ext2_nbdkit_io_manager;

/* Write into NAME (of SIZE bytes) the channel name that makes
 * ext2_nbdkit_io_manager open a channel on NEXT.
 */
extern void ext2_io_channel_name (char *name, size_t size, nbdkit_next *next);

#endif /* NBDKIT_EXT2_H */
