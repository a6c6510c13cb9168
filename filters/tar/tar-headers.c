/* SPDX-License-Identifier: BSD-3-Clause
 * Walk the 512-byte headers of a tar archive to find one member.  The
 * layouts handled are POSIX.1-1988 ustar (with its name prefix), the
 * GNU format (long names in 'L' records, base-256 sizes) and POSIX.1-2001
 * pax (path= and size= in 'x' extended headers).  Member data is skipped
 * without being read.
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
#include "tar-headers.h"
#include "utils.h"

#define BLOCK 512

/* Fields of a header block: offset and length. */
#define NAME_OFF 0
#define NAME_LEN 100
#define SIZE_OFF 124
#define SIZE_LEN 12
#define CHKSUM_OFF 148
#define CHKSUM_LEN 8
#define TYPEFLAG_OFF 156
#define MAGIC_OFF 257
#define PREFIX_OFF 345
#define PREFIX_LEN 155

/* GNU long names and pax headers larger than this are refused. */
#define MAX_METADATA (1024 * 1024)

/* What the headers read so far say about the member that follows. */
struct scan {
  nbdkit_next *next;
  uint64_t archive_size;
  char *long_name;              /* from an 'L' or pax path= record */
  bool has_pax_size;
  uint64_t pax_size;            /* from a pax size= record */
  bool pax_sparse;              /* GNU.sparse.* pax records */
  char *near_miss;              /* a member named like the one wanted */
};

static void
scan_reset (struct scan *s)
{
  free (s->long_name);
  s->long_name = NULL;
  s->has_pax_size = s->pax_sparse = false;
}

/* A numeric field: octal digits padded with spaces or NULs, or (a GNU
 * extension for large values) base-256 when the top bit of the first
 * byte is set.
 */
static int
parse_number (const unsigned char *field, size_t len, uint64_t *r)
{
  uint64_t v = 0;
  size_t i = 0;

  if (field[0] & 0x80) {
    if (field[0] != 0x80)       /* negative, or too large */
      return -1;
    for (i = 1; i < len; ++i) {
      if (v > (INT64_MAX >> 8))
        return -1;
      v = (v << 8) | field[i];
    }
    *r = v;
    return 0;
  }
  while (i < len && field[i] == ' ')
    i++;
  for (; i < len && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (v > (INT64_MAX >> 3))
      return -1;
    v = (v << 3) | (field[i] - '0');
  }
  /* Only a terminator may follow the digits. */
  if (i < len && field[i] != ' ' && field[i] != '\0')
    return -1;
  *r = v;
  return 0;
}

/* The checksum is the sum of the header's bytes with the checksum field
 * read as spaces.  Old tars summed signed chars, so accept either.
 */
static bool
checksum_ok (const unsigned char *h)
{
  uint64_t want;
  int64_t sum_unsigned = 0, sum_signed = 0;
  size_t i;

  if (parse_number (&h[CHKSUM_OFF], CHKSUM_LEN, &want) == -1)
    return false;
  for (i = 0; i < BLOCK; ++i) {
    unsigned char c = (i >= CHKSUM_OFF && i < CHKSUM_OFF + CHKSUM_LEN)
      ? ' ' : h[i];
    sum_unsigned += c;
    sum_signed += (signed char) c;
  }
  return (int64_t) want == sum_unsigned || (int64_t) want == sum_signed;
}

static int
read_block (struct scan *s, void *buf, uint32_t count, uint64_t offset)
{
  int err;

  if (s->next->pread (s->next, buf, count, offset, 0, &err) == -1) {
    errno = err;
    nbdkit_error ("reading the tar file at offset %" PRIu64 ": %m", offset);
    return -1;
  }
  return 0;
}

/* The data of a long-name or pax record, NUL-terminated. */
static char *
read_metadata (struct scan *s, uint64_t offset, uint64_t size)
{
  char *data;

  if (size > MAX_METADATA) {
    nbdkit_error ("the tar header at offset %" PRIu64 " has %" PRIu64
                  " bytes of extended data, more than this filter accepts",
                  offset - BLOCK, size);
    return NULL;
  }
  data = malloc (size + 1);
  if (data == NULL) {
    nbdkit_error ("malloc: %m");
    return NULL;
  }
  if (size > 0 && read_block (s, data, size, offset) == -1) {
    free (data);
    return NULL;
  }
  data[size] = '\0';
  return data;
}

/* One "LENGTH key=value\n" record of a pax extended header, where
 * LENGTH counts the whole record.
 */
struct pax_record {
  const char *key, *value;
  size_t key_len, value_len;
};

