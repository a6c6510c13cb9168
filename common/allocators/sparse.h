/* SPDX-License-Identifier: BSD-3-Clause
 * A sparse array of bytes addressed by a 63-bit offset, used by the memory
 * and data plugins.  Unwritten ranges read as zeroes and are reported as
 * holes.  Safe for concurrent use from many threads.
 */

#ifndef NBDKIT_SPARSE_H
#define NBDKIT_SPARSE_H

#include <stdbool.h>
#include <stdint.h>

struct sparse_array;
struct nbdkit_extents;

/* Create an empty array.  Returns NULL with errno set on failure. */
extern struct sparse_array *sparse_array_new (void);
extern void sparse_array_free (struct sparse_array *sa);

/* Copy COUNT bytes at OFFSET out of the array into BUF. */
extern void sparse_array_read (struct sparse_array *sa, void *buf,
                               uint32_t count, uint64_t offset);

/* Store COUNT bytes from BUF at OFFSET.  Returns -1 with errno set (ENOMEM)
 * if a page could not be allocated.
 */
extern int sparse_array_write (struct sparse_array *sa, const void *buf,
                               uint32_t count, uint64_t offset);

/* Fill COUNT bytes at OFFSET with the byte C (C == 0 frees whole pages). */
extern int sparse_array_fill (struct sparse_array *sa, int c,
                              uint64_t count, uint64_t offset);

/* Make COUNT bytes at OFFSET read as zero, freeing whole pages. */
extern void sparse_array_zero (struct sparse_array *sa,
                               uint64_t count, uint64_t offset);

/* Add extents covering [OFFSET, OFFSET+COUNT) to EXTENTS: unallocated
 * pages are HOLE|ZERO, allocated ones data.  Returns -1 on error.
 */
extern int sparse_array_extents (struct sparse_array *sa,
                                 uint32_t count, uint64_t offset,
                                 struct nbdkit_extents *extents);

/* Bytes of page memory currently allocated (for tests and debugging). */
extern uint64_t sparse_array_allocated (struct sparse_array *sa);

#endif /* NBDKIT_SPARSE_H */
