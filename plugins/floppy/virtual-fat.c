/* SPDX-License-Identifier: BSD-3-Clause
 * The virtual disk: an MBR with one FAT32 partition at 1 MiB.  The
 * geometry, boot sector, FSInfo and directories are built at start-up;
 * FAT entries are computed when read (every file and directory lies in
 * one contiguous run of clusters), and file clusters are read from the
 * host files.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "fileio.h"
#include "floppy.h"
#include "utils.h"

#define PARTITION_OFFSET ((uint64_t) PARTITION_START_SECTOR * SECTOR_SIZE)
#define FAT_END_OF_CHAIN UINT32_C(0x0fffffff)

/* Cluster size by the size of the data, as Microsoft's FAT32 table. */
static uint32_t
choose_sectors_per_cluster (uint64_t data_bytes)
{
  if (data_bytes <= UINT64_C (260) << 20)
    return 1;
  if (data_bytes <= UINT64_C (8) << 30)
    return 8;
  if (data_bytes <= UINT64_C (16) << 30)
    return 16;
  if (data_bytes <= UINT64_C (32) << 30)
    return 32;
  return 64;
}

static int
add_run (struct floppy *floppy, uint64_t *next, uint64_t bytes,
         bool is_dir, size_t index, uint32_t *first, uint32_t *n)
{
  uint64_t clusters = (bytes + floppy->cluster_size - 1) / floppy->cluster_size;
  struct run run;

  if (clusters == 0) {
    *first = *n = 0;
    return 0;
  }
  if (*next + clusters - 2 > FAT_MAX_CLUSTERS) {
    nbdkit_error ("the files are too large for a FAT32 file system "
                  "(more than %" PRIu32 " clusters of %" PRIu32 " bytes)",
                  FAT_MAX_CLUSTERS, floppy->cluster_size);
    return -1;
  }
  *first = *next;
  *n = clusters;
  run = (struct run) { .first_cluster = *first, .nclusters = *n,
                       .is_dir = is_dir, .index = index };
  if (run_vector_append (&floppy->runs, run) == -1) {
    nbdkit_error ("realloc: %m");
    return -1;
  }
  *next += clusters;
  return 0;
}

/* Directories first (the root at cluster 2), then the files. */
static int
assign_clusters (struct floppy *floppy)
{
  uint64_t next = 2;
  size_t i;

  for (i = 0; i < floppy->dirs.len; ++i) {
    struct dir *d = &floppy->dirs.ptr[i];
    if (add_run (floppy, &next, (uint64_t) d->nslots * DIRENT_SIZE, true, i,
                 &d->first_cluster, &d->nclusters) == -1)
      return -1;
  }
  for (i = 0; i < floppy->files.len; ++i) {
    struct file *f = &floppy->files.ptr[i];
    if (add_run (floppy, &next, f->size, false, i,
                 &f->first_cluster, &f->nclusters) == -1)
      return -1;
  }
  floppy->used_clusters = next - 2;
  return 0;
}

static uint64_t
fat_sectors_for (uint64_t clusters)
{
  return ((clusters + 2) * 4 + SECTOR_SIZE - 1) / SECTOR_SIZE;
}

static bool
clusters_fit (uint64_t clusters, uint32_t spc, uint64_t sectors)
{
  return RESERVED_SECTORS + 2 * fat_sectors_for (clusters) +
    clusters * spc <= sectors;
}

/* The most clusters a partition of SECTORS sectors holds. */
static uint64_t
clusters_in (uint64_t sectors, uint32_t spc)
{
  uint64_t n;

  if (sectors <= RESERVED_SECTORS)
    return 0;
  n = (sectors - RESERVED_SECTORS) * SECTOR_SIZE / (spc * SECTOR_SIZE + 8);
  while (n > 0 && !clusters_fit (n, spc, sectors))
    n--;
  while (clusters_fit (n + 1, spc, sectors))
    n++;
  return n;
}

