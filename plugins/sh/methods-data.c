/* SPDX-License-Identifier: BSD-3-Clause
 * The data path of sh and eval: pread data on the script's stdout,
 * pwrite data on its stdin, flags as comma-separated words, extents as
 * "offset length type" lines (nbdkit-sh-plugin(3) "pread" ... "cache").
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "internal.h"
#include "utils.h"

/* Decimal text of a count or offset argument. */
struct number { char s[32]; };

static struct number
number (uint64_t v)
{
  struct number n;

  snprintf (n.s, sizeof n.s, "%" PRIu64, v);
  return n;
}

/* The flags argument: the words of FLAGS that METHOD is told about, in
 * nbdkit 1.32's order (fua, may_trim, fast, req_one).
 */
static struct number
flag_words (uint32_t flags)
{
  struct number n = { "" };

  if (flags & NBDKIT_FLAG_FUA)
    strcat (n.s, ",fua");
  if (flags & NBDKIT_FLAG_MAY_TRIM)
    strcat (n.s, ",may_trim");
  if (flags & NBDKIT_FLAG_FAST_ZERO)
    strcat (n.s, ",fast");
  if (flags & NBDKIT_FLAG_REQ_ONE)
    strcat (n.s, ",req_one");
  if (n.s[0] == ',')
    memmove (n.s, n.s + 1, strlen (n.s));
  return n;
}

/* A data method whose status is its only answer. */
static int
data_status (const char *method, enum script_status r, int missing_errno)
{
  switch (r) {
  case SCRIPT_OK:
    return 0;
  case SCRIPT_MISSING:
    /* The script said it could, then has no method (a script error), or
     * zero asks for emulation.
     */
    nbdkit_set_error (missing_errno);
    if (missing_errno != ENOTSUP)
      script_error (method, "the script has no %s method", method);
    return -1;
  case SCRIPT_FALSE:
    nbdkit_set_error (EIO);
    script_error (method, "unexpected exit status 3 (false)");
    return -1;
  default:
    return -1;
  }
}

int
method_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
              uint32_t flags)
{
  struct script_handle *h = handle;
  struct number c = number (count), o = number (offset);
  const char *argv[] = { NULL, "pread", h->name, c.s, o.s, NULL };
  /* The script's output lands straight in BUF: a buffer that never needs
   * to grow, since at most COUNT bytes are kept.
   */
  byte_buffer out = { .ptr = buf, .len = 0, .cap = count };
  enum script_status r;

  r = method_call (argv, NULL, 0, &out, count);
  if (r == SCRIPT_MISSING) {
    nbdkit_set_error (EIO);
    script_error ("pread", "the pread method is required");
    return -1;
  }
  if (data_status ("pread", r, EIO) == -1)
    return -1;
  assert (out.ptr == buf);
  if (out.len != count) {
    nbdkit_set_error (EIO);
    script_error ("pread", "the script wrote %zu bytes, expected %" PRIu32,
                  out.len, count);
    return -1;
  }
  return 0;
}

int
method_pwrite (void *handle, const void *buf, uint32_t count,
               uint64_t offset, uint32_t flags)
{
  struct script_handle *h = handle;
  struct number c = number (count), o = number (offset);
  struct number f = flag_words (flags & NBDKIT_FLAG_FUA);
  const char *argv[] = { NULL, "pwrite", h->name, c.s, o.s, f.s, NULL };

  return data_status ("pwrite",
                      method_call (argv, buf, count, NULL, SCRIPT_OUTPUT_MAX),
                      EIO);
}

int
method_flush (void *handle, uint32_t flags)
{
  struct script_handle *h = handle;
  const char *argv[] = { NULL, "flush", h->name, NULL };

  return data_status ("flush",
                      method_call (argv, NULL, 0, NULL, SCRIPT_OUTPUT_MAX),
                      EIO);
}

int
method_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct script_handle *h = handle;
  struct number c = number (count), o = number (offset);
  struct number f = flag_words (flags & NBDKIT_FLAG_FUA);
  const char *argv[] = { NULL, "trim", h->name, c.s, o.s, f.s, NULL };

  return data_status ("trim",
                      method_call (argv, NULL, 0, NULL, SCRIPT_OUTPUT_MAX),
                      EIO);
}

/* A script fails zero with ENOTSUP (or has none) to have nbdkit write
 * zeroes instead.
 */
