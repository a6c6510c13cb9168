/* SPDX-License-Identifier: BSD-3-Clause
 * The partitioning plugin: a virtual disk made of files, one partition
 * each, behind a generated MBR or GPT partition table.  Writes go
 * through to the files; the table and padding cannot be changed.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "partitioning.h"
#include "partition-table.h"
#include "utils.h"

/* The file= parameters in order, with the settings below at the time. */
files_vector files = empty_vector;

/* partition-type=: automatic unless given. */
static enum table_type table_type = TABLE_AUTO;

/* alignment=, mbr-id=, type-guid=: apply to the files that follow. */
static uint64_t alignment = 1024 * 1024;
static uint8_t mbr_id = MBR_LINUX_FS_ID;
static uint8_t type_guid[16];

static void
partitioning_load (void)
{
  gpt_parse_guid (GPT_LINUX_FS_GUID, type_guid);
}

static void
partitioning_unload (void)
{
  size_t i;

  for (i = 0; i < files.len; ++i)
    if (files.ptr[i].fd >= 0)
      close (files.ptr[i].fd);
  files_vector_reset (&files);
  free_layout ();
}

static int
config_alignment (const char *value)
{
  int64_t a = nbdkit_parse_size (value);

  if (a == -1)
    return -1;
  if (a < SECTOR_SIZE || a > 1024 * 1024 || !is_power_of_2 (a)) {
    nbdkit_error ("alignment=%s: must be a power of 2 between %d and %d "
                  "bytes", value, SECTOR_SIZE, 1024 * 1024);
    return -1;
  }
  alignment = a;
  return 0;
}

static int
config_file (const char *value)
{
  struct file f = { .filename = value, .fd = -1, .alignment = alignment,
                    .mbr_id = mbr_id };

  memcpy (f.type_guid, type_guid, sizeof type_guid);
  if (files_vector_append (&files, f) == -1) {
    nbdkit_error ("realloc: %m");
    return -1;
  }
  return 0;
}

static int
partitioning_config (const char *key, const char *value)
{
  if (strcmp (key, "file") == 0)
    return config_file (value);
  else if (strcmp (key, "partition-type") == 0) {
    if (strcasecmp (value, "mbr") == 0)
      table_type = TABLE_MBR;
    else if (strcasecmp (value, "gpt") == 0)
      table_type = TABLE_GPT;
    else {
      nbdkit_error ("partition-type=%s: unknown partition table type, "
                    "use mbr or gpt", value);
      return -1;
    }
  }
  else if (strcmp (key, "alignment") == 0)
    return config_alignment (value);
  else if (strcmp (key, "mbr-id") == 0) {
    if (strcmp (value, "default") == 0)
      mbr_id = MBR_LINUX_FS_ID;
    else if (nbdkit_parse_uint8_t ("mbr-id", value, &mbr_id) == -1)
      return -1;
  }
  else if (strcmp (key, "type-guid") == 0) {
    const char *guid = strcmp (value, "default") == 0 ? GPT_LINUX_FS_GUID
                                                       : value;
    if (gpt_parse_guid (guid, type_guid) == -1) {
      nbdkit_error ("type-guid=%s: not a GUID "
                    "(XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX)", value);
      return -1;
    }
  }
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

/* Open read-write if possible; a read-only file makes a read-only disk. */
static int
open_file (struct file *f)
{
  off_t size;

  f->fd = open (f->filename, O_RDWR | O_CLOEXEC);
  if (f->fd == -1 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
    f->fd = open (f->filename, O_RDONLY | O_CLOEXEC);
    f->readonly = true;
  }
  if (f->fd == -1) {
    nbdkit_error ("file=%s: open: %m", f->filename);
    return -1;
  }
  size = lseek (f->fd, 0, SEEK_END);
  if (size == -1) {
    nbdkit_error ("file=%s: lseek: %m", f->filename);
    return -1;
  }
  if (size == 0) {
    nbdkit_error ("file=%s: zero length partitions are not allowed",
                  f->filename);
    return -1;
  }
  f->size = size;
  return 0;
}

static int
partitioning_config_complete (void)
{
  size_t i;

  if (files.len == 0) {
    nbdkit_error ("at least one file=<FILENAME> parameter must be given");
    return -1;
  }
  for (i = 0; i < files.len; ++i)
    if (open_file (&files.ptr[i]) == -1)
      return -1;
  return create_layout (table_type);
}

#define partitioning_config_help \
  "[file=]<FILENAME>      (required) File(s) containing partitions.\n" \
  "partition-type=mbr|gpt Partition table type (default: by number/size).\n" \
  "alignment=<N>          Alignment of following partitions (default 1M).\n" \
  "mbr-id=0xN|default     MBR type byte of following partitions.\n" \
  "type-guid=GUID|default GPT type GUID of following partitions."

static void *
partitioning_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
partitioning_get_size (void *handle)
{
  return disk_size;
}

static int
partitioning_can_write (void *handle)
{
  size_t i;

  for (i = 0; i < files.len; ++i)
    if (files.ptr[i].readonly)
      return 0;
  return 1;
}

/* Every connection reads and writes the same files directly. */
static int
partitioning_can_multi_conn (void *handle)
{
  return 1;
}

/* Cache requests are served by reading (as Debian's nbdkit 1.32 does). */
static int
partitioning_can_cache (void *handle)
{
  return NBDKIT_CACHE_EMULATE;
}

/* The bytes of region R from OFFSET, at most COUNT of them. */
static uint32_t
region_span (const struct region *r, uint32_t count, uint64_t offset)
{
  return MIN ((uint64_t) count, r->end - offset);
}

static int
partitioning_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                    uint32_t flags)
{
  while (count > 0) {
    const struct region *r = find_region (offset);
    uint32_t n = region_span (r, count, offset);
    ssize_t got;

    switch (r->type) {
    case REGION_FILE:
      got = pread (files.ptr[r->file].fd, buf, n, offset - r->start);
      if (got == -1) {
        nbdkit_error ("%s: pread: %m", files.ptr[r->file].filename);
        return -1;
      }
      if (got == 0) {
        nbdkit_error ("%s: unexpected end of file (was it truncated?)",
                      files.ptr[r->file].filename);
        errno = EIO;
        return -1;
      }
      n = got;
      break;
    case REGION_DATA:
      memcpy (buf, r->data + (offset - r->start), n);
      break;
    case REGION_ZERO:
      memset (buf, 0, n);
      break;
    }
    buf = (char *) buf + n;
    count -= n;
    offset += n;
  }
  return 0;
}