/* Split the record at *P (before END) and move *P past it. */
static int
next_pax_record (const char **p, const char *end, struct pax_record *rec)
{
  const char *q, *eq, *rec_end;
  size_t n = 0;

  for (q = *p; q < end && *q >= '0' && *q <= '9'; ++q) {
    n = n * 10 + (*q - '0');
    if (n > (size_t) (end - *p))
      return -1;
  }
  if (q == *p || q >= end || *q != ' ' || n == 0)
    return -1;
  rec_end = *p + n;
  if (rec_end <= q + 1 || rec_end[-1] != '\n')
    return -1;
  eq = memchr (q + 1, '=', rec_end - 1 - (q + 1));
  if (eq == NULL)
    return -1;
  rec->key = q + 1;
  rec->key_len = eq - rec->key;
  rec->value = eq + 1;
  rec->value_len = rec_end - 1 - rec->value;
  *p = rec_end;
  return 0;
}

static bool
key_is (const struct pax_record *rec, const char *key)
{
  return rec->key_len == strlen (key) &&
    memcmp (rec->key, key, rec->key_len) == 0;
}

/* A pax size: decimal digits only. */
static int
parse_decimal (const char *str, size_t len, uint64_t *r)
{
  uint64_t v = 0;
  size_t i;

  if (len == 0)
    return -1;
  for (i = 0; i < len; ++i) {
    if (str[i] < '0' || str[i] > '9' || v > (INT64_MAX - 9) / 10)
      return -1;
    v = v * 10 + (str[i] - '0');
  }
  *r = v;
  return 0;
}

/* Keep what the records of a pax extended header say about the next
 * member: its path, its size, and whether it is sparse.
 */
static int
parse_pax (struct scan *s, const char *data, size_t len, uint64_t where)
{
  const char *p = data, *end = data + len;
  struct pax_record rec;

  while (p < end) {
    if (next_pax_record (&p, end, &rec) == -1)
      goto corrupt;
    /* GNU tar stores a sparse member under a made-up path and keeps the
     * real one in GNU.sparse.name.
     */
    if (key_is (&rec, "path") || key_is (&rec, "GNU.sparse.name")) {
      free (s->long_name);
      s->long_name = strndup (rec.value, rec.value_len);
      if (s->long_name == NULL) {
        nbdkit_error ("strndup: %m");
        return -1;
      }
    }
    else if (key_is (&rec, "size")) {
      if (parse_decimal (rec.value, rec.value_len, &s->pax_size) == -1)
        goto corrupt;
      s->has_pax_size = true;
    }
    if (rec.key_len > 11 && memcmp (rec.key, "GNU.sparse.", 11) == 0)
      s->pax_sparse = true;
  }
  return 0;

 corrupt:
  nbdkit_error ("the pax extended header at offset %" PRIu64 " is corrupt",
                where);
  return -1;
}

/* The member name of a header that has no long name before it. */
static char *
header_name (const unsigned char *h)
{
  const char *name = (const char *) &h[NAME_OFF];
  const char *prefix = (const char *) &h[PREFIX_OFF];
  size_t name_len = strnlen (name, NAME_LEN);
  size_t prefix_len = 0;
  char *r;

  /* Only POSIX ustar ("ustar\0") has a prefix field; the GNU format
   * ("ustar  \0") keeps other data there.
   */
  if (memcmp (&h[MAGIC_OFF], "ustar\0", 6) == 0)
    prefix_len = strnlen (prefix, PREFIX_LEN);
  r = malloc (prefix_len + 1 + name_len + 1);
  if (r == NULL) {
    nbdkit_error ("malloc: %m");
    return NULL;
  }
  if (prefix_len > 0) {
    memcpy (r, prefix, prefix_len);
    r[prefix_len] = '/';
    memcpy (r + prefix_len + 1, name, name_len);
    r[prefix_len + 1 + name_len] = '\0';
  }
  else {
    memcpy (r, name, name_len);
    r[name_len] = '\0';
  }
  return r;
}

/* NAME without a leading "./" and trailing slashes, in a new string. */
static char *
normalize_name (const char *name)
{
  size_t len;

  while (name[0] == '.' && name[1] == '/')
    name += 2;
  len = strlen (name);
  while (len > 1 && name[len - 1] == '/')
    len--;
  return strndup (name, len);
}

/* Remember the first member whose name differs from the wanted one only
 * by "./" or a trailing slash, to suggest it if nothing matches.
 */
static void
note_near_miss (struct scan *s, const char *this_name, const char *name)
{
  CLEANUP_FREE char *a = NULL, *b = NULL;

  if (s->near_miss)
    return;
  a = normalize_name (this_name);
  b = normalize_name (name);
  if (a && b && strcmp (a, b) == 0)
    s->near_miss = strdup (this_name);
}

static bool
is_regular (char type)
{
  return type == '0' || type == '\0' || type == '7';
}

/* Types whose size field does not count any data after the header. */
static bool
has_no_data (char type)
{
  return type >= '1' && type <= '6';
}

/* Having found the header of NAME at POS: check it is something we can
 * serve and fill MEMBER.
 */
