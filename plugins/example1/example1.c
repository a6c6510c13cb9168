/* SPDX-License-Identifier: BSD-3-Clause
 * The example1 plugin: the smallest useful plugin.  It serves a read-only
 * 100 MiB disk with an MBR partition table holding one empty Linux
 * partition, built in memory when the plugin is loaded.
 */

#include <config.h>

#include <stdint.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#define SECTOR_SIZE       512
#define DISK_SIZE         (UINT64_C (100) * 1024 * 1024)
#define PARTITION_START   2048  /* first sector of the partition */

/* Everything after the first sector of the partition reads as zero, so
 * only this much of the disk is kept.
 */
#define HEAD_SIZE         ((PARTITION_START + 1) * SECTOR_SIZE)
static unsigned char head[HEAD_SIZE];

static void
put_le32 (unsigned char *p, uint32_t v)
{
  p[0] = v;
  p[1] = v >> 8;
  p[2] = v >> 16;
  p[3] = v >> 24;
}

/* Build the MBR and mark the partition so the disk is easy to recognise. */
static void
example1_load (void)
{
  static const char banner[] = "nbdkit example1 disk image\r\n";
  static const char label[] = "nbdkit example1: this partition is empty\n";
  unsigned char *mbr = head;
  unsigned char *entry = &mbr[0x1be];

  /* The boot code is "cli; 1: hlt; jmp 1b", so booting the disk stops
   * quietly.  (It also keeps file(1) from mistaking the MBR for an
   * extended partition table.)
   */
  mbr[0] = 0xfa;
  mbr[1] = 0xf4;
  mbr[2] = 0xeb;
  mbr[3] = 0xfd;
  memcpy (&mbr[0x10], banner, sizeof banner - 1);
  memcpy (&mbr[0x1b8], "nbdk", 4);      /* disk signature */

  /* Partition 1: Linux (0x83), addressed by LBA only. */
  entry[0] = 0x00;
  entry[1] = 0xfe; entry[2] = 0xff; entry[3] = 0xff;
  entry[4] = 0x83;
  entry[5] = 0xfe; entry[6] = 0xff; entry[7] = 0xff;
  put_le32 (&entry[8], PARTITION_START);
  put_le32 (&entry[12], DISK_SIZE / SECTOR_SIZE - PARTITION_START);

  mbr[0x1fe] = 0x55;
  mbr[0x1ff] = 0xaa;

  memcpy (&head[PARTITION_START * SECTOR_SIZE], label, sizeof label - 1);
}

static void *
example1_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

/* Requests are handled one at a time, the simplest model to reason about. */
#define THREAD_MODEL NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS

static int64_t
example1_get_size (void *handle)
{
  return DISK_SIZE;
}

static int
example1_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                uint32_t flags)
{
  unsigned char *out = buf;

  if (offset < HEAD_SIZE) {
    uint32_t n = HEAD_SIZE - offset < count ? HEAD_SIZE - offset : count;

    memcpy (out, &head[offset], n);
    out += n;
    count -= n;
  }
  memset (out, 0, count);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name        = "example1",
  .version     = PACKAGE_VERSION,
  .description = "A minimal plugin serving a small read-only disk image",
  .load        = example1_load,
  .open        = example1_open,
  .get_size    = example1_get_size,
  .pread       = example1_pread,
};

NBDKIT_REGISTER_PLUGIN (plugin)
