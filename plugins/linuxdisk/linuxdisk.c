/* SPDX-License-Identifier: BSD-3-Clause
 * The linuxdisk plugin: a read-only disk with one GPT partition holding
 * an ext2/3/4 filesystem made from a directory when nbdkit starts.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "linuxdisk.h"
#include "partition-table.h"
#include "utils.h"

/* Command line settings. */
static struct linuxdisk_config config = { .type = "ext2", .size = -1 };

/* The filesystem starts at 1 MiB, as partitioning tools align it. */
#define FS_OFFSET (2048 * SECTOR_SIZE)

/* The GPT needs 32 sectors of entries after its header. */
#define ENTRIES_SECTORS 32

/* The filesystem image (an unlinked temporary file) and its size. */
static int fs_fd = -1;
static int64_t fs_size;

/* The primary (sectors 0 .. 2047) and secondary GPT. */
static uint8_t primary[FS_OFFSET];
static uint8_t secondary[(ENTRIES_SECTORS + 1) * SECTOR_SIZE];

static void
linuxdisk_unload (void)
{
  if (fs_fd >= 0)
    close (fs_fd);
  free ((char *) config.dir);
}

static int
config_size (const char *value)
{
  const char *s = value, *error;

  config.size_add = *s == '+';
  if (config.size_add)
    s++;
  config.size = parse_human_size (s, &error);
  if (config.size == -1) {
    nbdkit_error ("size=%s: %s", value, error);
    return -1;
  }
  if (!config.size_add && config.size < 64 * 1024) {
    nbdkit_error ("size=%s: too small for a filesystem", value);
    return -1;
  }
  return 0;
}

static int
linuxdisk_config (const char *key, const char *value)
{
  if (strcmp (key, "dir") == 0) {
    free ((char *) config.dir);
    config.dir = realpath (value, NULL);
    if (config.dir == NULL) {
      nbdkit_error ("dir=%s: %m", value);
      return -1;
    }
  }
  else if (strcmp (key, "label") == 0) {
    /* The ext2 superblock has 16 bytes for the volume name. */
    if (strlen (value) > 16) {
      nbdkit_error ("label=%s: an ext2/3/4 label is at most 16 bytes",
                    value);
      return -1;
    }
    config.label = value;
  }
  else if (strcmp (key, "type") == 0) {
    if (strcmp (value, "ext2") != 0 && strcmp (value, "ext3") != 0 &&
        strcmp (value, "ext4") != 0) {
      nbdkit_error ("type=%s: must be ext2, ext3 or ext4", value);
      return -1;
    }
    config.type = value;
  }
  else if (strcmp (key, "size") == 0)
    return config_size (value);
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

static int
linuxdisk_config_complete (void)
{
  struct stat st;

  if (config.dir == NULL) {
    nbdkit_error ("you must supply the dir=<DIRECTORY> parameter");
    return -1;
  }
  if (stat (config.dir, &st) == -1) {
    nbdkit_error ("dir=%s: %m", config.dir);
    return -1;
  }
  if (!S_ISDIR (st.st_mode)) {
    nbdkit_error ("dir=%s: not a directory", config.dir);
    return -1;
  }
  return 0;
}

#define linuxdisk_config_help \
  "[dir=]<DIRECTORY>      (required) The directory to put in the disk.\n" \
  "label=<LABEL>          The filesystem label.\n" \
  "size=[+]<SIZE>         Filesystem size, or free space with +.\n" \
  "type=ext2|ext3|ext4    The filesystem type (default: ext2)."

/* One partition covering the filesystem, GPT copies before and after. */
static void
create_partition_table (void)
{
  uint64_t fs_sectors = fs_size / SECTOR_SIZE;
  uint64_t total = FS_OFFSET / SECTOR_SIZE + fs_sectors + ENTRIES_SECTORS + 1;
  uint8_t *entries = primary + 2 * SECTOR_SIZE;
  uint8_t type[16], disk_guid[16];

  gpt_parse_guid (GPT_LINUX_FS_GUID, type);
  gpt_random_guid (disk_guid);
  gpt_write_entry (entries, type, FS_OFFSET / SECTOR_SIZE,
                   FS_OFFSET / SECTOR_SIZE + fs_sectors - 1,
                   GPT_ATTR_LEGACY_BIOS_BOOTABLE, "");
  gpt_write_protective_mbr (primary, total);
  gpt_write_header (primary + SECTOR_SIZE, true, total, ENTRIES_SECTORS,
                    entries, disk_guid);
  memcpy (secondary, entries, ENTRIES_SECTORS * SECTOR_SIZE);
  gpt_write_header (secondary + ENTRIES_SECTORS * SECTOR_SIZE, false, total,
                    ENTRIES_SECTORS, entries, disk_guid);
}

static int
linuxdisk_get_ready (void)
{
  fs_fd = make_filesystem (&config, &fs_size);
  if (fs_fd == -1)
    return -1;
  create_partition_table ();
  return 0;
}

static void *
linuxdisk_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
linuxdisk_get_size (void *handle)
{
  return FS_OFFSET + fs_size + sizeof secondary;
}

/* The disk never changes: read-only, and the same for every client. */
static int
linuxdisk_can_write (void *handle)
{
  return 0;
}

static int
linuxdisk_can_multi_conn (void *handle)
{
  return 1;
}

static int
linuxdisk_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

static int
read_filesystem (char *buf, uint32_t n, uint64_t offset)
{
  while (n > 0) {
    ssize_t r = pread (fs_fd, buf, n, offset);
    if (r == -1) {
      nbdkit_error ("pread: %m");
      return -1;
    }
    if (r == 0) {
      errno = EIO;
      nbdkit_error ("pread: unexpected end of the filesystem image");
      return -1;
    }
    buf += r;
    n -= r;
    offset += r;
  }
  return 0;
}

static int
linuxdisk_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  char *p = buf;
  uint64_t fs_end = FS_OFFSET + fs_size;

  while (count > 0) {
    uint32_t n;

    if (offset < FS_OFFSET) {
      n = MIN ((uint64_t) count, FS_OFFSET - offset);
      memcpy (p, primary + offset, n);
    }
    else if (offset < fs_end) {
      n = MIN ((uint64_t) count, fs_end - offset);
      if (read_filesystem (p, n, offset - FS_OFFSET) == -1)
        return -1;
    }
    else {
      n = count;
      memcpy (p, secondary + (offset - fs_end), n);
    }
    p += n;
    count -= n;
    offset += n;
  }
  return 0;
}

/* The data is in the page cache or the temporary file: nothing to do. */
static int
linuxdisk_cache (void *handle, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "linuxdisk",
  .longname           = "nbdkit Linux disk plugin",
  .version            = PACKAGE_VERSION,
  .description        = "A virtual ext2/3/4 disk made from a directory",
  .unload             = linuxdisk_unload,
  .config             = linuxdisk_config,
  .config_complete    = linuxdisk_config_complete,
  .config_help        = linuxdisk_config_help,
  .magic_config_key   = "dir",
  .get_ready          = linuxdisk_get_ready,
  .open               = linuxdisk_open,
  .get_size           = linuxdisk_get_size,
  .can_write          = linuxdisk_can_write,
  .can_multi_conn     = linuxdisk_can_multi_conn,
  .can_cache          = linuxdisk_can_cache,
  .pread              = linuxdisk_pread,
  .cache              = linuxdisk_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
