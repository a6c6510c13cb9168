/* SPDX-License-Identifier: BSD-3-Clause
 * Names on the virtual FAT: the 8.3 short name of each host name
 * (unique within its directory, "BASIS~N.EXT" when the name does not fit),
 * the UTF-16 long name stored in VFAT entries, and the checksum tying
 * long-name entries to their short entry.
 */

#include <config.h>

#include <errno.h>
#include <search.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floppy.h"
#include "utils.h"

/* One short name in use, or (in the basis tree) the next "~N" to try
 * for a basis.
 */
struct name_node {
  uint8_t key[11];
  uint32_t next_tail;
};

struct short_name_set {
  void *names;                  /* tsearch tree of used short names */
  void *bases;                  /* tsearch tree of generated bases */
};

static int
compare_nodes (const void *a, const void *b)
{
  return memcmp (((const struct name_node *) a)->key,
                 ((const struct name_node *) b)->key, 11);
}

struct short_name_set *
short_name_set_new (void)
{
  return calloc (1, sizeof (struct short_name_set));
}

void
short_name_set_free (struct short_name_set *set)
{
  if (set) {
    tdestroy (set->names, free);
    tdestroy (set->bases, free);
    free (set);
  }
}

/* Find KEY in *TREE, adding it (with next_tail 1) if absent.  Sets
 * *ADDED.  NULL when out of memory.
 */
static struct name_node *
tree_find_or_add (void **tree, const uint8_t key[11], bool *added)
{
  struct name_node *node = malloc (sizeof *node), **found;

  if (node == NULL)
    return NULL;
  memcpy (node->key, key, 11);
  node->next_tail = 1;
  found = tsearch (node, tree, compare_nodes);
  if (found == NULL) {
    free (node);
    return NULL;
  }
  *added = *found == node;
  if (!*added)
    free (node);
  return *found;
}

/* Characters allowed in a short name besides A-Z and 0-9. */
static bool
is_short_char (int c)
{
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
    (c != '\0' && strchr ("!#$%&'()-@^_`{}~", c) != NULL);
}

/* If NAME already is an upper-case 8.3 name, store it in SHORT_NAME. */
static bool
exact_short_name (const char *name, uint8_t short_name[11])
{
  const char *dot = strchr (name, '.');
  size_t base_len = dot ? (size_t) (dot - name) : strlen (name);
  size_t ext_len = dot ? strlen (dot + 1) : 0;
  size_t i;

  if (base_len < 1 || base_len > 8 || ext_len > 3 || (dot && ext_len == 0))
    return false;
  for (i = 0; i < base_len; ++i)
    if (!is_short_char (name[i]))
      return false;
  for (i = 0; i < ext_len; ++i)
    if (!is_short_char (dot[1 + i]))
      return false;
  memset (short_name, ' ', 11);
  memcpy (short_name, name, base_len);
  if (dot)
    memcpy (short_name + 8, dot + 1, ext_len);
  return true;
}

/* Map [P, END) to at most MAX short-name characters in OUT: letters
 * upper-cased, spaces and dots dropped, anything else (including each
 * non-ASCII character) replaced by '_'.  Returns the length.
 */
static size_t
map_short_chars (const char *p, const char *end, uint8_t *out, size_t max)
{
  size_t n = 0;

  for (; p < end && n < max; ++p) {
    unsigned char c = *p;
    if (c == ' ' || c == '.')
      continue;
    if ((c & 0xc0) == 0x80)     /* UTF-8 continuation byte */
      continue;
    if (c >= 'a' && c <= 'z')
      c -= 'a' - 'A';
    out[n++] = is_short_char (c) ? c : '_';
  }
  return n;
}

/* The basis of a generated name: up to 8 base and 3 extension chars. */
static void
short_name_basis (const char *name, uint8_t basis[11])
{
  const char *start = name + strspn (name, ".");
  const char *end = start + strlen (start);
  const char *dot = strrchr (start, '.');
  size_t n;

  memset (basis, ' ', 11);
  n = map_short_chars (start, dot ? dot : end, basis, 8);
  if (n == 0)
    basis[0] = '_';
  if (dot)
    map_short_chars (dot + 1, end, basis + 8, 3);
}

