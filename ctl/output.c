/* SPDX-License-Identifier: BSD-3-Clause
 * Output: aligned tables and "Label: value" blocks for people, and JSON
 * converted straight from D-Bus values, so --json shows exactly what the
 * daemon sent (variants unwrapped, structs as arrays, dicts as objects).
 */

#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nbdkitctl.h"
#include "cleanup.h"

struct table {
  size_t ncols;
  string_vector cells;          /* row-major, header row first */
};

static int
table_add_cells (struct table *t, const char *first, va_list ap)
{
  const char *cell = first;
  size_t i;
  char *s;

  for (i = 0; i < t->ncols; ++i, cell = va_arg (ap, const char *)) {
    if ((s = strdup (cell ? cell : "")) == NULL
        || string_vector_append (&t->cells, s) == -1) {
      free (s);
      return -ENOMEM;
    }
  }
  return 0;
}

/* table_new ("NAME", "STATE", NULL): the column headers. */
struct table *
table_new (const char *first_header, ...)
{
  struct table *t = calloc (1, sizeof *t);
  const char *h;
  va_list ap;

  if (t == NULL)
    return NULL;
  va_start (ap, first_header);
  for (h = first_header; h; h = va_arg (ap, const char *))
    t->ncols++;
  va_end (ap);
  va_start (ap, first_header);
  if (table_add_cells (t, first_header, ap) < 0) {
    table_free (t);
    t = NULL;
  }
  va_end (ap);
  return t;
}

/* Exactly as many cells as the table has columns; NULL is empty. */
int
table_add_row (struct table *t, const char *first_cell, ...)
{
  va_list ap;
  int r;

  va_start (ap, first_cell);
  r = table_add_cells (t, first_cell, ap);
  va_end (ap);
  return r;
}

/* Columns padded to their widest cell, two spaces apart; the header row
 * is left out with -q.  No colours: the output is often a pipe.
 */
void
table_print (struct table *t, FILE *fp)
{
  CLEANUP_FREE size_t *width = calloc (t->ncols, sizeof *width);
  size_t i, col, first = config.quiet ? t->ncols : 0;

  if (width == NULL)
    return;
  for (i = first; i < t->cells.len; ++i) {
    size_t len = strlen (t->cells.ptr[i]);
    col = i % t->ncols;
    if (len > width[col])
      width[col] = len;
  }
  for (i = first; i < t->cells.len; ++i) {
    col = i % t->ncols;
    if (col == t->ncols - 1)
      fprintf (fp, "%s\n", t->cells.ptr[i]);
    else
      fprintf (fp, "%-*s  ", (int) width[col], t->cells.ptr[i]);
  }
}

void
table_free (struct table *t)
{
  if (t) {
    string_vector_free_all (&t->cells);
    free (t);
  }
}

static int json_read_value (sd_bus_message *m, struct json_object **ret);

static int
json_read_basic (sd_bus_message *m, char type, struct json_object **ret)
{
  union {
    uint8_t y; int b; int16_t n; uint16_t q; int32_t i; uint32_t u;
    int64_t x; uint64_t t; double d; const char *s; int h;
  } v;
  int r;

  if ((r = sd_bus_message_read_basic (m, type, &v)) <= 0)
    return r < 0 ? r : -EBADMSG;
  switch (type) {
  case 'y': *ret = json_object_new_int64 (v.y); break;
  case 'b': *ret = json_object_new_boolean (v.b); break;
  case 'n': *ret = json_object_new_int64 (v.n); break;
  case 'q': *ret = json_object_new_int64 (v.q); break;
  case 'i': *ret = json_object_new_int64 (v.i); break;
  case 'u': *ret = json_object_new_int64 (v.u); break;
  case 'x': *ret = json_object_new_int64 (v.x); break;
  case 't': *ret = json_object_new_uint64 (v.t); break;
  case 'd': *ret = json_object_new_double (v.d); break;
  case 'h': *ret = json_object_new_int64 (v.h); break;
  default: *ret = json_object_new_string (v.s); break; /* s, o, g */
  }
  return *ret ? 0 : -ENOMEM;
}

/* a{..}: a JSON object keyed by the (stringified) dictionary keys. */
static int
json_read_dict (sd_bus_message *m, const char *contents,
                struct json_object **ret)
{
  struct json_object *obj = json_object_new_object (), *key, *val;
  size_t len = strlen (contents);
  char entry[64];
  int r;

