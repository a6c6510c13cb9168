/* SPDX-License-Identifier: BSD-3-Clause
 * What the tmpdisk and ondemand plugins share: the parameters that say
 * how to make a disk (size, type, label, command and its variables),
 * making one in a file, and serving an open file.
 */

#ifndef NBDKIT_DISK_H
#define NBDKIT_DISK_H

#include <stdbool.h>
#include <stdint.h>

#include "vector.h"


struct disk_config {
  int64_t size;                 /* size=, -1 until given */
  const char *type;             /* type=, or NULL */
  const char *label;            /* label=, or NULL */
  const char *command;          /* command=, or NULL for mkfs */
  string_vector vars;           /* "NAME=VALUE" for the command */
};

/* The handle of a connection: the disk file it serves. */
struct disk_handle {
  int fd;
  int64_t size;
};

/* mkdisk.c */
extern int disk_config_set (struct disk_config *c, const char *key,
                            const char *value);
extern int disk_config_check (const struct disk_config *c);
extern void disk_config_free (struct disk_config *c);
extern int make_disk (const struct disk_config *c, const char *path);

/* disk-io.c */
extern struct disk_handle *disk_handle_new (int fd);
extern void disk_handle_close (struct disk_handle *h);
extern int64_t disk_get_size (void *handle);
extern int disk_can_trim (void *handle);
extern int disk_can_fast_zero (void *handle);
extern int disk_pread (void *handle, void *buf, uint32_t count,
                       uint64_t offset, uint32_t flags);
extern int disk_pwrite (void *handle, const void *buf, uint32_t count,
                        uint64_t offset, uint32_t flags);
extern int disk_flush (void *handle, uint32_t flags);
extern int disk_trim (void *handle, uint32_t count, uint64_t offset,
                      uint32_t flags);
extern int disk_zero (void *handle, uint32_t count, uint64_t offset,
                      uint32_t flags);

#define DISK_CONFIG_HELP \
  "[size=]<SIZE>          (required) Virtual size of each disk.\n" \
  "type=<FS>              Filesystem type for mkfs -t (default: ext4).\n" \
  "label=<LABEL>          Filesystem label.\n" \
  "command=<COMMAND>      Shell commands making $disk instead of mkfs.\n" \
  "VAR=VALUE              Further shell variables for the command."

#endif /* NBDKIT_DISK_H */
