/* SPDX-License-Identifier: BSD-3-Clause
 * The offset filter: serve the byte range [offset, offset+range) of the
 * layer below as a disk of its own, shifting every request by offset.
 */

#include <config.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "utils.h"

/* Where the served window starts in the layer below (offset=). */
static uint64_t offset = 0;

/* Length of the window (range=); only meaningful if range_set. */
static uint64_t range = 0;
static bool range_set = false;

static int
parse_size_param (const char *key, const char *value, uint64_t *ret)
{
  int64_t r = nbdkit_parse_size (value);

  if (r == -1) {
    nbdkit_error ("%s: could not parse '%s'", key, value);
    return -1;
  }
  *ret = r;
  return 0;
}

static int
offset_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
               const char *key, const char *value)
{
  if (strcmp (key, "offset") == 0)
    return parse_size_param (key, value, &offset);
  if (strcmp (key, "range") == 0) {
    range_set = true;
    return parse_size_param (key, value, &range);
  }
  return next (nxdata, key, value);
}

static int
offset_config_complete (nbdkit_next_config_complete *next,
                        nbdkit_backend *nxdata)
{
  uint64_t end;

  if (range_set &&
      (__builtin_add_overflow (offset, range, &end) || end > INT64_MAX)) {
    nbdkit_error ("offset=%" PRIu64 " + range=%" PRIu64 " is too large",
                  offset, range);
    return -1;
  }
  return next (nxdata);
}

#define offset_config_help \
  "offset=<OFFSET>      Start of the served window (default 0).\n" \
  "range=<LENGTH>       Length of the window (default: to the end)."

/* The size is checked against the layer below on every connection,
 * because the plugin's size may change between connections.
 */
static int64_t
offset_get_size (nbdkit_next *next, void *handle)
{
  int64_t real_size = next->get_size (next);

  if (real_size == -1)
    return -1;
  if (offset > (uint64_t) real_size) {
    nbdkit_error ("offset=%" PRIu64 " is beyond the end of the underlying "
                  "disk (size %" PRIi64 ")", offset, real_size);
    return -1;
  }
  if (range_set) {
    if (offset + range > (uint64_t) real_size) {
      nbdkit_error ("offset=%" PRIu64 " + range=%" PRIu64 " is beyond the "
                    "end of the underlying disk (size %" PRIi64 ")",
                    offset, range, real_size);
      return -1;
    }
    return range;
  }
  return real_size - offset;
}

static int
offset_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
              uint64_t offs, uint32_t flags, int *err)
{
  return next->pread (next, buf, count, offs + offset, flags, err);
}

static int
offset_pwrite (nbdkit_next *next, void *handle, const void *buf,
               uint32_t count, uint64_t offs, uint32_t flags, int *err)
{
  return next->pwrite (next, buf, count, offs + offset, flags, err);
}

static int
offset_trim (nbdkit_next *next, void *handle, uint32_t count, uint64_t offs,
             uint32_t flags, int *err)
{
  return next->trim (next, count, offs + offset, flags, err);
}

static int
offset_zero (nbdkit_next *next, void *handle, uint32_t count, uint64_t offs,
             uint32_t flags, int *err)
{
  return next->zero (next, count, offs + offset, flags, err);
}

/* Ask the layer below about the shifted range, then shift the answer
 * back, clipping it to the end of the window.
 */
static int
offset_extents (nbdkit_next *next, void *handle, uint32_t count,
                uint64_t offs, uint32_t flags,
                struct nbdkit_extents *extents, int *err)
{
  struct nbdkit_extents *inner;
  int64_t size = offset_get_size (next, handle);
  uint64_t window_end;
  size_t i;

  if (size == -1) {
    *err = EIO;
    return -1;
  }
  window_end = offset + size;
  inner = nbdkit_extents_new (offs + offset, window_end);
  if (inner == NULL) {
    *err = errno;
    return -1;
  }
  if (next->extents (next, count, offs + offset, flags, inner, err) == -1) {
    nbdkit_extents_free (inner);
    return -1;
  }
  for (i = 0; i < nbdkit_extents_count (inner); ++i) {
    struct nbdkit_extent e = nbdkit_get_extent (inner, i);
    uint64_t end = MIN (e.offset + e.length, window_end);

    if (e.offset >= end)
      break;
    if (nbdkit_add_extent (extents, e.offset - offset, end - e.offset,
                           e.type) == -1) {
      *err = errno;
      nbdkit_extents_free (inner);
      return -1;
    }
  }
  nbdkit_extents_free (inner);
  return 0;
}

static int
offset_cache (nbdkit_next *next, void *handle, uint32_t count, uint64_t offs,
              uint32_t flags, int *err)
{
  return next->cache (next, count, offs + offset, flags, err);
}

static struct nbdkit_filter filter = {
  .name              = "offset",
  .longname          = "nbdkit offset filter",
  .version           = PACKAGE_VERSION,
  .description       = "Serve a byte range of the underlying disk",
  .config            = offset_config,
  .config_complete   = offset_config_complete,
  .config_help       = offset_config_help,
  .get_size          = offset_get_size,
  .pread             = offset_pread,
  .pwrite            = offset_pwrite,
  .trim              = offset_trim,
  .zero              = offset_zero,
  .extents           = offset_extents,
  .cache             = offset_cache,
};

NBDKIT_REGISTER_FILTER (filter)
