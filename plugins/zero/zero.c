/* SPDX-License-Identifier: BSD-3-Clause
 * The zero plugin: an empty disk of length zero, for testing how
 * clients and the protocol cope with the corner case.
 */

#include <config.h>

#include <errno.h>
#include <stdint.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

static void *
zero_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
zero_get_size (void *handle)
{
  return 0;
}

/* There is no data, so every connection trivially sees the same. */
static int
zero_can_multi_conn (void *handle)
{
  return 1;
}

static int
zero_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

/* With a size of zero the server never lets a request through, but a
 * plugin must have pread.
 */
static int
zero_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
            uint32_t flags)
{
  nbdkit_set_error (EIO);
  return -1;
}

static int
zero_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "zero",
  .longname           = "nbdkit zero length plugin",
  .version            = PACKAGE_VERSION,
  .description        = "A disk of length zero",
  .open               = zero_open,
  .get_size           = zero_get_size,
  .can_multi_conn     = zero_can_multi_conn,
  .can_cache          = zero_can_cache,
  .pread              = zero_pread,
  .cache              = zero_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
