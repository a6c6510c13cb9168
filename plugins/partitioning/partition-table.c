/* SPDX-License-Identifier: BSD-3-Clause
 * Encoding MBR and GPT structures (UEFI specification, chapter 5
 * "GUID Partition Table (GPT) Disk Layout").  Every field is
 * little-endian on disk.
 */

#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "partition-table.h"

static void
put_le16 (uint8_t *p, uint16_t v)
{
  p[0] = v;
  p[1] = v >> 8;
}

static void
put_le32 (uint8_t *p, uint32_t v)
{
  put_le16 (p, v);
  put_le16 (p + 2, v >> 16);
}

static void
put_le64 (uint8_t *p, uint64_t v)
{
  put_le32 (p, v);
  put_le32 (p + 4, v >> 32);
}

/* The CRC-32 of IEEE 802.3 (reflected polynomial 0xEDB88320), as the
 * GPT header and entry array checksums require.
 */
uint32_t
partition_table_crc32 (const void *buf, size_t len)
{
  const uint8_t *p = buf;
  uint32_t crc = 0xffffffff;
  size_t i;
  int bit;

  for (i = 0; i < len; ++i) {
    crc ^= p[i];
    for (bit = 0; bit < 8; ++bit)
      crc = (crc >> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return ~crc;
}

static int
hex_value (char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The first three groups are stored little-endian, the last two as
 * written: the byte order of each textual byte in the on-disk GUID.
 */
int
gpt_parse_guid (const char *str, uint8_t guid[16])
{
  static const int order[16] = {
    3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15
  };
  size_t i, n = 0;

  if (strlen (str) != 36)
    return -1;
  for (i = 0; i < 36; ) {
    int hi, lo;

    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (str[i] != '-')
        return -1;
      i++;
      continue;
    }
    hi = hex_value (str[i]);
    lo = hex_value (str[i + 1]);
    if (hi == -1 || lo == -1)
      return -1;
    guid[order[n++]] = hi << 4 | lo;
    i += 2;
  }
  return 0;
}

void
gpt_random_guid (uint8_t guid[16])
{
  size_t n = 0;

  while (n < 16) {
    ssize_t r = getrandom (guid + n, 16 - n, 0);
    if (r > 0)
      n += r;
  }
  guid[7] = (guid[7] & 0x0f) | 0x40;     /* version 4 */
  guid[8] = (guid[8] & 0x3f) | 0x80;     /* RFC 4122 variant */
}

uint64_t
gpt_entries_sectors (uint64_t nr_partitions)
{
  uint64_t n = nr_partitions < GPT_MIN_ENTRIES ? GPT_MIN_ENTRIES
                                               : nr_partitions;
  return (n * GPT_ENTRY_SIZE + SECTOR_SIZE - 1) / SECTOR_SIZE;
}

void
mbr_write_entry (uint8_t *entry, bool bootable, uint8_t id,
                 uint64_t start, uint64_t nr_sectors)
{
  static const uint8_t chs_lba[3] = { 0xfe, 0xff, 0xff };

  entry[0] = bootable ? 0x80 : 0;
  memcpy (&entry[1], chs_lba, 3);
  entry[4] = id;
  memcpy (&entry[5], chs_lba, 3);
  put_le32 (&entry[8], start);
  put_le32 (&entry[12], nr_sectors);
}

void
mbr_write_signature (uint8_t *sector)
{
  sector[510] = 0x55;
  sector[511] = 0xaa;
}

void
gpt_write_protective_mbr (uint8_t *sector, uint64_t total_sectors)
{
  uint64_t n = total_sectors - 1;

  if (n > UINT32_MAX)
    n = UINT32_MAX;
  memset (sector, 0, SECTOR_SIZE);
  mbr_write_entry (&sector[446], false, 0xee, 1, n);
  sector[446 + 1] = 0;                   /* starting CHS is 0/0/2 */
  sector[446 + 2] = 2;
  sector[446 + 3] = 0;
  mbr_write_signature (sector);
}

/* The name is UTF-16LE, at most 36 code units.  Input is UTF-8: code
 * points beyond the BMP or malformed bytes become '?'.
 */
static void
put_utf16_name (uint8_t *out, const char *name)
{
  const unsigned char *s = (const unsigned char *) name;
  size_t n = 0;

  while (*s && n < 36) {
    uint32_t c = *s++;

    if (c >= 0xc0 && c < 0xe0 && (s[0] & 0xc0) == 0x80) {
      c = (c & 0x1f) << 6 | (s[0] & 0x3f);
      s += 1;
    }
    else if (c >= 0xe0 && c < 0xf0 &&
             (s[0] & 0xc0) == 0x80 && (s[1] & 0xc0) == 0x80) {
      c = (c & 0x0f) << 12 | (s[0] & 0x3f) << 6 | (s[1] & 0x3f);
      s += 2;
    }
    else if (c >= 0x80)
      c = '?';
    put_le16 (&out[2 * n++], c);
  }
}

void
gpt_write_entry (uint8_t *entry, const uint8_t type_guid[16],
                 uint64_t first_lba, uint64_t last_lba,
                 uint64_t attributes, const char *name)
{
  memset (entry, 0, GPT_ENTRY_SIZE);
  memcpy (&entry[0], type_guid, 16);
  gpt_random_guid (&entry[16]);
  put_le64 (&entry[32], first_lba);
  put_le64 (&entry[40], last_lba);
  put_le64 (&entry[48], attributes);
  put_utf16_name (&entry[56], name);
}

void
gpt_write_header (uint8_t *sector, bool primary, uint64_t total_sectors,
                  uint64_t entries_sectors, const uint8_t *entries,
                  const uint8_t disk_guid[16])
{
  uint64_t last = total_sectors - 1;
  uint64_t nr_entries = entries_sectors * SECTOR_SIZE / GPT_ENTRY_SIZE;

  memset (sector, 0, SECTOR_SIZE);
  memcpy (&sector[0], "EFI PART", 8);
  put_le32 (&sector[8], 0x00010000);               /* revision 1.0 */
  put_le32 (&sector[12], GPT_HEADER_SIZE);
  put_le64 (&sector[24], primary ? 1 : last);      /* this header */
  put_le64 (&sector[32], primary ? last : 1);      /* the other one */
  put_le64 (&sector[40], 2 + entries_sectors);     /* first usable */
  put_le64 (&sector[48], last - entries_sectors - 1); /* last usable */
  memcpy (&sector[56], disk_guid, 16);
  put_le64 (&sector[72], primary ? 2 : last - entries_sectors);
  put_le32 (&sector[80], nr_entries);
  put_le32 (&sector[84], GPT_ENTRY_SIZE);
  put_le32 (&sector[88],
            partition_table_crc32 (entries, nr_entries * GPT_ENTRY_SIZE));
  put_le32 (&sector[16], partition_table_crc32 (sector, GPT_HEADER_SIZE));
}
