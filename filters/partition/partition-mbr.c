/* SPDX-License-Identifier: BSD-3-Clause
 * Finding a partition in an MBR (DOS) partition table: the four primary
 * entries in sector 0, and logical partitions (numbered from 5) in the
 * chain of extended boot records inside the extended partition.
 */

#include <config.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>

#include <nbdkit-filter.h>

#include "partition.h"

/* Layout of a boot sector. */
#define MBR_TABLE_OFFSET    446
#define MBR_ENTRY_SIZE      16
#define MBR_ENTRIES         4
#define MBR_SIGNATURE_OFF   510

/* Fields of a table entry. */
#define ENTRY_TYPE          4
#define ENTRY_START_LBA     8
#define ENTRY_SECTORS       12

/* Partition types. */
#define TYPE_UNUSED         0x00
#define TYPE_GPT_PROTECTIVE 0xee

/* A corrupt chain could loop forever; no real disk has this many. */
#define MAX_LOGICAL         1024

struct mbr_entry {
  uint8_t type;
  uint32_t start;               /* in sectors */
  uint32_t sectors;
};

static struct mbr_entry
get_entry (const uint8_t *sector, unsigned i)
{
  const uint8_t *p = sector + MBR_TABLE_OFFSET + i * MBR_ENTRY_SIZE;

  return (struct mbr_entry) {
    .type = p[ENTRY_TYPE],
    .start = read_le32 (p + ENTRY_START_LBA),
    .sectors = read_le32 (p + ENTRY_SECTORS),
  };
}

static bool
is_extended (uint8_t type)
{
  return type == 0x05 || type == 0x0f || type == 0x85;
}

bool
mbr_has_signature (const uint8_t *sector0)
{
  return sector0[MBR_SIGNATURE_OFF] == 0x55 &&
    sector0[MBR_SIGNATURE_OFF + 1] == 0xaa;
}

/* A GPT disk has an MBR with one entry of type 0xEE covering it. */
bool
mbr_is_protective (const uint8_t *sector0)
{
  unsigned i;

  for (i = 0; i < MBR_ENTRIES; ++i)
    if (get_entry (sector0, i).type == TYPE_GPT_PROTECTIVE)
      return true;
  return false;
}

static void
to_extent (uint64_t first_sector, uint32_t sectors,
           struct partition_extent *ret)
{
  ret->offset = first_sector * MBR_SECTOR_SIZE;
  ret->length = (uint64_t) sectors * MBR_SECTOR_SIZE;
}

/* Walk the EBR chain.  Each EBR's first entry is a logical partition
 * relative to that EBR; its second entry points to the next EBR,
 * relative to the start of the extended partition.
 */
static int
find_logical (nbdkit_next *next, int64_t disk_size,
              const struct mbr_entry *extended, unsigned partnum,
              struct partition_extent *ret)
{
  uint8_t ebr[MBR_SECTOR_SIZE];
  uint64_t ebr_sector = extended->start;
  unsigned n, count = 0;

  for (n = 5; n - 5 < MAX_LOGICAL; ++n) {
    struct mbr_entry logical, link;

    if (partition_read (next, disk_size, "extended boot record", ebr,
                        sizeof ebr, ebr_sector * MBR_SECTOR_SIZE) == -1)
      return -1;
    if (!mbr_has_signature (ebr)) {
      nbdkit_error ("the extended boot record at sector %"
                    PRIu64 " has no boot signature", ebr_sector);
      return -1;
    }
    logical = get_entry (ebr, 0);
    link = get_entry (ebr, 1);
    if (logical.type == TYPE_UNUSED)
      break;                    /* an empty chain: no logical partitions */
    if (n == partnum) {
      to_extent (ebr_sector + logical.start, logical.sectors, ret);
      return 0;
    }
    count++;
    if (!is_extended (link.type) || link.start == 0)
      break;
    ebr_sector = (uint64_t) extended->start + link.start;
  }
  nbdkit_error ("partition=%u: partition not found (the MBR has only %u "
                "logical partition(s), numbered from 5)", partnum, count);
  return -1;
}

int
mbr_find_partition (nbdkit_next *next, int64_t disk_size,
                    const uint8_t *sector0, unsigned partnum,
                    struct partition_extent *ret)
{
  unsigned i;

  if (partnum <= MBR_ENTRIES) {
    struct mbr_entry e = get_entry (sector0, partnum - 1);
    if (e.type == TYPE_UNUSED) {
      nbdkit_error ("partition=%u: partition not found (the MBR entry is "
                    "unused)", partnum);
      return -1;
    }
    to_extent (e.start, e.sectors, ret);
    return 0;
  }

  for (i = 0; i < MBR_ENTRIES; ++i) {
    struct mbr_entry e = get_entry (sector0, i);
    if (is_extended (e.type))
      return find_logical (next, disk_size, &e, partnum, ret);
  }
  nbdkit_error ("partition=%u: partition not found (the MBR has no "
                "extended partition, so no logical partitions)", partnum);
  return -1;
}
