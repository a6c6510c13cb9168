/* SPDX-License-Identifier: BSD-3-Clause
 * The partitioning plugin's private header: the files given on the
 * command line and the map of the virtual disk built from them.
 */

#ifndef NBDKIT_PARTITIONING_H
#define NBDKIT_PARTITIONING_H

#include <stdbool.h>
#include <stdint.h>

#include "vector.h"

enum table_type { TABLE_AUTO, TABLE_MBR, TABLE_GPT };

/* One file= parameter with the settings in force where it appeared. */
struct file {
  const char *filename;         /* as given, also the GPT partition name */
  int fd;
  bool readonly;                /* opened O_RDONLY: it refused O_RDWR */
  uint64_t size;                /* bytes */
  uint64_t alignment;           /* power of 2, 512 .. 1M */
  uint8_t mbr_id;
  uint8_t type_guid[16];
  uint64_t offset;              /* where the partition starts (bytes) */
  uint64_t ebr_offset;          /* MBR logical partitions: its EBR */
};
DEFINE_VECTOR_TYPE (files_vector, struct file);

/* The virtual disk is a sorted list of contiguous regions. */
enum region_type {
  REGION_FILE,                  /* the contents of files.ptr[file] */
  REGION_DATA,                  /* partition table bytes at data */
  REGION_ZERO,                  /* padding: reads as zeroes */
};
struct region {
  uint64_t start, end;          /* bytes, end exclusive */
  enum region_type type;
  size_t file;
  const uint8_t *data;
};
DEFINE_VECTOR_TYPE (regions_vector, struct region);

/* partitioning.c */
extern files_vector files;

/* layout.c */
extern regions_vector regions;
extern uint64_t disk_size;
extern int create_layout (enum table_type type);
extern void free_layout (void);
extern const struct region *find_region (uint64_t offset);

#endif /* NBDKIT_PARTITIONING_H */
