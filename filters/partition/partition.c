/* SPDX-License-Identifier: BSD-3-Clause
 * The partition filter: serve one partition of a partitioned disk.  On
 * every connection the partition table (MBR or GPT) is read from the
 * layer below and requests are shifted into the chosen partition.
 */

#include <config.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "partition.h"
#include "utils.h"

/* The partition to serve, counting from 1 (partition=); 0 if unset. */
static unsigned partnum = 0;

static int
partition_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                  const char *key, const char *value)
{
  if (strcmp (key, "partition") == 0) {
    if (nbdkit_parse_unsigned ("partition", value, &partnum) == -1)
      return -1;
    if (partnum == 0) {
      nbdkit_error ("partition=%s: partitions are numbered from 1", value);
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

static int
partition_config_complete (nbdkit_next_config_complete *next,
                           nbdkit_backend *nxdata)
{
  if (partnum == 0) {
    nbdkit_error ("the partition=N parameter is required");
    return -1;
  }
  return next (nxdata);
}

#define partition_config_help \
  "partition=<N>        (required) The partition to serve, from 1."

/* Where this connection's partition lies on the underlying disk. */
struct handle {
  struct partition_extent part;
};

static void *
partition_open (nbdkit_next_open *next, nbdkit_context *context,
                int readonly, const char *exportname, int is_tls)
{
  struct handle *h;

  if (next (context, readonly, exportname) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  return h;
}

static void
partition_close (void *handle)
{
  free (handle);
}

int
partition_read (nbdkit_next *next, int64_t disk_size, const char *what,
                void *buf, uint32_t count, uint64_t offset)
{
  int err;

  if (offset > (uint64_t) disk_size || count > disk_size - offset) {
    nbdkit_error ("the %s at byte %" PRIu64 " is beyond the "
                  "end of the disk (size %" PRIi64 ")",
                  what, offset, disk_size);
    return -1;
  }
  if (next->pread (next, buf, count, offset, 0, &err) == -1) {
    nbdkit_error ("reading the %s: %s", what, strerror (err));
    return -1;
  }
  return 0;
}

/* The layer below is ready now, so the table can be read. */
static int
partition_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;
  uint8_t sector0[MBR_SECTOR_SIZE];
  int64_t size = next->get_size (next);
  uint64_t end;
  int r;

  if (size == -1)
    return -1;
  if (size < MBR_SECTOR_SIZE) {
    nbdkit_error ("the disk is too small (%" PRIi64 " bytes) "
                  "to have a partition table", size);
    return -1;
  }
  if (partition_read (next, size, "boot sector", sector0, sizeof sector0,
                      0) == -1)
    return -1;
  if (!mbr_has_signature (sector0)) {
    nbdkit_error ("the disk has no MBR or GPT partition table");
    return -1;
  }
  if (mbr_is_protective (sector0))
    r = gpt_find_partition (next, size, partnum, &h->part);
  else
    r = mbr_find_partition (next, size, sector0, partnum, &h->part);
  if (r == -1)
    return -1;

  if (h->part.length == 0) {
    nbdkit_error ("partition=%u: the partition is empty", partnum);
    return -1;
  }
  if (__builtin_add_overflow (h->part.offset, h->part.length, &end) ||
      end > (uint64_t) size) {
    nbdkit_error ("partition=%u: the partition (bytes %" PRIu64 " to %"
                  PRIu64 ") extends beyond the end of the disk (size %"
                  PRIi64 ")", partnum, h->part.offset,
                  h->part.offset + h->part.length, size);
    return -1;
  }
  nbdkit_debug ("partition %u: offset %" PRIu64 " length %" PRIu64,
                partnum, h->part.offset, h->part.length);
  return 0;
}

static int64_t
partition_get_size (nbdkit_next *next, void *handle)
{
  struct handle *h = handle;

  return h->part.length;
}

static int
partition_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
                 uint64_t offs, uint32_t flags, int *err)
{
  struct handle *h = handle;

  return next->pread (next, buf, count, offs + h->part.offset, flags, err);
}

static int
partition_pwrite (nbdkit_next *next, void *handle, const void *buf,
                  uint32_t count, uint64_t offs, uint32_t flags, int *err)
{
  struct handle *h = handle;

  return next->pwrite (next, buf, count, offs + h->part.offset, flags, err);
}

static int
partition_trim (nbdkit_next *next, void *handle, uint32_t count,
                uint64_t offs, uint32_t flags, int *err)
{
  struct handle *h = handle;

  return next->trim (next, count, offs + h->part.offset, flags, err);
}

static int
partition_zero (nbdkit_next *next, void *handle, uint32_t count,
                uint64_t offs, uint32_t flags, int *err)
{
  struct handle *h = handle;

  return next->zero (next, count, offs + h->part.offset, flags, err);
}

/* Shift the answer of the layer below back, clipped to the partition. */
static int
partition_extents (nbdkit_next *next, void *handle, uint32_t count,
                   uint64_t offs, uint32_t flags,
                   struct nbdkit_extents *extents, int *err)
{
  struct handle *h = handle;
  uint64_t part_end = h->part.offset + h->part.length;
  struct nbdkit_extents *inner;
  size_t i;

  inner = nbdkit_extents_new (offs + h->part.offset, part_end);
  if (inner == NULL) {
    *err = errno;
    return -1;
  }
  if (next->extents (next, count, offs + h->part.offset, flags, inner,
                     err) == -1) {
    nbdkit_extents_free (inner);
    return -1;
  }
  for (i = 0; i < nbdkit_extents_count (inner); ++i) {
    struct nbdkit_extent e = nbdkit_get_extent (inner, i);
    uint64_t end = MIN (e.offset + e.length, part_end);

    if (e.offset >= end)
      break;
    if (nbdkit_add_extent (extents, e.offset - h->part.offset,
                           end - e.offset, e.type) == -1) {
      *err = errno;
      nbdkit_extents_free (inner);
      return -1;
    }
  }
  nbdkit_extents_free (inner);
  return 0;
}

static int
partition_cache (nbdkit_next *next, void *handle, uint32_t count,
                 uint64_t offs, uint32_t flags, int *err)
{
  struct handle *h = handle;

  return next->cache (next, count, offs + h->part.offset, flags, err);
}

static struct nbdkit_filter filter = {
  .name              = "partition",
  .longname          = "nbdkit partition filter",
  .version           = PACKAGE_VERSION,
  .description       = "Serve one partition of an MBR or GPT disk",
  .config            = partition_config,
  .config_complete   = partition_config_complete,
  .config_help       = partition_config_help,
  .open              = partition_open,
  .close             = partition_close,
  .prepare           = partition_prepare,
  .get_size          = partition_get_size,
  .pread             = partition_pread,
  .pwrite            = partition_pwrite,
  .trim              = partition_trim,
  .zero              = partition_zero,
  .extents           = partition_extents,
  .cache             = partition_cache,
};

NBDKIT_REGISTER_FILTER (filter)
