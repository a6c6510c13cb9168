/* SPDX-License-Identifier: BSD-3-Clause
 * The full plugin: a disk with no space left.  Reads return zeroes and
 * every write, zero or trim fails with ENOSPC, like a thin-provisioned
 * volume whose pool has run out.
 */

#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

/* Virtual size of the disk, or -1 until size= is seen. */
static int64_t size = -1;

static int
full_config (const char *key, const char *value)
{
  if (strcmp (key, "size") == 0) {
    size = nbdkit_parse_size (value);
    if (size == -1)
      return -1;
  }
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

static int
full_config_complete (void)
{
  if (size == -1) {
    nbdkit_error ("you must specify size=<SIZE> on the command line");
    return -1;
  }
  return 0;
}

#define full_config_help \
  "[size=]<SIZE>          (required) Size of the disk."

static void *
full_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
full_get_size (void *handle)
{
  return size;
}

static int
full_can_multi_conn (void *handle)
{
  return 1;
}

static int
full_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

/* A zero request fails at once, which is as fast as it gets. */
static int
full_can_fast_zero (void *handle)
{
  return 1;
}

static int
full_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
            uint32_t flags)
{
  memset (buf, 0, count);
  return 0;
}

static int
full_pwrite (void *handle, const void *buf, uint32_t count, uint64_t offset,
             uint32_t flags)
{
  errno = ENOSPC;
  return -1;
}

static int
full_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  errno = ENOSPC;
  return -1;
}

static int
full_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  errno = ENOSPC;
  return -1;
}

static int
full_extents (void *handle, uint32_t count, uint64_t offset,
              uint32_t flags, struct nbdkit_extents *extents)
{
  return nbdkit_add_extent (extents, offset, count,
                            NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO);
}

static int
full_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "full",
  .longname           = "nbdkit full plugin",
  .version            = PACKAGE_VERSION,
  .description        = "A disk that is always full (writes fail with ENOSPC)",
  .config             = full_config,
  .config_complete    = full_config_complete,
  .config_help        = full_config_help,
  .magic_config_key   = "size",
  .open               = full_open,
  .get_size           = full_get_size,
  .can_multi_conn     = full_can_multi_conn,
  .can_cache          = full_can_cache,
  .can_fast_zero      = full_can_fast_zero,
  .pread              = full_pread,
  .pwrite             = full_pwrite,
  .trim               = full_trim,
  .zero               = full_zero,
  .extents            = full_extents,
  .cache              = full_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
