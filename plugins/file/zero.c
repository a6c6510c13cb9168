/* SPDX-License-Identifier: BSD-3-Clause
 * Zeroing and trimming for the file plugin: which fallocate modes (or
 * BLKZEROOUT) to try for regular files and block devices, which of them
 * count as fast, and remembering the ones the kernel does not support.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>

#ifdef __linux__
#include <linux/fs.h>
#endif

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "file.h"

static bool
is_unsupported (int err)
{
  return err == EOPNOTSUPP || err == ENOSYS || err == ENOTTY;
}

/* fallocate with MODE, remembering in *SUPPORTED if the kernel refuses
 * the mode for this file.  Returns 0, or -1 with errno set (EOPNOTSUPP
 * for every flavour of "not supported").
 */
static int
try_fallocate (struct handle *h, _Atomic bool *supported, int mode,
               uint64_t offset, uint32_t count)
{
  int r;

  if (!*supported) {
    errno = EOPNOTSUPP;
    return -1;
  }
  do
    r = fallocate (h->fd, mode, offset, count);
  while (r == -1 && errno == EINTR);
  if (r == -1 && is_unsupported (errno)) {
    nbdkit_debug ("fallocate mode %#x: %s: %m: not trying again",
                  (unsigned) mode, h->name);
    *supported = false;
    errno = EOPNOTSUPP;
  }
  return r;
}

int
file_punch_hole (struct handle *h, uint32_t count, uint64_t offset)
{
  if (try_fallocate (h, &h->can_punch_hole,
                     FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     offset, count) == 0)
    return 0;
  /* EINVAL: a block device refusing an unaligned range. */
  if (errno == EOPNOTSUPP || errno == EINVAL)
    return 0;
  return -1;
}

/* Regular files: ZERO_RANGE and punching holes only change metadata, so
 * both are fast.
 */
static int
zero_regular_file (struct handle *h, uint32_t count, uint64_t offset,
                   uint32_t flags)
{
  const int punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

  if ((flags & NBDKIT_FLAG_MAY_TRIM) &&
      try_fallocate (h, &h->can_punch_hole, punch, offset, count) == 0)
    return 0;
  if (try_fallocate (h, &h->can_zero_range,
                     FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                     offset, count) == 0)
    return 0;
  if (errno != EOPNOTSUPP)
    return -1;

  /* No ZERO_RANGE (tmpfs, for instance): a punched hole reads as zero,
   * and allocating it again keeps later writes from running out of space.
   */
  if (try_fallocate (h, &h->can_punch_hole, punch, offset, count) == -1)
    return -1;
  if (!(flags & NBDKIT_FLAG_MAY_TRIM) &&
      try_fallocate (h, &h->can_fallocate, 0, offset, count) == -1 &&
      errno != EOPNOTSUPP)
    return -1;
  return 0;
}

/* Block devices: punching a hole is fast or refused outright, while
 * ZERO_RANGE and BLKZEROOUT may quietly fall back to writing zeroes, so
 * they are not used for fast zero requests.
 */
static int
zero_block_device (struct handle *h, uint32_t count, uint64_t offset,
                   uint32_t flags)
{
  if ((flags & NBDKIT_FLAG_MAY_TRIM) &&
      try_fallocate (h, &h->can_punch_hole,
                     FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     offset, count) == 0)
    return 0;
  if (flags & NBDKIT_FLAG_FAST_ZERO) {
    errno = EOPNOTSUPP;
    return -1;
  }
  if (try_fallocate (h, &h->can_zero_range,
                     FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
                     offset, count) == 0)
    return 0;
#ifdef BLKZEROOUT
  if (errno == EOPNOTSUPP) {
    uint64_t range[2] = { offset, count };

    if (ioctl (h->fd, BLKZEROOUT, range) == 0)
      return 0;
  }
#endif
  return -1;
}

int
file_zero_range (struct handle *h, uint32_t count, uint64_t offset,
                 uint32_t flags)
{
  int r;

  if (h->is_block_device)
    r = zero_block_device (h, count, offset, flags);
  else
    r = zero_regular_file (h, count, offset, flags);

  /* Unsupported, or a range the device will not take (EINVAL for an
   * unaligned request): the server falls back to writing zeroes.
   */
  if (r == -1 && (is_unsupported (errno) || errno == EINVAL))
    errno = EOPNOTSUPP;
  return r;
}