/* Pass 1 over a directory: if NAME is already an upper-case 8.3 name,
 * claim it.  Returns 1 if claimed, 0 if NAME needs a generated name,
 * -1 on error.
 */
int
claim_exact_short_name (struct short_name_set *set, const char *name,
                        uint8_t short_name[11])
{
  bool added;

  if (!exact_short_name (name, short_name))
    return 0;
  if (tree_find_or_add (&set->names, short_name, &added) == NULL)
    return -1;
  return added ? 1 : 0;
}

/* Pass 2: generate a unique "BASIS~N.EXT" name for NAME. */
int
make_short_name (struct short_name_set *set, const char *name,
                 uint8_t short_name[11])
{
  uint8_t basis[11];
  struct name_node *base_node;
  size_t base_len, tail_len;
  char tail[12];
  bool added;

  short_name_basis (name, basis);
  base_node = tree_find_or_add (&set->bases, basis, &added);
  if (base_node == NULL)
    return -1;
  for (base_len = 8; base_len > 0 && basis[base_len - 1] == ' '; --base_len)
    ;
  while (base_node->next_tail <= 999999) {
    tail_len = snprintf (tail, sizeof tail, "~%u", base_node->next_tail++);
    memcpy (short_name, basis, 11);
    memset (short_name, ' ', 8);
    memcpy (short_name, basis, MIN (base_len, 8 - tail_len));
    memcpy (short_name + MIN (base_len, 8 - tail_len), tail, tail_len);
    if (tree_find_or_add (&set->names, short_name, &added) == NULL)
      return -1;
    if (added)
      return 0;
  }
  errno = ENOSPC;
  return -1;
}

/* Decode one UTF-8 character at *P, advancing it.  -1 if invalid. */
static int32_t
utf8_next (const unsigned char **p)
{
  const unsigned char *s = *p;
  int32_t c, min;
  size_t n, i;

  if (s[0] < 0x80)       { c = s[0];        n = 0; min = 0; }
  else if (s[0] >= 0xc2 && s[0] < 0xe0) { c = s[0] & 0x1f; n = 1; min = 0x80; }
  else if (s[0] >= 0xe0 && s[0] < 0xf0) { c = s[0] & 0x0f; n = 2; min = 0x800; }
  else if (s[0] >= 0xf0 && s[0] < 0xf5) { c = s[0] & 0x07; n = 3; min = 0x10000; }
  else
    return -1;
  for (i = 1; i <= n; ++i) {
    if ((s[i] & 0xc0) != 0x80)
      return -1;
    c = (c << 6) | (s[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
    return -1;
  *p = s + n + 1;
  return c;
}

/* Convert NAME to at most 255 UTF-16 units in OUT (a VFAT long name).
 * Returns 0, or -1 with errno EILSEQ (not UTF-8, or a character VFAT
 * forbids) or ENAMETOOLONG.
 */
int
utf8_to_utf16 (const char *name, uint16_t *out, size_t *len)
{
  const unsigned char *p = (const unsigned char *) name;
  size_t n = 0;

  while (*p) {
    int32_t c = utf8_next (&p);
    if (c < 0x20 || (c < 0x80 && strchr ("\"*/:<>?\\|", c) != NULL)) {
      errno = EILSEQ;
      return -1;
    }
    if (n + (c >= 0x10000 ? 2 : 1) > 255) {
      errno = ENAMETOOLONG;
      return -1;
    }
    if (c >= 0x10000) {
      c -= 0x10000;
      out[n++] = 0xd800 | (c >> 10);
      out[n++] = 0xdc00 | (c & 0x3ff);
    }
    else
      out[n++] = c;
  }
  *len = n;
  return 0;
}

/* The checksum of a short name stored in each of its long-name
 * entries: rotate right by one bit and add the next byte.
 */
uint8_t
short_name_checksum (const uint8_t short_name[11])
{
  uint8_t sum = 0;
  size_t i;

  for (i = 0; i < 11; ++i)
    sum = ((sum & 1) << 7) + (sum >> 1) + short_name[i];
  return sum;
}
