/* SPDX-License-Identifier: BSD-3-Clause
 * The truncate filter: change the apparent size of the layer below, by
 * setting it outright or rounding it.  Bytes past the real end read as
 * zero and accept only zeroes when written.
 */

#include <config.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "utils.h"

/* The size to serve (truncate=), or -1 to keep the real size. */
static int64_t truncate_size = -1;

/* Round the size up (round-up=) or down (round-down=) to a multiple of
 * this many bytes; 0 means no rounding.
 */
static uint64_t round_up = 0;
static uint64_t round_down = 0;

static int
parse_multiple (const char *key, const char *value, uint64_t *ret)
{
  int64_t r = nbdkit_parse_size (value);

  if (r == -1) {
    nbdkit_error ("%s: could not parse '%s'", key, value);
    return -1;
  }
  if (r == 0) {
    nbdkit_error ("%s: the multiple must be greater than 0", key);
    return -1;
  }
  if ((r & (r - 1)) != 0) {
    nbdkit_error ("%s: the multiple must be a power of 2, not %" PRIi64,
                  key, r);
    return -1;
  }
  *ret = r;
  return 0;
}

static int
truncate_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                 const char *key, const char *value)
{
  if (strcmp (key, "truncate") == 0) {
    truncate_size = nbdkit_parse_size (value);
    if (truncate_size == -1) {
      nbdkit_error ("truncate: could not parse '%s'", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "round-up") == 0)
    return parse_multiple (key, value, &round_up);
  if (strcmp (key, "round-down") == 0)
    return parse_multiple (key, value, &round_down);
  return next (nxdata, key, value);
}

static int
truncate_config_complete (nbdkit_next_config_complete *next,
                          nbdkit_backend *nxdata)
{
  if (round_up && round_down) {
    nbdkit_error ("round-up and round-down cannot be used together");
    return -1;
  }
  return next (nxdata);
}

#define truncate_config_help \
  "truncate=<SIZE>      Serve a disk of exactly this size.\n" \
  "round-up=<N>         Round the size up to a multiple of N (a power of 2).\n" \
  "round-down=<N>       Round the size down to a multiple of N (a power of 2)."

/* The real size of the layer below, or -1 on error. */
static int64_t
real_size (nbdkit_next *next)
{
  return next->get_size (next);
}

static int64_t
truncate_get_size (nbdkit_next *next, void *handle)
{
  int64_t size = real_size (next);
  uint64_t r;

  if (size == -1)
    return -1;
  if (truncate_size >= 0)
    size = truncate_size;
  if (round_up) {
    r = (size + round_up - 1) / round_up * round_up;
    if ((uint64_t) size > INT64_MAX - (round_up - 1) || r > INT64_MAX) {
      nbdkit_error ("round-up: rounding the size %" PRIi64 " up to a "
                    "multiple of %" PRIu64 " is too large", size, round_up);
      return -1;
    }
    size = r;
  }
  if (round_down)
    size = size / round_down * round_down;
  return size;
}

/* Split [offs, offs+count) at the real end of the underlying disk: the
 * first *inside bytes exist below, the rest is the zero tail.
 */
static int
split_at_end (nbdkit_next *next, uint32_t count, uint64_t offs,
              uint32_t *inside, int *err)
{
  int64_t end = real_size (next);

  if (end == -1) {
    *err = EIO;
    return -1;
  }
  if (offs >= (uint64_t) end)
    *inside = 0;
  else
    *inside = MIN ((uint64_t) count, (uint64_t) end - offs);
  return 0;
}

static int
truncate_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
                uint64_t offs, uint32_t flags, int *err)
{
  uint32_t inside;

  if (split_at_end (next, count, offs, &inside, err) == -1)
    return -1;
  if (inside > 0 &&
      next->pread (next, buf, inside, offs, flags, err) == -1)
    return -1;
  memset ((char *) buf + inside, 0, count - inside);
  return 0;
}