  /* CONTENTS is "{KV}"; entering an entry needs "KV". */
  if (len < 4 || len - 2 >= sizeof entry)
    return -EBADMSG;
  memcpy (entry, contents + 1, len - 2);
  entry[len - 2] = '\0';
  if (obj == NULL)
    return -ENOMEM;
  while ((r = sd_bus_message_enter_container (m, 'e', entry)) > 0) {
    if ((r = json_read_value (m, &key)) < 0)
      goto fail;
    if ((r = json_read_value (m, &val)) < 0) {
      json_object_put (key);
      goto fail;
    }
    json_object_object_add (obj, json_object_get_string (key), val);
    json_object_put (key);
    if ((r = sd_bus_message_exit_container (m)) < 0)
      goto fail;
  }
  if (r < 0)
    goto fail;
  *ret = obj;
  return 0;
 fail:
  json_object_put (obj);
  return r;
}

/* Arrays and structs: a JSON array of the members. */
static int
json_read_list (sd_bus_message *m, struct json_object **ret)
{
  struct json_object *arr = json_object_new_array (), *val;
  int r;

  if (arr == NULL)
    return -ENOMEM;
  while ((r = sd_bus_message_at_end (m, false)) == 0) {
    if ((r = json_read_value (m, &val)) < 0) {
      json_object_put (arr);
      return r;
    }
    json_object_array_add (arr, val);
  }
  if (r < 0) {
    json_object_put (arr);
    return r;
  }
  *ret = arr;
  return 0;
}

/* Read the next complete value of M. */
static int
json_read_value (sd_bus_message *m, struct json_object **ret)
{
  const char *contents;
  char type;
  int r;

  if ((r = sd_bus_message_peek_type (m, &type, &contents)) <= 0)
    return r < 0 ? r : -EBADMSG;
  if (type != 'a' && type != 'v' && type != 'r' && type != 'e')
    return json_read_basic (m, type, ret);
  if ((r = sd_bus_message_enter_container (m, type, contents)) < 0)
    return r;
  if (type == 'a' && contents[0] == '{')
    r = json_read_dict (m, contents, ret);
  else if (type == 'v')
    r = json_read_value (m, ret);
  else
    r = json_read_list (m, ret);
  if (r < 0)
    return r;
  if ((r = sd_bus_message_exit_container (m)) < 0) {
    json_object_put (*ret);
    return r;
  }
  return 0;
}

/* The next value of M as JSON; -ENODATA at the end of M. */
int
json_from_message (sd_bus_message *m, struct json_object **ret)
{
  int r = sd_bus_message_at_end (m, false);

  if (r < 0)
    return r;
  if (r > 0)
    return -ENODATA;
  return json_read_value (m, ret);
}

void
json_print (struct json_object *obj)
{
  int flags = JSON_C_TO_STRING_NOSLASHESCAPE;

  flags |= config.json == JSON_PRETTY
    ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
    : JSON_C_TO_STRING_PLAIN;
  puts (json_object_to_json_string_ext (obj, flags));
  fflush (stdout);
}

/* Microseconds since the epoch as local time, e.g. 2026-12-01 10:00:00. */
char *
format_timestamp_usec (uint64_t usec)
{
  time_t t = usec / 1000000;
  struct tm tm;
  char buf[64];

  if (usec == 0 || localtime_r (&t, &tm) == NULL
      || strftime (buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm) == 0)
    return strdup ("-");
  return strdup (buf);
}

/* One value of a "Label: value" block; arrays take one line each. */
static void
print_property_value (int indent, struct json_object *v)
{
  size_t i, n;

  if (!json_object_is_type (v, json_type_array)) {
    const char *s = json_object_get_string (v);

    if (json_object_is_type (v, json_type_boolean))
      puts (json_object_get_boolean (v) ? "yes" : "no");
    else
      puts (s && *s ? s : "-");
    return;
  }
  n = json_object_array_length (v);
  if (n == 0)
    puts ("-");
  for (i = 0; i < n; ++i) {
    struct json_object *e = json_object_array_get_idx (v, i);

    if (i > 0)
      printf ("%*s", indent, "");
    /* a(ss) parameters print as key=value. */
    if (json_object_is_type (e, json_type_array)
        && json_object_array_length (e) == 2)
      printf ("%s=%s\n",
              json_object_get_string (json_object_array_get_idx (e, 0)),
              json_object_get_string (json_object_array_get_idx (e, 1)));
    else
      puts (json_object_get_string (e));
  }
}

/* LABELS is {property, label, ..., NULL}: print those present in PROPS
 * with right-aligned labels.
 */
int
print_properties (struct json_object *props, const char *const *labels)
{
  size_t i, width = 0;

  for (i = 0; labels[i]; i += 2)
    if (strlen (labels[i + 1]) > width)
      width = strlen (labels[i + 1]);
  for (i = 0; labels[i]; i += 2) {
    struct json_object *v;

    if (!json_object_object_get_ex (props, labels[i], &v))
      continue;
    printf ("%*s: ", (int) width, labels[i + 1]);
    print_property_value ((int) width + 2, v);
  }
  return 0;
}
