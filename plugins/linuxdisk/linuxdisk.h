/* SPDX-License-Identifier: BSD-3-Clause
 * The linuxdisk plugin's private header.
 */

#ifndef NBDKIT_LINUXDISK_H
#define NBDKIT_LINUXDISK_H

#include <stdbool.h>
#include <stdint.h>

/* The settings from the command line, frozen after config_complete. */
struct linuxdisk_config {
  const char *dir;              /* dir=, absolute */
  const char *label;            /* label=, or NULL */
  const char *type;             /* type=ext2|ext3|ext4 */
  int64_t size;                 /* size=, or -1 to estimate */
  bool size_add;                /* size=+SIZE: SIZE is extra free space */
};

/* filesystem.c: make the filesystem image in a temporary file, which is
 * already unlinked when this returns.  Returns the open fd and sets
 * *size, or -1 after calling nbdkit_error.
 */
extern int make_filesystem (const struct linuxdisk_config *config,
                            int64_t *size);

#endif /* NBDKIT_LINUXDISK_H */
