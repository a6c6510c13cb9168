/* SPDX-License-Identifier: BSD-3-Clause
 * The ddrescue filter: serves an image rescued by GNU ddrescue
 * read-only, failing reads of every area its mapfile does not mark as
 * rescued ("+") with EIO, instead of returning whatever the image holds
 * there (usually zeroes).
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "vector.h"

/* One data line of the mapfile: an area and its status character. */
struct area {
  uint64_t pos;
  uint64_t size;
  char status;
};
DEFINE_VECTOR_TYPE (area_vector, struct area)

/* ddrescue-mapfile=: the file, then its areas sorted by position. */
static char *mapfile;
static area_vector areas = empty_vector;

/* The status characters ddrescue writes; only FINISHED is good data. */
#define FINISHED '+'
#define STATUS_CHARS "?*/-+"

static void
ddrescue_unload (void)
{
  free (mapfile);
  area_vector_reset (&areas);
}

static int
ddrescue_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                 const char *key, const char *value)
{
  if (strcmp (key, "ddrescue-mapfile") == 0) {
    free (mapfile);
    mapfile = realpath (value, NULL);
    if (mapfile == NULL) {
      nbdkit_error ("ddrescue-mapfile=%s: %m", value);
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

#define ddrescue_config_help \
  "ddrescue-mapfile=<FILE> (required) The GNU ddrescue mapfile."

/* A number as ddrescue writes it: hex with 0x, or decimal. */
static bool
parse_number (const char *s, uint64_t *r)
{
  char *end;

  if (*s < '0' || *s > '9')
    return false;
  errno = 0;
  *r = strtoull (s, &end, 0);
  return errno == 0 && *end == '\0' && *r <= INT64_MAX;
}

static bool
valid_status (const char *s)
{
  return s[0] != '\0' && s[1] == '\0' && strchr (STATUS_CHARS, s[0]) != NULL;
}

/* Parse a data line "pos size status" into the list.  The first
 * non-comment line of a mapfile is normally the status line
 * "current_pos current_status [current_pass]", which is only checked.
 */
static int
parse_line (char *line, size_t lineno, bool *seen_status_line)
{
  char *f[4], *tok, *saveptr;
  size_t n = 0;
  uint64_t pos, size;
  bool is_data;

  /* Up to 4 fields: a fourth means the line has too many. */
  for (tok = strtok_r (line, " \t\r\n", &saveptr); tok != NULL && n < 4;
       tok = strtok_r (NULL, " \t\r\n", &saveptr))
    f[n++] = tok;
  if (n == 0 || f[0][0] == '#')
    return 0;
  is_data = n == 3 && parse_number (f[0], &pos) &&
    parse_number (f[1], &size) && valid_status (f[2]);

  /* The status line's second field is a status character, never a
   * number, so a data line is recognised even where the status line
   * should have been.
   */
  if (!*seen_status_line) {
    *seen_status_line = true;
    if (!is_data && (n == 2 || n == 3) && parse_number (f[0], &pos))
      return 0;
  }
  if (is_data) {
    if (size == 0)
      return 0;
    if (pos > INT64_MAX - size)
      goto bad;
    if (area_vector_append (&areas, (struct area) {
          .pos = pos, .size = size, .status = f[2][0] }) == -1) {
      nbdkit_error ("realloc: %m");
      return -1;
    }
    return 0;
  }
 bad:
  nbdkit_error ("ddrescue-mapfile: %s:%zu: not a GNU ddrescue mapfile line",
                mapfile, lineno);
  return -1;
}

static int
compare_pos (const void *a, const void *b)
{
  const struct area *x = a, *y = b;

  return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int
read_mapfile (void)
{
  FILE *fp;
  CLEANUP_FREE char *line = NULL;
  size_t cap = 0, lineno = 0, i;
  bool seen_status_line = false;
  int r = 0;

  fp = fopen (mapfile, "r");
  if (fp == NULL) {
    nbdkit_error ("ddrescue-mapfile: %s: %m", mapfile);
    return -1;
  }
  while (r == 0 && getline (&line, &cap, fp) != -1)
    r = parse_line (line, ++lineno, &seen_status_line);
  fclose (fp);
  if (r == -1)
    return -1;
  if (!seen_status_line) {
    nbdkit_error ("ddrescue-mapfile: %s: empty, not a GNU ddrescue mapfile",
                  mapfile);
    return -1;
  }

  if (areas.len > 1)
    qsort (areas.ptr, areas.len, sizeof areas.ptr[0], compare_pos);
  for (i = 1; i < areas.len; ++i) {
    if (areas.ptr[i - 1].pos + areas.ptr[i - 1].size > areas.ptr[i].pos) {
      nbdkit_error ("ddrescue-mapfile: %s: the areas at 0x%" PRIx64
                    " and 0x%" PRIx64 " overlap",
                    mapfile, areas.ptr[i - 1].pos, areas.ptr[i].pos);
      return -1;
    }
  }
  nbdkit_debug ("ddrescue: %zu areas in the mapfile", areas.len);
  return 0;
}

static int
ddrescue_config_complete (nbdkit_next_config_complete *next,
                          nbdkit_backend *nxdata)
{
  if (mapfile == NULL) {
    nbdkit_error ("ddrescue: the ddrescue-mapfile=FILE parameter is required");
    return -1;
  }
  if (read_mapfile () == -1)
    return -1;
  return next (nxdata);
}

/* Read-only: writes would not change the map. */
static int
ddrescue_can_write (nbdkit_next *next, void *handle)
{
  return 0;
}

/* Prefetching areas that cannot be read is pointless. */
static int
ddrescue_can_cache (nbdkit_next *next, void *handle)
{
  return NBDKIT_CACHE_NONE;
}

/* Whether [offset, offset+count) lies wholly in rescued areas.  Areas
 * the mapfile does not mention were never read by ddrescue.
 */
static bool
is_rescued (uint64_t offset, uint32_t count)
{
  uint64_t pos = offset, end = offset + count;
  size_t lo = 0, hi = areas.len;

  while (lo < hi) {             /* the first area ending after offset */
    size_t mid = lo + (hi - lo) / 2;
    if (areas.ptr[mid].pos + areas.ptr[mid].size <= offset)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (; pos < end; ++lo) {
    if (lo >= areas.len || areas.ptr[lo].pos > pos ||
        areas.ptr[lo].status != FINISHED)
      return false;
    pos = areas.ptr[lo].pos + areas.ptr[lo].size;
  }
  return true;
}

static int
ddrescue_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
                uint64_t offset, uint32_t flags, int *err)
{
  if (!is_rescued (offset, count)) {
    nbdkit_debug ("ddrescue: read of %" PRIu32 " bytes at %" PRIu64
                  " touches an area not rescued", count, offset);
    *err = EIO;
    return -1;
  }
  return next->pread (next, buf, count, offset, flags, err);
}

static struct nbdkit_filter filter = {
  .name              = "ddrescue",
  .longname          = "nbdkit ddrescue mapfile filter",
  .version           = PACKAGE_VERSION,
  .description       = "Fail reads of areas a ddrescue mapfile marks bad",
  .unload            = ddrescue_unload,
  .config            = ddrescue_config,
  .config_complete   = ddrescue_config_complete,
  .config_help       = ddrescue_config_help,
  .can_write         = ddrescue_can_write,
  .can_cache         = ddrescue_can_cache,
  .pread             = ddrescue_pread,
};

NBDKIT_REGISTER_FILTER (filter)