int
method_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct script_handle *h = handle;
  struct number c = number (count), o = number (offset);
  struct number f = flag_words (flags & (NBDKIT_FLAG_FUA |
                                         NBDKIT_FLAG_MAY_TRIM |
                                         NBDKIT_FLAG_FAST_ZERO));
  const char *argv[] = { NULL, "zero", h->name, c.s, o.s, f.s, NULL };

  return data_status ("zero",
                      method_call (argv, NULL, 0, NULL, SCRIPT_OUTPUT_MAX),
                      ENOTSUP);
}

/* The type field: a number, or words "hole" and "zero" joined by
 * commas; absent means allocated data (0).
 */
static int
parse_extent_type (char *text, uint32_t *type)
{
  char *word, *saveptr = NULL, *end;

  *type = 0;
  if (text == NULL)
    return 0;
  if (text[0] >= '0' && text[0] <= '9') {
    unsigned long v;

    errno = 0;
    v = strtoul (text, &end, 0);
    if (errno || *end || v > UINT32_MAX)
      return -1;
    *type = v;
    return 0;
  }
  for (word = strtok_r (text, ",", &saveptr); word;
       word = strtok_r (NULL, ",", &saveptr)) {
    if (strcmp (word, "hole") == 0)
      *type |= NBDKIT_EXTENT_HOLE;
    else if (strcmp (word, "zero") == 0)
      *type |= NBDKIT_EXTENT_ZERO;
    else
      return -1;
  }
  return 0;
}

/* One "offset length [type]" line. */
static int
add_extent_line (char *line, size_t lineno, struct nbdkit_extents *extents)
{
  char *saveptr = NULL, *fields[4];
  const char *error;
  int64_t offset, length;
  uint32_t type;
  size_t n;

  for (n = 0; n < 4; ++n)
    fields[n] = strtok_r (n == 0 ? line : NULL, " \t\r", &saveptr);
  if (fields[0] == NULL)
    return 0;                   /* a blank line */
  if (fields[1] == NULL || fields[3] != NULL) {
    script_error ("extents", "line %zu: expected 'offset length type'",
                  lineno);
    return -1;
  }
  offset = parse_human_size (fields[0], &error);
  length = offset == -1 ? -1 : parse_human_size (fields[1], &error);
  if (offset == -1 || length == -1) {
    script_error ("extents", "line %zu: %s", lineno, error);
    return -1;
  }
  if (parse_extent_type (fields[2], &type) == -1) {
    script_error ("extents", "line %zu: cannot parse the type '%s' (a "
                  "number, or hole and zero joined by commas)",
                  lineno, fields[2]);
    return -1;
  }
  if (nbdkit_add_extent (extents, offset, length, type) == -1) {
    script_error ("extents", "line %zu: the extent was refused", lineno);
    return -1;
  }
  return 1;
}

int
method_extents (void *handle, uint32_t count, uint64_t offset,
                uint32_t flags, struct nbdkit_extents *extents)
{
  struct script_handle *h = handle;
  struct number c = number (count), o = number (offset);
  struct number f = flag_words (flags & NBDKIT_FLAG_REQ_ONE);
  const char *argv[] = { NULL, "extents", h->name, c.s, o.s, f.s, NULL };
  byte_buffer out = empty_vector;
  char *line, *saveptr = NULL;
  size_t lineno = 0, added = 0;
  int r;

  r = data_status ("extents",
                   method_call (argv, NULL, 0, &out, SCRIPT_OUTPUT_MAX), EIO);
  if (r == 0 && byte_buffer_append (&out, '\0') == -1) {
    nbdkit_set_error (ENOMEM);
    script_error ("extents", "%m");
    r = -1;
  }
  for (line = r == 0 ? strtok_r (out.ptr, "\n", &saveptr) : NULL;
       line != NULL; line = strtok_r (NULL, "\n", &saveptr)) {
    int a = add_extent_line (line, ++lineno, extents);
    if (a == -1) {
      nbdkit_set_error (EIO);
      r = -1;
      break;
    }
    added += a;
  }
  if (r == 0 && added == 0) {
    nbdkit_set_error (EIO);
    script_error ("extents", "the script printed no extents");
    r = -1;
  }
  byte_buffer_reset (&out);
  return r;
}

int
method_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct script_handle *h = handle;
  struct number c = number (count), o = number (offset);
  const char *argv[] = { NULL, "cache", h->name, c.s, o.s, NULL };

  return data_status ("cache",
                      method_call (argv, NULL, 0, NULL, SCRIPT_OUTPUT_MAX),
                      EIO);
}
