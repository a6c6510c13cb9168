/* SPDX-License-Identifier: BSD-3-Clause
 * An API version 1 plugin (no NBDKIT_API_VERSION): data callbacks take
 * no flags, and errors are reported through errno.
 */

#include <nbdkit-plugin.h>

#include <errno.h>
#include <string.h>

static char disk[65536];

static void *
v1_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS

static int64_t
v1_get_size (void *handle)
{
  return sizeof disk;
}

static int
v1_pread (void *handle, void *buf, uint32_t count, uint64_t offset)
{
  memcpy (buf, disk + offset, count);
  return 0;
}

static int
v1_pwrite (void *handle, const void *buf, uint32_t count, uint64_t offset)
{
  /* Refuse writes to the last 4K to check errno is passed on. */
  if (offset + count > sizeof disk - 4096) {
    errno = ENOSPC;
    return -1;
  }
  memcpy (disk + offset, buf, count);
  return 0;
}

static int
v1_flush (void *handle)
{
  return 0;
}

static int
v1_zero (void *handle, uint32_t count, uint64_t offset, int may_trim)
{
  memset (disk + offset, 0, count);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "hellov1",
  .open = v1_open,
  .get_size = v1_get_size,
  .pread = v1_pread,
  .pwrite = v1_pwrite,
  .flush = v1_flush,
  .zero = v1_zero,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