static int
truncate_pwrite (nbdkit_next *next, void *handle, const void *buf,
                 uint32_t count, uint64_t offs, uint32_t flags, int *err)
{
  uint32_t inside;

  if (split_at_end (next, count, offs, &inside, err) == -1)
    return -1;
  /* Refuse before writing anything, so a failed request changes
   * nothing.
   */
  if (!is_zero ((const char *) buf + inside, count - inside)) {
    nbdkit_error ("cannot write non-zero data beyond the end of "
                  "the underlying disk");
    *err = ENOSPC;
    return -1;
  }
  if (inside > 0)
    return next->pwrite (next, buf, inside, offs, flags, err);
  return 0;
}

static int
truncate_trim (nbdkit_next *next, void *handle, uint32_t count,
               uint64_t offs, uint32_t flags, int *err)
{
  uint32_t inside;

  if (split_at_end (next, count, offs, &inside, err) == -1)
    return -1;
  if (inside > 0)
    return next->trim (next, inside, offs, flags, err);
  return 0;
}

static int
truncate_zero (nbdkit_next *next, void *handle, uint32_t count,
               uint64_t offs, uint32_t flags, int *err)
{
  uint32_t inside;

  if (split_at_end (next, count, offs, &inside, err) == -1)
    return -1;
  if (inside > 0)
    return next->zero (next, inside, offs, flags, err);
  return 0;
}

/* The tail past the real end is a hole that reads as zero. */
static int
truncate_extents (nbdkit_next *next, void *handle, uint32_t count,
                  uint64_t offs, uint32_t flags,
                  struct nbdkit_extents *extents, int *err)
{
  struct nbdkit_extents *inner;
  uint32_t inside;
  uint64_t covered = offs;
  size_t i;

  if (split_at_end (next, count, offs, &inside, err) == -1)
    return -1;
  if (inside > 0) {
    inner = nbdkit_extents_new (offs, offs + inside);
    if (inner == NULL) {
      *err = errno;
      return -1;
    }
    if (next->extents (next, inside, offs, flags, inner, err) == -1) {
      nbdkit_extents_free (inner);
      return -1;
    }
    for (i = 0; i < nbdkit_extents_count (inner); ++i) {
      struct nbdkit_extent e = nbdkit_get_extent (inner, i);
      uint64_t end = MIN (e.offset + e.length, offs + inside);

      if (e.offset >= end)
        break;
      if (nbdkit_add_extent (extents, e.offset, end - e.offset,
                             e.type) == -1) {
        *err = errno;
        nbdkit_extents_free (inner);
        return -1;
      }
      covered = end;
    }
    nbdkit_extents_free (inner);
    /* A short answer from below: the client will ask again. */
    if (covered < offs + inside)
      return 0;
  }
  if (inside < count &&
      nbdkit_add_extent (extents, offs + inside, count - inside,
                         NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) == -1) {
    *err = errno;
    return -1;
  }
  return 0;
}

static int
truncate_cache (nbdkit_next *next, void *handle, uint32_t count,
                uint64_t offs, uint32_t flags, int *err)
{
  uint32_t inside;

  if (split_at_end (next, count, offs, &inside, err) == -1)
    return -1;
  if (inside > 0)
    return next->cache (next, inside, offs, flags, err);
  return 0;
}

static struct nbdkit_filter filter = {
  .name              = "truncate",
  .longname          = "nbdkit truncate filter",
  .version           = PACKAGE_VERSION,
  .description       = "Change the size of the underlying disk",
  .config            = truncate_config,
  .config_complete   = truncate_config_complete,
  .config_help       = truncate_config_help,
  .get_size          = truncate_get_size,
  .pread             = truncate_pread,
  .pwrite            = truncate_pwrite,
  .trim              = truncate_trim,
  .zero              = truncate_zero,
  .extents           = truncate_extents,
  .cache             = truncate_cache,
};

NBDKIT_REGISTER_FILTER (filter)
