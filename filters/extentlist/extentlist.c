/* SPDX-License-Identifier: BSD-3-Clause
 * The extentlist filter: answers block status from a static list of
 * extents read from a file, for plugins that cannot tell holes from
 * data themselves.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"
#include "vector.h"

/* Anything the list does not cover is a hole reading as zeroes. */
#define GAP_TYPE (NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO)

struct extent {
  uint64_t offset;
  uint64_t length;
  uint32_t type;
};
DEFINE_VECTOR_TYPE (extent_vector, struct extent)

/* extentlist=: the file, then its extents sorted by offset. */
static char *extentlist_file;
static extent_vector extents = empty_vector;

static void
extentlist_unload (void)
{
  free (extentlist_file);
  extent_vector_reset (&extents);
}

static int
extentlist_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                   const char *key, const char *value)
{
  if (strcmp (key, "extentlist") == 0) {
    free (extentlist_file);
    extentlist_file = realpath (value, NULL);
    if (extentlist_file == NULL) {
      nbdkit_error ("extentlist=%s: %m", value);
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

#define extentlist_config_help \
  "extentlist=<FILENAME>  (required) File listing the extents."

/* The type field: a number, or words "hole" and "zero" separated by
 * commas.  Returns -1 if it is neither.
 */
static int64_t
parse_type (const char *s)
{
  CLEANUP_FREE char *copy = NULL;
  char *word, *saveptr;
  uint32_t type = 0, n;

  if (*s >= '0' && *s <= '9') {
    if (nbdkit_parse_uint32_t ("type", s, &n) == -1)
      return -1;
    return n;
  }
  copy = strdup (s);
  if (copy == NULL)
    return -1;
  for (word = strtok_r (copy, ",", &saveptr); word != NULL;
       word = strtok_r (NULL, ",", &saveptr)) {
    if (strcmp (word, "hole") == 0)
      type |= NBDKIT_EXTENT_HOLE;
    else if (strcmp (word, "zero") == 0)
      type |= NBDKIT_EXTENT_ZERO;
    else
      return -1;
  }
  return type;
}

/* Parse one line "offset length [type]" (blank lines and lines starting
 * with # are skipped: returns 0 without adding anything).
 */
static int
parse_line (char *line, size_t lineno)
{
  const char *fields[4] = { NULL };
  char *saveptr, *tok;
  size_t n = 0;
  int64_t offset, length, type = 0;

  for (tok = strtok_r (line, " \t\r\n", &saveptr); tok != NULL && n < 4;
       tok = strtok_r (NULL, " \t\r\n", &saveptr))
    fields[n++] = tok;
  if (n == 0 || fields[0][0] == '#')
    return 0;
  if (n < 2 || n > 3) {
    nbdkit_error ("extentlist: %s:%zu: expected 'offset length [type]'",
                  extentlist_file, lineno);
    return -1;
  }
  offset = nbdkit_parse_size (fields[0]);
  length = nbdkit_parse_size (fields[1]);
  if (offset == -1 || length == -1) {
    nbdkit_error ("extentlist: %s:%zu: cannot parse the offset or length",
                  extentlist_file, lineno);
    return -1;
  }
  if (n == 3 && (type = parse_type (fields[2])) == -1) {
    nbdkit_error ("extentlist: %s:%zu: type '%s' is not a number or "
                  "a list of 'hole' and 'zero'",
                  extentlist_file, lineno, fields[2]);
    return -1;
  }
  if (length == 0)
    return 0;
  if (offset > INT64_MAX - length) {
    nbdkit_error ("extentlist: %s:%zu: offset + length is too large",
                  extentlist_file, lineno);
    return -1;
  }
  if (extent_vector_append (&extents, (struct extent) {
        .offset = offset, .length = length, .type = type }) == -1) {
    nbdkit_error ("realloc: %m");
    return -1;
  }
  return 0;
}

static int
compare_offsets (const void *a, const void *b)
{
  const struct extent *ea = a, *eb = b;

  return ea->offset < eb->offset ? -1 : ea->offset > eb->offset;
}

static int
read_extentlist (void)
{
  FILE *fp;
  CLEANUP_FREE char *line = NULL;
  size_t cap = 0, lineno = 0, i;
  int r = 0;

  fp = fopen (extentlist_file, "r");
  if (fp == NULL) {
    nbdkit_error ("extentlist: %s: %m", extentlist_file);
    return -1;
  }
  while (r == 0 && getline (&line, &cap, fp) != -1)
    r = parse_line (line, ++lineno);
  fclose (fp);
  if (r == -1)
    return -1;

  if (extents.len > 1)
    qsort (extents.ptr, extents.len, sizeof extents.ptr[0], compare_offsets);
  for (i = 1; i < extents.len; ++i) {
    const struct extent *prev = &extents.ptr[i - 1];
    if (prev->offset + prev->length > extents.ptr[i].offset) {
      nbdkit_error ("extentlist: %s: the extents at %" PRIu64 " and %" PRIu64
                    " overlap", extentlist_file, prev->offset,
                    extents.ptr[i].offset);
      return -1;
    }
  }
  nbdkit_debug ("extentlist: %zu extents", extents.len);
  return 0;
}

static int
extentlist_config_complete (nbdkit_next_config_complete *next,
                            nbdkit_backend *nxdata)
{
  if (extentlist_file == NULL) {
    nbdkit_error ("extentlist: the extentlist=FILENAME parameter is required");
    return -1;
  }
  if (read_extentlist () == -1)
    return -1;
  return next (nxdata);
}

/* Block status comes from the list, whatever the plugin supports. */
static int
extentlist_can_extents (nbdkit_next *next, void *handle)
{
  return 1;
}

/* The index of the first extent ending after OFFSET. */
static size_t
first_extent_after (uint64_t offset)
{
  size_t lo = 0, hi = extents.len;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (extents.ptr[mid].offset + extents.ptr[mid].length <= offset)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int
extentlist_extents (nbdkit_next *next, void *handle, uint32_t count,
                    uint64_t offset, uint32_t flags,
                    struct nbdkit_extents *result, int *err)
{
  uint64_t end = offset + count, pos = offset;
  size_t i;

  for (i = first_extent_after (offset); i < extents.len && pos < end; ++i) {
    const struct extent *e = &extents.ptr[i];

    if (e->offset >= end)
      break;                    /* the gap after pos is added below */
    if (e->offset > pos) {
      if (nbdkit_add_extent (result, pos, e->offset - pos, GAP_TYPE) == -1)
        goto error;
      pos = e->offset;
    }
    /* Not past the request: it may end before the disk does. */
    pos = MIN (e->offset + e->length, end);
    if (nbdkit_add_extent (result, e->offset, pos - e->offset, e->type) == -1)
      goto error;
  }
  if (pos < end &&
      nbdkit_add_extent (result, pos, end - pos, GAP_TYPE) == -1)
    goto error;
  return 0;

 error:
  *err = errno;
  return -1;
}

static struct nbdkit_filter filter = {
  .name              = "extentlist",
  .longname          = "nbdkit extentlist filter",
  .version           = PACKAGE_VERSION,
  .description       = "Serve block status from a list of extents",
  .unload            = extentlist_unload,
  .config            = extentlist_config,
  .config_complete   = extentlist_config_complete,
  .config_help       = extentlist_config_help,
  .can_extents       = extentlist_can_extents,
  .extents           = extentlist_extents,
};

NBDKIT_REGISTER_FILTER (filter)