/* Choose the partition size: from size= if given, else just enough for
 * the files but at least FAT_MIN_CLUSTERS clusters, so that every tool
 * takes the file system for FAT32.
 */
static int
size_partition (struct floppy *floppy, int64_t requested_size,
                const char *size_str)
{
  uint32_t spc = floppy->sectors_per_cluster;
  uint64_t total, sectors;

  if (requested_size >= 0) {
    sectors = requested_size / SECTOR_SIZE;
    sectors = sectors > PARTITION_START_SECTOR
      ? sectors - PARTITION_START_SECTOR : 0;
    total = MIN (clusters_in (sectors, spc), FAT_MAX_CLUSTERS);
    if (total < MAX (floppy->used_clusters, FAT_MIN_CLUSTERS)) {
      uint64_t n = MAX (floppy->used_clusters, FAT_MIN_CLUSTERS);
      uint64_t need = (PARTITION_START_SECTOR + RESERVED_SECTORS +
                       2 * fat_sectors_for (n)) * SECTOR_SIZE +
        n * floppy->cluster_size;
      nbdkit_error ("size=%s is too small: at least %" PRIu64 " bytes are "
                    "needed for the files and the %d clusters that FAT32 "
                    "requires at least", size_str, need, FAT_MIN_CLUSTERS);
      return -1;
    }
  }
  else {
    total = MAX (floppy->used_clusters, FAT_MIN_CLUSTERS);
    sectors = RESERVED_SECTORS + 2 * fat_sectors_for (total) + total * spc;
  }
  if (PARTITION_START_SECTOR + sectors > UINT32_MAX) {
    if (requested_size >= 0)
      nbdkit_error ("size=%s: larger than an MBR partition allows "
                    "(2 TiB)", size_str);
    else
      nbdkit_error ("the files need a disk larger than an MBR partition "
                    "allows (2 TiB)");
    return -1;
  }
  floppy->total_clusters = total;
  floppy->fat_sectors = fat_sectors_for (total);
  floppy->partition_sectors = sectors;
  floppy->disk_size = requested_size >= 0 ? (uint64_t) requested_size
    : (PARTITION_START_SECTOR + sectors) * SECTOR_SIZE;
  return 0;
}

/* CHS address of LBA in the usual 255 heads, 63 sectors geometry. */
static void
write_chs (uint8_t *p, uint32_t lba)
{
  uint32_t c = lba / (255 * 63), h = lba / 63 % 255, s = lba % 63 + 1;

  if (c > 1023) {
    p[0] = 0xfe; p[1] = 0xff; p[2] = 0xff;
    return;
  }
  p[0] = h;
  p[1] = s | ((c >> 2) & 0xc0);
  p[2] = c & 0xff;
}

static void
build_mbr (struct floppy *floppy, uint32_t serial)
{
  uint8_t *p = floppy->mbr + 446;
  uint32_t last = PARTITION_START_SECTOR + floppy->partition_sectors - 1;

  put32 (floppy->mbr + 440, serial);
  p[0] = 0;                     /* not bootable */
  write_chs (p + 1, PARTITION_START_SECTOR);
  p[4] = 0x0c;                  /* FAT32 with LBA */
  write_chs (p + 5, last);
  put32 (p + 8, PARTITION_START_SECTOR);
  put32 (p + 12, floppy->partition_sectors);
  floppy->mbr[510] = 0x55;
  floppy->mbr[511] = 0xaa;
}

