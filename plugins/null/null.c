/* SPDX-License-Identifier: BSD-3-Clause
 * The null plugin: a bit bucket.  Reads return zeroes, writes are
 * accepted and discarded, and the whole disk is reported as a hole.
 */

#include <config.h>

#include <stdint.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

/* Virtual size of the disk; empty unless size= is given. */
static int64_t size = 0;

static int
null_config (const char *key, const char *value)
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

#define null_config_help \
  "[size=]<SIZE>          Size of the disk (default 0)."

static void *
null_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
null_get_size (void *handle)
{
  return size;
}

static int
null_can_multi_conn (void *handle)
{
  return 1;
}

/* Nothing is stored, so everything is already "on disk". */
static int
null_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

static int
null_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

static int
null_can_fast_zero (void *handle)
{
  return 1;
}

static int
null_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
            uint32_t flags)
{
  memset (buf, 0, count);
  return 0;
}

static int
null_pwrite (void *handle, const void *buf, uint32_t count, uint64_t offset,
             uint32_t flags)
{
  return 0;
}

static int
null_flush (void *handle, uint32_t flags)
{
  return 0;
}

static int
null_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return 0;
}

static int
null_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return 0;
}

static int
null_extents (void *handle, uint32_t count, uint64_t offset,
              uint32_t flags, struct nbdkit_extents *extents)
{
  return nbdkit_add_extent (extents, offset, count,
                            NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO);
}

static int
null_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "null",
  .longname           = "nbdkit null plugin",
  .version            = PACKAGE_VERSION,
  .description        = "Discards writes and reads back zeroes",
  .config             = null_config,
  .config_help        = null_config_help,
  .magic_config_key   = "size",
  .open               = null_open,
  .get_size           = null_get_size,
  .can_multi_conn     = null_can_multi_conn,
  .can_fua            = null_can_fua,
  .can_cache          = null_can_cache,
  .can_fast_zero      = null_can_fast_zero,
  .pread              = null_pread,
  .pwrite             = null_pwrite,
  .flush              = null_flush,
  .trim               = null_trim,
  .zero               = null_zero,
  .extents            = null_extents,
  .cache              = null_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
