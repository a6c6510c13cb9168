/* SPDX-License-Identifier: BSD-3-Clause
 * The floppy plugin's private header: the directory tree read from the
 * host (directory.c, short-names.c) and the virtual FAT32 disk laid out
 * over it (virtual-fat.c).
 */

#ifndef NBDKIT_FLOPPY_H
#define NBDKIT_FLOPPY_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "vector.h"

struct nbdkit_extents;

#define SECTOR_SIZE 512

/* FAT32 limits: file sizes are 32 bit, a directory holds at most
 * 65536 entries of 32 bytes, and cluster numbers are 28 bit with the
 * top few values reserved.
 */
#define FAT_MAX_FILE_SIZE UINT64_C(0xffffffff)
#define FAT_MAX_DIR_ENTRIES 65536
#define FAT_MAX_CLUSTERS UINT32_C(0x0ffffff5)
#define FAT_MIN_CLUSTERS 65525  /* fewer means FAT12/16 to most tools */
#define DIRENT_SIZE 32

/* One name in a host directory. */
struct child {
  char *name;                   /* host name (UTF-8) */
  bool is_dir;
  size_t index;                 /* into floppy.dirs or floppy.files */
  uint8_t short_name[11];       /* 8.3 name, space padded */
  bool needs_lfn;               /* the long name differs from short_name */
  size_t lfn_entries;           /* number of VFAT long name entries */
  struct timespec mtime, atime;
};
DEFINE_VECTOR_TYPE (child_vector, struct child)

struct dir {
  char *host_path;
  size_t parent;                /* index of the parent, 0 for the root */
  child_vector children;
  struct timespec mtime, atime;
  uint32_t nslots;              /* 32-byte directory entries needed */
  uint32_t first_cluster;
  uint32_t nclusters;
  uint8_t *entries;             /* nslots * DIRENT_SIZE bytes; the rest
                                 * of the last cluster reads as zeroes */
};
DEFINE_VECTOR_TYPE (dir_vector, struct dir)

struct file {
  char *host_path;
  uint64_t size;
  uint32_t first_cluster;       /* 0 for an empty file */
  uint32_t nclusters;
};
DEFINE_VECTOR_TYPE (file_vector, struct file)

/* The disk as alternating data and zero areas, for block status. */
struct area {
  uint64_t end;                 /* the area ends here (exclusive) */
  bool zero;                    /* reads as zeroes and takes no space */
};
#define MAX_AREAS 8

/* A run of clusters belonging to one directory or file.  Every file and
 * directory is stored contiguously, so the FAT chain of a run is simply
 * first, first+1, ..., end of chain.
 */
struct run {
  uint32_t first_cluster;
  uint32_t nclusters;
  bool is_dir;
  size_t index;
};
DEFINE_VECTOR_TYPE (run_vector, struct run)

struct floppy {
  dir_vector dirs;              /* dirs.ptr[0] is the root */
  file_vector files;
  run_vector runs;              /* sorted by first_cluster */
  char label[11];               /* space padded */

  /* Geometry, all set by floppy_layout. */
  uint32_t sectors_per_cluster;
  uint32_t cluster_size;
  uint32_t used_clusters;       /* clusters 2 .. used_clusters + 1 */
  uint32_t total_clusters;
  uint32_t fat_sectors;         /* sectors in one FAT */
  uint32_t partition_sectors;
  uint64_t disk_size;

  struct area areas[MAX_AREAS];
  size_t nareas;

  /* Sectors built in memory. */
  uint8_t mbr[SECTOR_SIZE];
  uint8_t boot_sector[SECTOR_SIZE];
  uint8_t fsinfo[SECTOR_SIZE];
};

/* The first sector of the partition (1 MiB, as partitioning tools do)
 * and the reserved sectors before the first FAT.
 */
#define PARTITION_START_SECTOR 2048
#define RESERVED_SECTORS 32
#define BACKUP_BOOT_SECTOR 6

static inline void
put16 (uint8_t *p, uint16_t v)
{
  p[0] = v;
  p[1] = v >> 8;
}

static inline void
put32 (uint8_t *p, uint32_t v)
{
  put16 (p, v);
  put16 (p + 2, v >> 16);
}

/* directory.c */
extern int floppy_scan (struct floppy *floppy, const char *dir);
extern int floppy_build_directories (struct floppy *floppy);
extern void floppy_free (struct floppy *floppy);

/* short-names.c */
struct short_name_set;
extern struct short_name_set *short_name_set_new (void);
extern void short_name_set_free (struct short_name_set *set);
extern int claim_exact_short_name (struct short_name_set *set,
                                   const char *name, uint8_t short_name[11]);
extern int make_short_name (struct short_name_set *set, const char *name,
                            uint8_t short_name[11]);
extern int utf8_to_utf16 (const char *name, uint16_t *out, size_t *len);
extern uint8_t short_name_checksum (const uint8_t short_name[11]);

/* virtual-fat.c */
extern int floppy_layout (struct floppy *floppy, int64_t requested_size,
                          const char *size_str);
extern int floppy_read (const struct floppy *floppy, void *buf,
                        uint32_t count, uint64_t offset);
extern int floppy_extents (const struct floppy *floppy, uint32_t count,
                           uint64_t offset, struct nbdkit_extents *extents);

#endif /* NBDKIT_FLOPPY_H */
