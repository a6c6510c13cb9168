/* SPDX-License-Identifier: BSD-3-Clause
 * Shared between the partition filter and its partition table parsers:
 * the result of a lookup and a checked read of the disk below.
 */

#ifndef NBDKIT_PARTITION_H
#define NBDKIT_PARTITION_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <endian.h>

#include <nbdkit-filter.h>

/* MBR tables always count in 512 byte sectors. */
#define MBR_SECTOR_SIZE 512

/* Where a partition lives on the underlying disk, in bytes. */
struct partition_extent {
  uint64_t offset;
  uint64_t length;
};

/* Read COUNT bytes at OFFSET from the disk below, failing with a
 * message naming WHAT if they are past the end (size DISK_SIZE).
 */
extern int partition_read (nbdkit_next *next, int64_t disk_size,
                           const char *what, void *buf, uint32_t count,
                           uint64_t offset);

/* partition-mbr.c */
extern bool mbr_has_signature (const uint8_t *sector0);
extern bool mbr_is_protective (const uint8_t *sector0);
extern int mbr_find_partition (nbdkit_next *next, int64_t disk_size,
                               const uint8_t *sector0, unsigned partnum,
                               struct partition_extent *ret);

/* partition-gpt.c */
extern int gpt_find_partition (nbdkit_next *next, int64_t disk_size,
                               unsigned partnum,
                               struct partition_extent *ret);

/* Little-endian fields of on-disk structures. */
static inline uint32_t
read_le32 (const uint8_t *p)
{
  uint32_t v;
  memcpy (&v, p, sizeof v);
  return le32toh (v);
}

static inline uint64_t
read_le64 (const uint8_t *p)
{
  uint64_t v;
  memcpy (&v, p, sizeof v);
  return le64toh (v);
}

#endif /* NBDKIT_PARTITION_H */
