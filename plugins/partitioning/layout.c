/* SPDX-License-Identifier: BSD-3-Clause
 * Laying out the virtual disk: where each file goes, the MBR (with an
 * extended partition and EBRs past 4 files) or GPT tables, and the
 * list of regions that reads and writes are dispatched through.
 */

#include <config.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "partitioning.h"
#include "partition-table.h"
#include "utils.h"

regions_vector regions = empty_vector;
uint64_t disk_size;

/* The table bytes the DATA regions point into. */
static uint8_t *primary;        /* MBR, or protective MBR + GPT + entries */
static uint8_t *ebrs;           /* one sector per MBR logical partition */
static uint8_t *secondary;      /* GPT entries copy + backup header */

/* Append a region, with a zero region before it to fill any gap (a
 * zero-length region adds only the gap).
 */
static int
add_region (uint64_t start, uint64_t len, enum region_type type,
            size_t file, const uint8_t *data)
{
  uint64_t last = regions.len ? regions.ptr[regions.len - 1].end : 0;
  struct region gap = { .start = last, .end = start, .type = REGION_ZERO };
  struct region r = { .start = start, .end = start + len, .type = type,
                      .file = file, .data = data };

  if (start > last && regions_vector_append (&regions, gap) == -1)
    goto nomem;
  if (len > 0 && regions_vector_append (&regions, r) == -1)
    goto nomem;
  return 0;
 nomem:
  nbdkit_error ("realloc: %m");
  return -1;
}

/* Place each file after its predecessor, aligned; MBR logical
 * partitions (the 4th file onwards when there are more than 4) are
 * each preceded by their EBR sector.  Returns the end of the last one.
 */
static uint64_t
place_files (uint64_t offset, bool extended)
{
  size_t i;

  for (i = 0; i < files.len; ++i) {
    struct file *f = &files.ptr[i];

    if (extended && i >= 3) {
      f->ebr_offset = offset;
      offset += SECTOR_SIZE;
    }
    offset = ROUND_UP (offset, f->alignment);
    f->offset = offset;
    offset += ROUND_UP (f->size, (uint64_t) SECTOR_SIZE);
  }
  return offset;
}

/* Everything an MBR stores is a 32-bit sector number. */
static bool
fits_mbr (uint64_t end)
{
  return end / SECTOR_SIZE <= UINT32_MAX;
}

static void
fill_ebr (size_t i)
{
  const struct file *f = &files.ptr[i];
  uint8_t *sector = ebrs + (i - 3) * SECTOR_SIZE;
  uint64_t ext_start = files.ptr[3].ebr_offset / SECTOR_SIZE;

  mbr_write_entry (&sector[446], false, f->mbr_id,
                   (f->offset - f->ebr_offset) / SECTOR_SIZE,
                   ROUND_UP (f->size, (uint64_t) SECTOR_SIZE) / SECTOR_SIZE);
  if (i + 1 < files.len) {
    const struct file *next = &files.ptr[i + 1];
    uint64_t next_end = next->offset + ROUND_UP (next->size,
                                                 (uint64_t) SECTOR_SIZE);
    mbr_write_entry (&sector[462], false, MBR_EXTENDED_LBA_ID,
                     next->ebr_offset / SECTOR_SIZE - ext_start,
                     (next_end - next->ebr_offset) / SECTOR_SIZE);
  }
  mbr_write_signature (sector);
}

static int
create_mbr (uint64_t end)
{
  bool extended = files.len > 4;
  size_t i, nr_primary = extended ? 3 : files.len;

  disk_size = end;
  primary = calloc (1, SECTOR_SIZE);
  ebrs = extended ? calloc (files.len - 3, SECTOR_SIZE) : NULL;
  if (primary == NULL || (extended && ebrs == NULL)) {
    nbdkit_error ("calloc: %m");
    return -1;
  }
  for (i = 0; i < nr_primary; ++i) {
    const struct file *f = &files.ptr[i];
    mbr_write_entry (&primary[446 + 16 * i], i == 0, f->mbr_id,
                     f->offset / SECTOR_SIZE,
                     ROUND_UP (f->size, (uint64_t) SECTOR_SIZE) / SECTOR_SIZE);
  }
  if (extended) {
    uint64_t ext_start = files.ptr[3].ebr_offset;
    mbr_write_entry (&primary[446 + 16 * 3], false, MBR_EXTENDED_LBA_ID,
                     ext_start / SECTOR_SIZE,
                     (end - ext_start) / SECTOR_SIZE);
    for (i = 3; i < files.len; ++i)
      fill_ebr (i);
  }
  mbr_write_signature (primary);
  return 0;
}