static void
build_boot_sector (struct floppy *floppy, uint32_t serial)
{
  uint8_t *b = floppy->boot_sector;

  memcpy (b, "\xeb\x58\x90" "NBDKIT  ", 11);
  put16 (b + 11, SECTOR_SIZE);
  b[13] = floppy->sectors_per_cluster;
  put16 (b + 14, RESERVED_SECTORS);
  b[16] = 2;                    /* number of FATs */
  b[21] = 0xf8;                 /* media: fixed disk */
  put16 (b + 24, 63);           /* sectors per track */
  put16 (b + 26, 255);          /* heads */
  put32 (b + 28, PARTITION_START_SECTOR);
  put32 (b + 32, floppy->partition_sectors);
  put32 (b + 36, floppy->fat_sectors);
  put32 (b + 44, 2);            /* root directory cluster */
  put16 (b + 48, 1);            /* FSInfo sector */
  put16 (b + 50, BACKUP_BOOT_SECTOR);
  b[64] = 0x80;                 /* drive number */
  b[66] = 0x29;                 /* extended boot signature */
  put32 (b + 67, serial);
  memcpy (b + 71, floppy->label, 11);
  memcpy (b + 82, "FAT32   ", 8);
  memcpy (b + 90, "\xf4\xeb\xfd", 3);   /* not bootable: hlt; jmp $-1 */
  b[510] = 0x55;
  b[511] = 0xaa;
}

static void
build_fsinfo (struct floppy *floppy)
{
  uint8_t *f = floppy->fsinfo;
  uint32_t free_clusters = floppy->total_clusters - floppy->used_clusters;

  put32 (f, 0x41615252);
  put32 (f + 484, 0x61417272);
  put32 (f + 488, free_clusters);
  put32 (f + 492, free_clusters ? floppy->used_clusters + 2 : 0xffffffff);
  put32 (f + 508, 0xaa550000);
}

static void
add_area (struct floppy *floppy, uint64_t end, bool zero)
{
  assert (floppy->nareas < MAX_AREAS);
  if (floppy->nareas > 0 &&
      end <= floppy->areas[floppy->nareas - 1].end)
    return;                     /* empty */
  floppy->areas[floppy->nareas++] = (struct area) { .end = end, .zero = zero };
}

/* What is data and what is zero: the MBR, the gap before the partition,
 * the reserved sectors, the used part of each FAT and its zero rest,
 * the used clusters, then free clusters and anything past the partition.
 */
static void
map_areas (struct floppy *floppy)
{
  uint64_t sector_bytes = SECTOR_SIZE;
  uint64_t fat_bytes = (uint64_t) floppy->fat_sectors * sector_bytes;
  uint64_t fat_used = ROUND_UP (((uint64_t) floppy->used_clusters + 2) * 4,
                                sector_bytes);
  uint64_t fat_start = PARTITION_OFFSET + RESERVED_SECTORS * sector_bytes;
  uint64_t data_start = fat_start + 2 * fat_bytes;

  floppy->nareas = 0;
  add_area (floppy, SECTOR_SIZE, false);
  add_area (floppy, PARTITION_OFFSET, true);
  add_area (floppy, fat_start + fat_used, false);
  add_area (floppy, fat_start + fat_bytes, true);
  add_area (floppy, fat_start + fat_bytes + fat_used, false);
  add_area (floppy, data_start, true);
  add_area (floppy, data_start +
            (uint64_t) floppy->used_clusters * floppy->cluster_size, false);
  add_area (floppy, floppy->disk_size, true);
}

int
floppy_extents (const struct floppy *floppy, uint32_t count, uint64_t offset,
                struct nbdkit_extents *extents)
{
  uint64_t end = offset + count;
  size_t i;

  for (i = 0; i < floppy->nareas && offset < end; ++i) {
    const struct area *a = &floppy->areas[i];
    if (a->end <= offset)
      continue;
    if (nbdkit_add_extent (extents, offset, a->end - offset,
                           a->zero
                           ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0) == -1)
      return -1;
    offset = a->end;
  }
  return 0;
}

