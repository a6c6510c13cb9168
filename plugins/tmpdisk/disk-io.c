/* SPDX-License-Identifier: BSD-3-Clause
 * Serving one open disk file per connection (tmpdisk and ondemand):
 * positional reads and writes, fdatasync, and fallocate for trim/zero.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "disk.h"

struct disk_handle *
disk_handle_new (int fd)
{
  struct disk_handle *h;
  off_t size = lseek (fd, 0, SEEK_END);

  if (size == -1) {
    nbdkit_error ("lseek: %m");
    return NULL;
  }
  h = malloc (sizeof *h);
  if (h == NULL) {
    nbdkit_error ("malloc: %m");
    return NULL;
  }
  h->fd = fd;
  h->size = size;
  return h;
}

void
disk_handle_close (struct disk_handle *h)
{
  close (h->fd);
  free (h);
}

int64_t
disk_get_size (void *handle)
{
  struct disk_handle *h = handle;
  return h->size;
}

int
disk_can_trim (void *handle)
{
  return 1;
}

/* Zeroing is by fallocate, or refused with ENOTSUP: never slow. */
int
disk_can_fast_zero (void *handle)
{
  return 1;
}

int
disk_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
            uint32_t flags)
{
  struct disk_handle *h = handle;
  char *p = buf;

  while (count > 0) {
    ssize_t r = pread (h->fd, p, count, offset);
    if (r == -1) {
      nbdkit_error ("pread: %m");
      return -1;
    }
    if (r == 0) {                /* the file shrank: reads as zeroes */
      memset (p, 0, count);
      return 0;
    }
    p += r;
    count -= r;
    offset += r;
  }
  return 0;
}

int
disk_pwrite (void *handle, const void *buf, uint32_t count, uint64_t offset,
             uint32_t flags)
{
  struct disk_handle *h = handle;
  const char *p = buf;

  while (count > 0) {
    ssize_t r = pwrite (h->fd, p, count, offset);
    if (r == -1) {
      nbdkit_error ("pwrite: %m");
      return -1;
    }
    p += r;
    count -= r;
    offset += r;
  }
  if ((flags & NBDKIT_FLAG_FUA) && disk_flush (handle, 0) == -1)
    return -1;
  return 0;
}

int
disk_flush (void *handle, uint32_t flags)
{
  struct disk_handle *h = handle;

  if (fdatasync (h->fd) == -1) {
    nbdkit_error ("fdatasync: %m");
    return -1;
  }
  return 0;
}

/* Trim is advisory: a filesystem without hole punching just ignores it. */
int
disk_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct disk_handle *h = handle;

  if (fallocate (h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                 offset, count) == -1 &&
      errno != EOPNOTSUPP) {
    nbdkit_error ("fallocate: punch hole: %m");
    return -1;
  }
  if ((flags & NBDKIT_FLAG_FUA) && disk_flush (handle, 0) == -1)
    return -1;
  return 0;
}

/* Without a fast way to zero, report ENOTSUP so that nbdkit falls back
 * to writing zeroes (or fails a fast zero request, as it must).
 */
int
disk_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct disk_handle *h = handle;
  int r;

  r = fallocate (h->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                 offset, count);
  if (r == -1 && (errno == EOPNOTSUPP || errno == ENOSYS) &&
      (flags & NBDKIT_FLAG_MAY_TRIM))
    r = fallocate (h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                   offset, count);
  if (r == -1) {
    if (errno == EOPNOTSUPP || errno == ENOSYS) {
      nbdkit_set_error (ENOTSUP);
      return -1;
    }
    nbdkit_error ("fallocate: zero range: %m");
    return -1;
  }
  if ((flags & NBDKIT_FLAG_FUA) && disk_flush (handle, 0) == -1)
    return -1;
  return 0;
}
