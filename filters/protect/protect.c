/* SPDX-License-Identifier: BSD-3-Clause
 * The protect filter: write-protects byte ranges of the plugin.  Writes
 * and zeroes that would change a protected byte fail with EPERM; ones
 * that leave it as it was succeed.  Reads are never affected.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"
#include "vector.h"

/* An inclusive byte range [first, last]. */
struct range {
  uint64_t first, last;
};
DEFINE_VECTOR_TYPE (range_list, struct range)

/* Every protect= range, complements already taken; after config_complete
 * sorted, non-overlapping and non-adjacent.
 */
static range_list protected = empty_vector;

/* Zero checks read the plugin in pieces of at most this size. */
#define CHECK_CHUNK (1024 * 1024)

static void
protect_unload (void)
{
  range_list_reset (&protected);
}

static int
add_range (uint64_t first, uint64_t last)
{
  if (range_list_append (&protected,
                         (struct range) { first, last }) == -1) {
    nbdkit_error ("realloc: %m");
    return -1;
  }
  return 0;
}

/* One end of a range: decimal, octal (0NN) or hex (0xNN); empty means
 * DEFAULT.
 */
static int
parse_offset (const char *value, const char *str, size_t len,
              uint64_t deflt, uint64_t *ret)
{
  CLEANUP_FREE char *copy = strndup (str, len);
  char *end;

  if (copy == NULL) {
    nbdkit_error ("strndup: %m");
    return -1;
  }
  if (*copy == '\0') {
    *ret = deflt;
    return 0;
  }
  errno = 0;
  *ret = strtoull (copy, &end, 0);
  if (errno != 0 || *end != '\0' || *copy == '-' || *copy == '+' ||
      *copy == ' ') {
    nbdkit_error ("protect=%s: could not parse offset '%s'", value, copy);
    return -1;
  }
  return 0;
}

/* protect=[~]START-END */
static int
parse_protect (const char *value)
{
  const char *s = value, *dash;
  bool complement = false;
  uint64_t first, last;

  if (*s == '~') {
    complement = true;
    s++;
  }
  dash = strchr (s, '-');
  if (dash == NULL) {
    nbdkit_error ("protect=%s: expected a range START-END", value);
    return -1;
  }
  if (parse_offset (value, s, dash - s, 0, &first) == -1 ||
      parse_offset (value, dash + 1, strlen (dash + 1), UINT64_MAX,
                    &last) == -1)
    return -1;
  if (first > last) {
    nbdkit_error ("protect=%s: the range ends before it starts", value);
    return -1;
  }
  if (!complement)
    return add_range (first, last);
  if (first > 0 && add_range (0, first - 1) == -1)
    return -1;
  if (last < UINT64_MAX && add_range (last + 1, UINT64_MAX) == -1)
    return -1;
  return 0;
}

static int
protect_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                const char *key, const char *value)
{
  if (strcmp (key, "protect") == 0)
    return parse_protect (value);
  return next (nxdata, key, value);
}

static int
compare_ranges (const void *a, const void *b)
{
  const struct range *ra = a, *rb = b;

  return ra->first < rb->first ? -1 : ra->first > rb->first;
}

/* Sort the ranges and merge the ones that touch, so that each protected
 * byte belongs to exactly one range.
 */
static int
protect_config_complete (nbdkit_next_config_complete *next,
                         nbdkit_backend *nxdata)
{
  size_t i, j = 0;

  if (protected.len > 0) {
    qsort (protected.ptr, protected.len, sizeof protected.ptr[0],
           compare_ranges);
    for (i = 1; i < protected.len; ++i) {
      struct range *prev = &protected.ptr[j], *r = &protected.ptr[i];

      if (prev->last == UINT64_MAX || r->first <= prev->last + 1)
        prev->last = MAX (prev->last, r->last);
      else
        protected.ptr[++j] = *r;
    }
    protected.len = j + 1;
  }
  for (i = 0; i < protected.len; ++i)
    nbdkit_debug ("protecting 0x%" PRIx64 "-0x%" PRIx64,
                  protected.ptr[i].first, protected.ptr[i].last);
  return next (nxdata);
}

#define protect_config_help \
  "protect=<START>-<END>  Protect the bytes from START to END (inclusive).\n" \
  "protect=~<START>-<END> Protect everything except START to END."

