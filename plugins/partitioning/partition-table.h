/* SPDX-License-Identifier: BSD-3-Clause
 * Encoding MBR and GPT partition table structures into sectors.  Shared
 * by the partitioning plugin and the linuxdisk plugin.
 */

#ifndef NBDKIT_PARTITION_TABLE_H
#define NBDKIT_PARTITION_TABLE_H

#include <stdbool.h>
#include <stdint.h>

#define SECTOR_SIZE 512
#define GPT_MIN_ENTRIES 128
#define GPT_ENTRY_SIZE 128
#define GPT_HEADER_SIZE 92

/* GPT partition attribute bit 2: legacy BIOS bootable. */
#define GPT_ATTR_LEGACY_BIOS_BOOTABLE (UINT64_C (1) << 2)

/* The default type GUID (Linux filesystem data). */
#define GPT_LINUX_FS_GUID "0FC63DAF-8483-4772-8E79-3D69D8477DE4"

/* The default MBR type byte (Linux filesystem). */
#define MBR_LINUX_FS_ID 0x83
#define MBR_EXTENDED_LBA_ID 0x0f

extern uint32_t partition_table_crc32 (const void *buf, size_t len);

/* Parse "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX" into the on-disk
 * mixed-endian form.  Returns -1 if STR is not a GUID.
 */
extern int gpt_parse_guid (const char *str, uint8_t guid[16]);

/* A random (version 4) GUID. */
extern void gpt_random_guid (uint8_t guid[16]);

/* How many 512-byte sectors hold the entry array for NR partitions. */
extern uint64_t gpt_entries_sectors (uint64_t nr_partitions);

/* One MBR partition entry (16 bytes at ENTRY); START and NR_SECTORS
 * must already fit in 32 bits.  CHS fields are the LBA-only marker.
 */
extern void mbr_write_entry (uint8_t *entry, bool bootable, uint8_t id,
                             uint64_t start, uint64_t nr_sectors);

/* The 0x55 0xAA signature at the end of a boot sector. */
extern void mbr_write_signature (uint8_t *sector);

/* A protective MBR covering a disk of TOTAL_SECTORS. */
extern void gpt_write_protective_mbr (uint8_t *sector, uint64_t total_sectors);

/* One GPT partition entry (128 bytes) with a random unique GUID. */
extern void gpt_write_entry (uint8_t *entry, const uint8_t type_guid[16],
                             uint64_t first_lba, uint64_t last_lba,
                             uint64_t attributes, const char *name);

/* The primary (at LBA 1) or secondary (at the last LBA) GPT header for
 * a disk of TOTAL_SECTORS whose entry array ENTRIES has ENTRIES_SECTORS
 * sectors.  The two headers must be given the same DISK_GUID.
 */
extern void gpt_write_header (uint8_t *sector, bool primary,
                              uint64_t total_sectors,
                              uint64_t entries_sectors,
                              const uint8_t *entries,
                              const uint8_t disk_guid[16]);

#endif /* NBDKIT_PARTITION_TABLE_H */
