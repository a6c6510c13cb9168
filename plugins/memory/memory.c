/* SPDX-License-Identifier: BSD-3-Clause
 * The memory plugin: a RAM disk of any size up to 2^63-1 bytes, stored
 * by default in a sparse array so that only written pages use memory
 * (allocator=malloc and allocator=zstd are the alternatives, see
 * allocator.h).  The disk is shared by all connections and lost when
 * nbdkit exits.
 */

#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "allocator.h"

/* Virtual size of the disk, or -1 until size= is seen. */
static int64_t size = -1;

/* allocator=..., checked in config and used in get_ready. */
static const char *allocator_spec = "sparse";

/* The disk contents, created in get_ready. */
static struct allocator *disk;

static int
memory_config (const char *key, const char *value)
{
  if (strcmp (key, "size") == 0) {
    size = nbdkit_parse_size (value);
    if (size == -1)
      return -1;
  }
  else if (strcmp (key, "allocator") == 0) {
    if (allocator_check (value) == -1)
      return -1;
    allocator_spec = value;
  }
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

static int
memory_config_complete (void)
{
  if (size == -1) {
    nbdkit_error ("you must specify size=<SIZE> on the command line");
    return -1;
  }
  return 0;
}

#define memory_config_help \
  "[size=]<SIZE>          (required) Size of the RAM disk.\n" \
  "allocator=sparse|malloc[,mlock=true]|zstd\n" \
  "                       How the disk is stored (default sparse)."

static int
memory_get_ready (void)
{
  disk = allocator_create (allocator_spec);
  if (disk == NULL || allocator_set_size (disk, size) == -1)
    return -1;
  return 0;
}

static void
memory_unload (void)
{
  allocator_free (disk);
}

static void *
memory_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
memory_get_size (void *handle)
{
  return size;
}

/* All connections see one array, and every write lands at once. */
static int
memory_can_multi_conn (void *handle)
{
  return 1;
}

static int
memory_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

/* The data is already in memory: caching is a successful no-op. */
static int
memory_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

/* Zeroing only ever frees or clears memory, which is always fast. */
static int
memory_can_fast_zero (void *handle)
{
  return 1;
}

static int
memory_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
              uint32_t flags)
{
  return allocator_read (disk, buf, count, offset);
}

static int
memory_pwrite (void *handle, const void *buf, uint32_t count, uint64_t offset,
               uint32_t flags)
{
  return allocator_write (disk, buf, count, offset);
}

/* Writes are complete when they return, so flush and FUA need nothing. */
static int
memory_flush (void *handle, uint32_t flags)
{
  return 0;
}

static int
memory_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return allocator_zero (disk, count, offset);
}

static int
memory_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return allocator_zero (disk, count, offset);
}

static int
memory_extents (void *handle, uint32_t count, uint64_t offset,
                uint32_t flags, struct nbdkit_extents *extents)
{
  return allocator_extents (disk, count, offset, extents);
}

static int
memory_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "memory",
  .longname           = "nbdkit memory plugin",
  .version            = PACKAGE_VERSION,
  .description        = "A sparse RAM disk of any size",
  .unload             = memory_unload,
  .config             = memory_config,
  .config_complete    = memory_config_complete,
  .config_help        = memory_config_help,
  .magic_config_key   = "size",
  .get_ready          = memory_get_ready,
  .open               = memory_open,
  .get_size           = memory_get_size,
  .can_multi_conn     = memory_can_multi_conn,
  .can_fua            = memory_can_fua,
  .can_cache          = memory_can_cache,
  .can_fast_zero      = memory_can_fast_zero,
  .pread              = memory_pread,
  .pwrite             = memory_pwrite,
  .flush              = memory_flush,
  .trim               = memory_trim,
  .zero               = memory_zero,
  .extents            = memory_extents,
  .cache              = memory_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
