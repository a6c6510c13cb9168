/* SPDX-License-Identifier: BSD-3-Clause
 * Finding a partition in a GUID partition table (UEFI specification,
 * "GUID Partition Table (GPT) Disk Layout"): the primary header in LBA 1
 * and the entry array it points to.  512 and 4096 byte sectors are
 * recognised by where the header is found.
 */

#include <config.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "partition.h"

/* Fields of the header. */
#define HDR_SIGNATURE       0
#define HDR_SIZE            12
#define HDR_CRC32           16
#define HDR_ENTRIES_LBA     72
#define HDR_NUM_ENTRIES     80
#define HDR_ENTRY_SIZE      84
#define HDR_MIN_SIZE        92

/* Fields of an entry. */
#define ENTRY_TYPE_GUID     0
#define ENTRY_FIRST_LBA     32
#define ENTRY_LAST_LBA      40
#define ENTRY_MIN_SIZE      128

#define GPT_SIGNATURE       "EFI PART"
#define MAX_SECTOR_SIZE     4096

/* CRC-32 as used by GPT (IEEE 802.3, reflected, polynomial 0xEDB88320). */
static uint32_t
crc32_ieee (const uint8_t *buf, size_t len)
{
  uint32_t crc = 0xffffffff;
  size_t i;
  int bit;

  for (i = 0; i < len; ++i) {
    crc ^= buf[i];
    for (bit = 0; bit < 8; ++bit)
      crc = (crc >> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc;
}

/* Read LBA 1 for each possible sector size until a header is found. */
static int
read_header (nbdkit_next *next, int64_t disk_size, uint8_t *hdr,
             uint32_t *sector_size)
{
  static const uint32_t sizes[] = { 512, 4096 };
  unsigned i;

  for (i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
    if ((uint64_t) disk_size < 2 * (uint64_t) sizes[i])
      break;
    if (partition_read (next, disk_size, "GPT header", hdr, sizes[i],
                        sizes[i]) == -1)
      return -1;
    if (memcmp (hdr + HDR_SIGNATURE, GPT_SIGNATURE, 8) == 0) {
      *sector_size = sizes[i];
      return 0;
    }
  }
  nbdkit_error ("the MBR says this is a GPT disk, but no GPT "
                "header was found in LBA 1");
  return -1;
}

static int
check_header (uint8_t *hdr, uint32_t sector_size)
{
  uint32_t size = read_le32 (hdr + HDR_SIZE);
  uint32_t want = read_le32 (hdr + HDR_CRC32);

  if (size < HDR_MIN_SIZE || size > sector_size) {
    nbdkit_error ("GPT header has an invalid size (%" PRIu32 ")",
                  size);
    return -1;
  }
  /* The checksum covers the header with its own field as zero. */
  memset (hdr + HDR_CRC32, 0, 4);
  if (crc32_ieee (hdr, size) != want) {
    nbdkit_error ("GPT header checksum is wrong: the partition "
                  "table is corrupt");
    return -1;
  }
  return 0;
}

int
gpt_find_partition (nbdkit_next *next, int64_t disk_size, unsigned partnum,
                    struct partition_extent *ret)
{
  uint8_t hdr[MAX_SECTOR_SIZE];
  uint8_t entry[ENTRY_MIN_SIZE];
  uint32_t sector_size, nr_entries, entry_size;
  uint64_t entries_lba, first, last, entry_offset;
  static const uint8_t unused[16];

  if (read_header (next, disk_size, hdr, &sector_size) == -1 ||
      check_header (hdr, sector_size) == -1)
    return -1;

  entries_lba = read_le64 (hdr + HDR_ENTRIES_LBA);
  nr_entries = read_le32 (hdr + HDR_NUM_ENTRIES);
  entry_size = read_le32 (hdr + HDR_ENTRY_SIZE);
  if (entry_size < ENTRY_MIN_SIZE || entry_size % 8 != 0 ||
      entry_size > MAX_SECTOR_SIZE) {
    nbdkit_error ("GPT entry size %" PRIu32 " is invalid",
                  entry_size);
    return -1;
  }
  if (partnum > nr_entries) {
    nbdkit_error ("partition=%u: partition not found (the GPT has room "
                  "for %" PRIu32 " partitions)", partnum, nr_entries);
    return -1;
  }
  if (entries_lba > UINT64_MAX / sector_size) {
    nbdkit_error ("GPT entry array LBA is out of range");
    return -1;
  }
  entry_offset = entries_lba * sector_size +
    (uint64_t) (partnum - 1) * entry_size;
  if (partition_read (next, disk_size, "GPT partition entry", entry,
                      sizeof entry, entry_offset) == -1)
    return -1;

  if (memcmp (entry + ENTRY_TYPE_GUID, unused, sizeof unused) == 0) {
    nbdkit_error ("partition=%u: partition not found (the GPT entry is "
                  "unused)", partnum);
    return -1;
  }
  first = read_le64 (entry + ENTRY_FIRST_LBA);
  last = read_le64 (entry + ENTRY_LAST_LBA);  /* inclusive */
  if (last < first || last >= UINT64_MAX / sector_size) {
    nbdkit_error ("partition=%u: the GPT entry has an invalid range "
                  "(LBA %" PRIu64 " to %" PRIu64 ")", partnum, first, last);
    return -1;
  }
  ret->offset = first * sector_size;
  ret->length = (last - first + 1) * sector_size;
  return 0;
}