int
floppy_layout (struct floppy *floppy, int64_t requested_size,
               const char *size_str)
{
  uint64_t data_bytes = 0;
  uint32_t serial;
  size_t i;

  for (i = 0; i < floppy->dirs.len; ++i)
    data_bytes += (uint64_t) floppy->dirs.ptr[i].nslots * DIRENT_SIZE;
  for (i = 0; i < floppy->files.len; ++i)
    data_bytes += floppy->files.ptr[i].size;
  floppy->sectors_per_cluster =
    choose_sectors_per_cluster (MAX ((int64_t) data_bytes, requested_size));
  floppy->cluster_size = floppy->sectors_per_cluster * SECTOR_SIZE;

  if (assign_clusters (floppy) == -1 ||
      size_partition (floppy, requested_size, size_str) == -1)
    return -1;

  /* A serial number that stays the same for the same directory. */
  serial = floppy->dirs.ptr[0].mtime.tv_sec ^ 0x4e42444b;
  build_mbr (floppy, serial);
  build_boot_sector (floppy, serial);
  build_fsinfo (floppy);
  map_areas (floppy);
  nbdkit_debug ("floppy: %zu dirs, %zu files, %" PRIu32 " of %" PRIu32
                " clusters of %" PRIu32 " bytes used, disk size %" PRIu64,
                floppy->dirs.len, floppy->files.len, floppy->used_clusters,
                floppy->total_clusters, floppy->cluster_size,
                floppy->disk_size);
  return 0;
}