static int
create_gpt (uint64_t end, uint64_t entries_sectors)
{
  uint64_t total = end / SECTOR_SIZE + entries_sectors + 1;
  uint64_t entries_bytes = entries_sectors * SECTOR_SIZE;
  uint8_t disk_guid[16];
  uint8_t *entries;
  size_t i;

  disk_size = total * SECTOR_SIZE;
  primary = calloc (2 + entries_sectors, SECTOR_SIZE);
  secondary = calloc (1 + entries_sectors, SECTOR_SIZE);
  if (primary == NULL || secondary == NULL) {
    nbdkit_error ("calloc: %m");
    return -1;
  }
  entries = primary + 2 * SECTOR_SIZE;
  for (i = 0; i < files.len; ++i) {
    const struct file *f = &files.ptr[i];
    uint64_t first = f->offset / SECTOR_SIZE;
    uint64_t n = ROUND_UP (f->size, (uint64_t) SECTOR_SIZE) / SECTOR_SIZE;

    gpt_write_entry (&entries[i * GPT_ENTRY_SIZE], f->type_guid,
                     first, first + n - 1,
                     i == 0 ? GPT_ATTR_LEGACY_BIOS_BOOTABLE : 0,
                     f->filename);
  }
  gpt_random_guid (disk_guid);
  gpt_write_protective_mbr (primary, total);
  gpt_write_header (primary + SECTOR_SIZE, true, total, entries_sectors,
                    entries, disk_guid);
  memcpy (secondary, entries, entries_bytes);
  gpt_write_header (secondary + entries_bytes, false, total,
                    entries_sectors, entries, disk_guid);
  return 0;
}

static int
create_regions (uint64_t header_bytes, uint64_t trailer_bytes)
{
  size_t i;

  if (add_region (0, header_bytes, REGION_DATA, 0, primary) == -1)
    return -1;
  for (i = 0; i < files.len; ++i) {
    const struct file *f = &files.ptr[i];

    if (ebrs && i >= 3 &&
        add_region (f->ebr_offset, SECTOR_SIZE, REGION_DATA, 0,
                    ebrs + (i - 3) * SECTOR_SIZE) == -1)
      return -1;
    if (add_region (f->offset, f->size, REGION_FILE, i, NULL) == -1)
      return -1;
  }
  if (trailer_bytes > 0)
    return add_region (disk_size - trailer_bytes, trailer_bytes,
                       REGION_DATA, 0, secondary);
  /* Pad the last file to a whole sector. */
  if (disk_size > regions.ptr[regions.len - 1].end)
    return add_region (disk_size, 0, REGION_ZERO, 0, NULL);
  return 0;
}

int
create_layout (enum table_type type)
{
  uint64_t es = gpt_entries_sectors (files.len);
  uint64_t mbr_end = 0;

  if (type != TABLE_GPT) {
    mbr_end = place_files (SECTOR_SIZE, files.len > 4);
    if (type == TABLE_AUTO)
      type = files.len > 4 || !fits_mbr (mbr_end) ? TABLE_GPT : TABLE_MBR;
    else if (!fits_mbr (mbr_end)) {
      nbdkit_error ("partition-type=mbr: the disk would be %" PRIu64
                    " bytes, beyond what an MBR can address (2 TiB); "
                    "use partition-type=gpt", mbr_end);
      return -1;
    }
  }
  if (type == TABLE_MBR) {
    if (create_mbr (mbr_end) == -1)
      return -1;
    return create_regions (SECTOR_SIZE, 0);
  }
  if (create_gpt (place_files ((2 + es) * SECTOR_SIZE, false), es) == -1)
    return -1;
  return create_regions ((2 + es) * SECTOR_SIZE, (1 + es) * SECTOR_SIZE);
}

void
free_layout (void)
{
  free (primary);
  free (ebrs);
  free (secondary);
  regions_vector_reset (&regions);
}

static int
compare_offset (const void *key, const void *elem)
{
  uint64_t offset = *(const uint64_t *) key;
  const struct region *r = elem;

  if (offset < r->start)
    return -1;
  if (offset >= r->end)
    return 1;
  return 0;
}

const struct region *
find_region (uint64_t offset)
{
  return bsearch (&offset, regions.ptr, regions.len, sizeof (struct region),
                  compare_offset);
}