/* Call FN for each part of [offset, offset+count) that is protected,
 * with its offset within the request and its length.
 */
typedef int (*protected_part_fn) (nbdkit_next *next, const char *data,
                                  uint32_t pos, uint32_t len,
                                  uint64_t offset, int *err);

static int
for_each_protected_part (nbdkit_next *next, const char *data,
                         uint32_t count, uint64_t offset,
                         protected_part_fn fn, int *err)
{
  uint64_t last = offset + count - 1;
  size_t i;

  for (i = 0; i < protected.len; ++i) {
    const struct range *r = &protected.ptr[i];
    uint64_t a, b;

    if (r->first > last)
      break;
    if (r->last < offset)
      continue;
    a = MAX (r->first, offset);
    b = MIN (r->last, last);
    if (fn (next, data, a - offset, b - a + 1, a, err) == -1)
      return -1;
  }
  return 0;
}

static int
refuse (uint64_t offset, int *err)
{
  nbdkit_error ("refusing to change protected data at offset %" PRIu64,
                offset);
  *err = EPERM;
  return -1;
}

/* The protected part of a write must hold what the plugin holds. */
static int
check_same (nbdkit_next *next, const char *data, uint32_t pos, uint32_t len,
            uint64_t offset, int *err)
{
  CLEANUP_FREE char *old = malloc (len);

  if (old == NULL) {
    *err = ENOMEM;
    nbdkit_error ("malloc: %m");
    return -1;
  }
  if (next->pread (next, old, len, offset, 0, err) == -1)
    return -1;
  if (memcmp (old, data + pos, len) != 0)
    return refuse (offset, err);
  return 0;
}

/* The protected part of a zero request must already read as zeroes. */
static int
check_zero (nbdkit_next *next, const char *data, uint32_t pos, uint32_t len,
            uint64_t offset, int *err)
{
  CLEANUP_FREE char *old = malloc (MIN (len, (uint32_t) CHECK_CHUNK));

  if (old == NULL) {
    *err = ENOMEM;
    nbdkit_error ("malloc: %m");
    return -1;
  }
  while (len > 0) {
    uint32_t n = MIN (len, (uint32_t) CHECK_CHUNK);

    if (next->pread (next, old, n, offset, 0, err) == -1)
      return -1;
    if (!is_zero (old, n))
      return refuse (offset, err);
    offset += n;
    len -= n;
  }
  return 0;
}

static int
protect_pwrite (nbdkit_next *next, void *handle, const void *buf,
                uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  if (for_each_protected_part (next, buf, count, offset, check_same,
                               err) == -1)
    return -1;
  return next->pwrite (next, buf, count, offset, flags, err);
}

static int
protect_zero (nbdkit_next *next, void *handle, uint32_t count,
              uint64_t offset, uint32_t flags, int *err)
{
  if (for_each_protected_part (next, NULL, count, offset, check_zero,
                               err) == -1)
    return -1;
  return next->zero (next, count, offset, flags, err);
}

/* Trim is advisory, so the protected parts are simply left alone and
 * only the unprotected parts are passed on.
 */
static int
protect_trim (nbdkit_next *next, void *handle, uint32_t count,
              uint64_t offset, uint32_t flags, int *err)
{
  uint64_t pos = offset, end = offset + count;
  size_t i;

  for (i = 0; i < protected.len && pos < end; ++i) {
    const struct range *r = &protected.ptr[i];

    if (r->last < pos)
      continue;
    if (r->first >= end)
      break;
    if (r->first > pos &&
        next->trim (next, r->first - pos, pos, flags, err) == -1)
      return -1;
    pos = r->last == UINT64_MAX ? end : MIN (r->last + 1, end);
  }
  if (pos < end)
    return next->trim (next, end - pos, pos, flags, err);
  return 0;
}

static struct nbdkit_filter filter = {
  .name              = "protect",
  .longname          = "nbdkit protect filter",
  .version           = PACKAGE_VERSION,
  .description       = "Write-protect ranges of the plugin",
  .unload            = protect_unload,
  .config            = protect_config,
  .config_complete   = protect_config_complete,
  .config_help       = protect_config_help,
  .pwrite            = protect_pwrite,
  .zero              = protect_zero,
  .trim              = protect_trim,
};

NBDKIT_REGISTER_FILTER (filter)
