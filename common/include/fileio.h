/* SPDX-License-Identifier: BSD-3-Clause
 * Whole-buffer file I/O and unlinked temporary files, for the filters
 * that keep data in a scratch file (cow, cache, gzip).
 */

#ifndef NBDKIT_FILEIO_H
#define NBDKIT_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Read COUNT bytes at OFFSET, retrying short reads and EINTR; bytes past
 * the end of the file read as zeroes.  0, or -1 with errno set.
 */
extern int full_pread (int fd, void *buf, size_t count, off_t offset);

/* Write all COUNT bytes at OFFSET.  0, or -1 with errno set. */
extern int full_pwrite (int fd, const void *buf, size_t count, off_t offset);

/* Create and unlink a file in $TMPDIR (default /var/tmp) named after
 * PREFIX.  Returns the descriptor (close-on-exec) and, in *DIR, the
 * directory used; -1 with errno set on failure.
 */
extern int make_unlinked_tmpfile (const char *prefix, const char **dir);

#endif /* NBDKIT_FILEIO_H */
