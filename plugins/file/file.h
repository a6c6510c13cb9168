/* SPDX-License-Identifier: BSD-3-Clause
 * Private to the file plugin: the per-connection handle shared by file.c
 * (the plugin callbacks), open.c (listing and opening files) and zero.c
 * (zeroing and trimming with fallocate).
 */

#ifndef NBDKIT_FILE_H
#define NBDKIT_FILE_H

#include <stdbool.h>
#include <stdint.h>

struct handle {
  int fd;
  char *name;                   /* for messages: the path or export name */
  bool is_block_device;
  bool can_write;               /* false if only a read-only open worked */
  /* Cleared the first time the kernel says an operation is unsupported,
   * so it is not tried again.  Requests may run in parallel.
   */
  _Atomic bool can_punch_hole;
  _Atomic bool can_zero_range;
  _Atomic bool can_fallocate;
};

struct nbdkit_exports;

/* open.c */
extern int file_list_directory (int dirfd_exports, const char *directory,
                                struct nbdkit_exports *exports);

/* Open PATH relative to AT (a directory descriptor or AT_FDCWD) into H,
 * read-only if READONLY or if only that works.  Returns -1 with errno set
 * after nbdkit_error.
 */
extern int file_open_data (struct handle *h, int at, const char *path,
                           int readonly);

/* zero.c */

/* Punch a hole in [OFFSET, OFFSET+COUNT).  Trim is only advice, so a file
 * or device that cannot punch holes is left alone and 0 is returned.
 * Returns -1 with errno set on a real error.
 */
extern int file_punch_hole (struct handle *h, uint32_t count, uint64_t offset);

/* Make [OFFSET, OFFSET+COUNT) read as zero without writing data, honouring
 * NBDKIT_FLAG_MAY_TRIM and NBDKIT_FLAG_FAST_ZERO in FLAGS.  Returns -1
 * with errno EOPNOTSUPP when only writing zeroes would do.
 */
extern int file_zero_range (struct handle *h, uint32_t count, uint64_t offset,
                            uint32_t flags);

#endif /* NBDKIT_FILE_H */