/* Writes outside the files must leave the disk as it is. */
static int
check_unchanged (const char *buf, uint32_t count, uint64_t offset)
{
  while (count > 0) {
    const struct region *r = find_region (offset);
    uint32_t n = region_span (r, count, offset);

    if (r->type == REGION_DATA &&
        memcmp (buf, r->data + (offset - r->start), n) != 0) {
      nbdkit_error ("attempt to change the partition table of the virtual "
                    "disk at offset %" PRIu64, offset);
      return -1;
    }
    if (r->type == REGION_ZERO && !is_zero (buf, n)) {
      nbdkit_error ("attempt to write non-zeroes to a padding area of the "
                    "virtual disk at offset %" PRIu64, offset);
      return -1;
    }
    buf += n;
    count -= n;
    offset += n;
  }
  return 0;
}

static int
partitioning_pwrite (void *handle, const void *buf, uint32_t count,
                     uint64_t offset, uint32_t flags)
{
  if (check_unchanged (buf, count, offset) == -1) {
    errno = EIO;
    return -1;
  }
  while (count > 0) {
    const struct region *r = find_region (offset);
    uint32_t n = region_span (r, count, offset);

    if (r->type == REGION_FILE) {
      ssize_t done = pwrite (files.ptr[r->file].fd, buf, n,
                             offset - r->start);
      if (done == -1) {
        nbdkit_error ("%s: pwrite: %m", files.ptr[r->file].filename);
        return -1;
      }
      n = done;
    }
    buf = (const char *) buf + n;
    count -= n;
    offset += n;
  }
  return 0;
}

static int
partitioning_flush (void *handle, uint32_t flags)
{
  size_t i;

  for (i = 0; i < files.len; ++i) {
    if (!files.ptr[i].readonly && fdatasync (files.ptr[i].fd) == -1) {
      nbdkit_error ("%s: fdatasync: %m", files.ptr[i].filename);
      return -1;
    }
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "partitioning",
  .longname           = "nbdkit partitioning plugin",
  .version            = PACKAGE_VERSION,
  .description        = "A partitioned virtual disk made from files",
  .load               = partitioning_load,
  .unload             = partitioning_unload,
  .config             = partitioning_config,
  .config_complete    = partitioning_config_complete,
  .config_help        = partitioning_config_help,
  .magic_config_key   = "file",
  .open               = partitioning_open,
  .get_size           = partitioning_get_size,
  .can_write          = partitioning_can_write,
  .can_multi_conn     = partitioning_can_multi_conn,
  .can_cache          = partitioning_can_cache,
  .pread              = partitioning_pread,
  .pwrite             = partitioning_pwrite,
  .flush              = partitioning_flush,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
