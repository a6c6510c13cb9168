/* SPDX-License-Identifier: BSD-3-Clause
 * The checkwrite filter: every write-type request becomes a check that
 * the plugin already holds that data.  The plugin is opened read-only
 * and never changed; a mismatch fails with EIO.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"

/* Zero and trim checks read the plugin in pieces of at most this size. */
#define CHECK_CHUNK (1024 * 1024)

static void *
checkwrite_open (nbdkit_next_open *next, nbdkit_context *context,
                 int readonly, const char *exportname, int is_tls)
{
  /* Whatever the client asked for, the plugin is only ever read. */
  if (next (context, 1, exportname) == -1)
    return NULL;
  return NBDKIT_HANDLE_NOT_NEEDED;
}

/* Writes are accepted even over a read-only plugin: they never reach it. */
static int
checkwrite_can_write (nbdkit_next *next, void *handle)
{
  return 1;
}

/* Nothing is ever cached by this layer, so flush and FUA are free. */
static int
checkwrite_can_flush (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
checkwrite_can_fua (nbdkit_next *next, void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

static int
checkwrite_can_trim (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
checkwrite_can_zero (nbdkit_next *next, void *handle)
{
  return NBDKIT_ZERO_NATIVE;
}

/* A check never writes, so it is never slower than a write would be. */
static int
checkwrite_can_fast_zero (nbdkit_next *next, void *handle)
{
  return 1;
}

/* The data never changes, so every connection sees the same thing. */
static int
checkwrite_can_multi_conn (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
mismatch (const char *what, uint64_t offset, int *err)
{
  nbdkit_error ("%s at offset %" PRIu64 " does not match the plugin's data",
                what, offset);
  *err = EIO;
  return -1;
}

static int
checkwrite_pwrite (nbdkit_next *next, void *handle, const void *buf,
                   uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  CLEANUP_FREE char *expected = malloc (count);
  const char *p = buf;
  uint32_t i;

  if (expected == NULL) {
    *err = ENOMEM;
    nbdkit_error ("malloc: %m");
    return -1;
  }
  if (next->pread (next, expected, count, offset, 0, err) == -1)
    return -1;
  if (memcmp (expected, buf, count) == 0)
    return 0;
  for (i = 0; expected[i] == p[i]; ++i)
    ;
  return mismatch ("write", offset + i, err);
}

/* Check that [offset, offset+count) reads as zeroes, by reading it. */
static int
check_range_by_reading (nbdkit_next *next, const char *what,
                        uint64_t count, uint64_t offset, int *err)
{
  CLEANUP_FREE char *buf = malloc (MIN (count, (uint64_t) CHECK_CHUNK));

  if (buf == NULL) {
    *err = ENOMEM;
    nbdkit_error ("malloc: %m");
    return -1;
  }
  while (count > 0) {
    uint32_t n = MIN (count, (uint64_t) CHECK_CHUNK);

    if (next->pread (next, buf, n, offset, 0, err) == -1)
      return -1;
    if (!is_zero (buf, n))
      return mismatch (what, offset, err);
    offset += n;
    count -= n;
  }
  return 0;
}

/* Check that [offset, offset+count) reads as zeroes.  Extents the
 * plugin reports as zero are trusted and not read.
 */
static int
check_zero (nbdkit_next *next, const char *what, uint32_t count,
            uint64_t offset, int *err)
{
  struct nbdkit_extents *extents;
  uint64_t pos = offset, end = offset + count;
  size_t i, n;
  int r = next->can_extents (next);

  if (r == -1) {
    *err = EIO;
    return -1;
  }
  if (r == 0)
    return check_range_by_reading (next, what, count, offset, err);

  extents = nbdkit_extents_new (offset, end);
  if (extents == NULL) {
    *err = errno;
    return -1;
  }
  if (next->extents (next, count, offset, 0, extents, err) == -1) {
    nbdkit_extents_free (extents);
    return -1;
  }
  n = nbdkit_extents_count (extents);
  for (i = 0; i < n && pos < end; ++i) {
    struct nbdkit_extent e = nbdkit_get_extent (extents, i);
    uint64_t e_end = MIN (e.offset + e.length, end);

    if (e_end <= pos)
      continue;
    if (!(e.type & NBDKIT_EXTENT_ZERO) &&
        check_range_by_reading (next, what, e_end - pos, pos, err) == -1) {
      nbdkit_extents_free (extents);
      return -1;
    }
    pos = e_end;
  }
  nbdkit_extents_free (extents);
  /* Whatever the plugin did not describe has to be read. */
  if (pos < end)
    return check_range_by_reading (next, what, end - pos, pos, err);
  return 0;
}

/* A trimmed range must already read as zeroes, as after a copy tool's
 * trim of an unused area: sparseness is ignored, contents are not.
 */
static int
checkwrite_trim (nbdkit_next *next, void *handle, uint32_t count,
                 uint64_t offset, uint32_t flags, int *err)
{
  return check_zero (next, "trim", count, offset, err);
}

static int
checkwrite_zero (nbdkit_next *next, void *handle, uint32_t count,
                 uint64_t offset, uint32_t flags, int *err)
{
  return check_zero (next, "zero", count, offset, err);
}

static int
checkwrite_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  return 0;
}

static struct nbdkit_filter filter = {
  .name              = "checkwrite",
  .longname          = "nbdkit checkwrite filter",
  .version           = PACKAGE_VERSION,
  .description       = "Check that writes match the plugin's existing data",
  .open              = checkwrite_open,
  .can_write         = checkwrite_can_write,
  .can_flush         = checkwrite_can_flush,
  .can_fua           = checkwrite_can_fua,
  .can_trim          = checkwrite_can_trim,
  .can_zero          = checkwrite_can_zero,
  .can_fast_zero     = checkwrite_can_fast_zero,
  .can_multi_conn    = checkwrite_can_multi_conn,
  .pwrite            = checkwrite_pwrite,
  .trim              = checkwrite_trim,
  .zero              = checkwrite_zero,
  .flush             = checkwrite_flush,
};

NBDKIT_REGISTER_FILTER (filter)