/* The run holding CLUSTER, or the first run after it (runs.len if none). */
static size_t
find_run (const struct floppy *floppy, uint64_t cluster)
{
  size_t lo = 0, hi = floppy->runs.len;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const struct run *r = &floppy->runs.ptr[mid];
    if (cluster >= (uint64_t) r->first_cluster + r->nclusters)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* COUNT bytes at OFFSET within one copy of the FAT. */
static void
read_fat (const struct floppy *floppy, uint8_t *buf, uint32_t count,
          uint64_t offset)
{
  uint64_t entry = offset / 4;
  size_t r = find_run (floppy, entry);

  while (count > 0) {
    uint8_t bytes[4];
    uint32_t skip = offset % 4, n = MIN (count, 4 - skip), value = 0;

    while (r < floppy->runs.len &&
           entry >= (uint64_t) floppy->runs.ptr[r].first_cluster +
           floppy->runs.ptr[r].nclusters)
      r++;
    if (entry == 0)
      value = 0x0ffffff8;       /* media byte */
    else if (entry == 1)
      value = FAT_END_OF_CHAIN;
    else if (r < floppy->runs.len &&
             entry >= floppy->runs.ptr[r].first_cluster) {
      const struct run *run = &floppy->runs.ptr[r];
      value = entry + 1 < (uint64_t) run->first_cluster + run->nclusters
        ? entry + 1 : FAT_END_OF_CHAIN;
    }
    put32 (bytes, value);
    memcpy (buf, bytes + skip, n);
    buf += n;
    count -= n;
    offset += n;
    entry++;
  }
}

/* LEN bytes at POS (from the start of the file) of host file F. */
static int
read_host_file (const struct file *f, uint8_t *buf, uint32_t len,
                uint64_t pos)
{
  uint32_t n = pos < f->size ? MIN ((uint64_t) len, f->size - pos) : 0;
  int fd, r;

  memset (buf + n, 0, len - n);
  if (n == 0)
    return 0;
  fd = open (f->host_path, O_RDONLY | O_CLOEXEC);
  if (fd == -1) {
    nbdkit_error ("open: %s: %m", f->host_path);
    return -1;
  }
  r = full_pread (fd, buf, n, pos);
  if (r == -1) {
    int saved_errno = errno;
    nbdkit_error ("pread: %s: %m", f->host_path);
    close (fd);
    errno = saved_errno;        /* the client gets the read's error */
    return -1;
  }
  close (fd);
  return 0;
}

/* Read from the data area at OFFSET; returns the bytes read (up to the
 * end of the run or gap holding OFFSET), or -1.
 */
static int64_t
read_data (const struct floppy *floppy, uint8_t *buf, uint32_t count,
           uint64_t offset)
{
  uint64_t cluster = 2 + offset / floppy->cluster_size;
  size_t r = find_run (floppy, cluster);
  const struct run *run = r < floppy->runs.len ? &floppy->runs.ptr[r] : NULL;
  uint64_t run_start, run_end, pos;

  if (run == NULL || cluster < run->first_cluster) {
    /* Free clusters up to the next run (or the end) read as zeroes. */
    uint64_t end = run ? ((uint64_t) run->first_cluster - 2) *
      floppy->cluster_size : UINT64_MAX;
    count = MIN ((uint64_t) count, end - offset);
    memset (buf, 0, count);
    return count;
  }
  run_start = ((uint64_t) run->first_cluster - 2) * floppy->cluster_size;
  run_end = run_start + (uint64_t) run->nclusters * floppy->cluster_size;
  count = MIN ((uint64_t) count, run_end - offset);
  pos = offset - run_start;
  if (run->is_dir) {
    const struct dir *d = &floppy->dirs.ptr[run->index];
    uint64_t len = (uint64_t) d->nslots * DIRENT_SIZE;
    uint32_t n = pos < len ? MIN ((uint64_t) count, len - pos) : 0;
    if (n > 0)
      memcpy (buf, d->entries + pos, n);
    memset (buf + n, 0, count - n);
  }
  else if (read_host_file (&floppy->files.ptr[run->index], buf, count,
                           pos) == -1)
    return -1;
  return count;
}

/* Read from the partition at OFFSET; returns the bytes read (up to the
 * end of the structure holding OFFSET), or -1.
 */
static int64_t
read_partition (const struct floppy *floppy, uint8_t *buf, uint32_t count,
                uint64_t offset)
{
  uint64_t fat_start = RESERVED_SECTORS * SECTOR_SIZE;
  uint64_t fat_bytes = (uint64_t) floppy->fat_sectors * SECTOR_SIZE;
  uint64_t data_start = fat_start + 2 * fat_bytes;
  uint64_t data_end = data_start +
    (uint64_t) floppy->total_clusters * floppy->cluster_size;
  uint64_t sector = offset / SECTOR_SIZE;

  if (offset < fat_start) {
    const uint8_t *s = NULL;
    uint32_t skip = offset % SECTOR_SIZE;
    count = MIN (count, SECTOR_SIZE - skip);
    if (sector == 0 || sector == BACKUP_BOOT_SECTOR)
      s = floppy->boot_sector;
    else if (sector == 1 || sector == BACKUP_BOOT_SECTOR + 1)
      s = floppy->fsinfo;
    if (s)
      memcpy (buf, s + skip, count);
    else
      memset (buf, 0, count);
    return count;
  }
  if (offset < data_start) {
    uint64_t pos = (offset - fat_start) % fat_bytes;
    count = MIN ((uint64_t) count, fat_bytes - pos);
    read_fat (floppy, buf, count, pos);
    return count;
  }
  if (offset < data_end) {
    count = MIN ((uint64_t) count, data_end - offset);
    return read_data (floppy, buf, count, offset - data_start);
  }
  memset (buf, 0, count);
  return count;
}

int
floppy_read (const struct floppy *floppy, void *buf, uint32_t count,
             uint64_t offset)
{
  uint64_t part_end = PARTITION_OFFSET +
    (uint64_t) floppy->partition_sectors * SECTOR_SIZE;
  uint8_t *p = buf;

  while (count > 0) {
    int64_t n;
    if (offset < SECTOR_SIZE) {
      n = MIN (count, SECTOR_SIZE - offset);
      memcpy (p, floppy->mbr + offset, n);
    }
    else if (offset < PARTITION_OFFSET || offset >= part_end) {
      n = offset < PARTITION_OFFSET
        ? MIN ((uint64_t) count, PARTITION_OFFSET - offset) : count;
      memset (p, 0, n);
    }
    else {
      n = read_partition (floppy, p, MIN ((uint64_t) count, part_end - offset),
                          offset - PARTITION_OFFSET);
      if (n == -1)
        return -1;
    }
    assert (n > 0);
    p += n;
    count -= n;
    offset += n;
  }
  return 0;
}