static int
accept_member (struct scan *s, const char *name, const unsigned char *h,
               uint64_t pos, uint64_t size, struct tar_member *member)
{
  char type = h[TYPEFLAG_OFF];

  if (!is_regular (type) || s->pax_sparse) {
    if (type == '1')
      nbdkit_error ("tar-entry=%s: the member is a hard link to '%.100s'; "
                    "use that name", name, (const char *) &h[157]);
    else if (type == 'S' || s->pax_sparse)
      nbdkit_error ("tar-entry=%s: sparse members are not supported "
                    "(create the archive without --sparse)", name);
    else
      nbdkit_error ("tar-entry=%s: the member is not a regular file "
                    "(type '%c')", name, type);
    return -1;
  }
  member->offset = pos + BLOCK;
  member->size = size;
  nbdkit_debug ("tar: %s: %" PRIu64 " bytes at offset %" PRIu64,
                name, member->size, member->offset);
  return 0;
}

/* Look at the header at *POS; on return *POS is the next header, or
 * *FOUND is set.  Returns 1 at the end of the archive.
 */
static int
scan_header (struct scan *s, const char *name, uint64_t *pos,
             struct tar_member *member, bool *found)
{
  unsigned char h[BLOCK];
  uint64_t data = *pos + BLOCK, size;
  CLEANUP_FREE char *this_name = NULL;
  char type;

  if (read_block (s, h, BLOCK, *pos) == -1)
    return -1;
  if (is_zero ((const char *) h, BLOCK))
    return 1;
  if (!checksum_ok (h)) {
    nbdkit_error ("not a tar file, or a corrupt header at offset %" PRIu64
                  " (bad checksum)", *pos);
    return -1;
  }
  type = h[TYPEFLAG_OFF];
  if (parse_number (&h[SIZE_OFF], SIZE_LEN, &size) == -1) {
    nbdkit_error ("the tar header at offset %" PRIu64 " has an invalid "
                  "size", *pos);
    return -1;
  }
  if (is_regular (type) && s->has_pax_size)
    size = s->pax_size;
  if (has_no_data (type))
    size = 0;
  if (size > s->archive_size - data) {
    nbdkit_error ("the tar file is truncated: the member at offset %" PRIu64
                  " needs %" PRIu64 " bytes", *pos, size);
    return -1;
  }

  switch (type) {
  case 'L':                     /* GNU: the next member's long name */
    free (s->long_name);
    s->long_name = read_metadata (s, data, size);
    if (s->long_name == NULL)
      return -1;
    break;
  case 'x': {                   /* pax: attributes of the next member */
    CLEANUP_FREE char *pax = read_metadata (s, data, size);
    if (pax == NULL || parse_pax (s, pax, size, *pos) == -1)
      return -1;
    break;
  }
  case 'g':                     /* pax global attributes */
  case 'K':                     /* GNU: the next member's long link name */
    break;
  default:
    if (s->long_name) {
      this_name = s->long_name;
      s->long_name = NULL;
    }
    else if ((this_name = header_name (h)) == NULL)
      return -1;
    if (strcmp (this_name, name) == 0) {
      if (accept_member (s, name, h, *pos, size, member) == -1)
        return -1;
      *found = true;
      return 0;
    }
    note_near_miss (s, this_name, name);
    scan_reset (s);
  }
  *pos = data + ROUND_UP (size, (uint64_t) BLOCK);
  return 0;
}

/* Why the search ended without finding the member. */
enum not_found { NOT_FOUND_END, NOT_FOUND_LIMIT };

static void
report_not_found (const struct scan *s, const char *name,
                  enum not_found why, uint64_t limit)
{
  const char *hint = s->near_miss ? s->near_miss : "";
  const char *hint_pre = s->near_miss ? " (the archive has '" : "";
  const char *hint_post = s->near_miss ? "')" : "";

  if (why == NOT_FOUND_LIMIT)
    nbdkit_error ("tar-entry=%s: not found in the first %" PRIu64
                  " bytes of the tar file (tar-limit)%s%s%s",
                  name, limit, hint_pre, hint, hint_post);
  else
    nbdkit_error ("tar-entry=%s: no such member in the tar file%s%s%s",
                  name, hint_pre, hint, hint_post);
}

int
tar_find_member (nbdkit_next *next, const char *name, uint64_t limit,
                 struct tar_member *member)
{
  int64_t archive_size = next->get_size (next);
  struct scan s = { .next = next };
  uint64_t pos = 0;
  bool found = false;
  int r = 0;

  if (archive_size == -1)
    return -1;
  s.archive_size = archive_size;
  while (!found && r == 0) {
    if (limit > 0 && pos >= limit) {
      report_not_found (&s, name, NOT_FOUND_LIMIT, limit);
      r = -1;
    }
    else if (pos + BLOCK > s.archive_size) {
      if (pos == 0 || pos < s.archive_size) {
        nbdkit_error ("not a tar file, or it is truncated (%" PRIu64
                      " bytes)", s.archive_size);
        r = -1;
      }
      else
        r = 1;                  /* ended without the two zero blocks */
    }
    else
      r = scan_header (&s, name, &pos, member, &found);
  }
  if (r == 1) {
    report_not_found (&s, name, NOT_FOUND_END, limit);
    r = -1;
  }
  scan_reset (&s);
  free (s.near_miss);
  return r;
}
