/* SPDX-License-Identifier: BSD-3-Clause
 * Reading the tokens of the data format.  Errors name the origin of the
 * text, the byte offset in it and the text found there, so a mistake in a
 * long data string or a $VAR can be found at once.
 */

#include <config.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "lexer.h"
#include "vector.h"

DEFINE_VECTOR_TYPE (byte_vector, unsigned char)

/* The largest offset or size a disk can have. */
#define MAX_OFFSET ((uint64_t) INT64_MAX)

/* Characters that end a file name after '<'. */
#define FILE_NAME_END " \t\n\r\f\v[*)"

void
source_error (const struct source *src, size_t pos, const char *fmt, ...)
{
  va_list args;
  CLEANUP_FREE char *msg = NULL;
  const char *here = src->text + pos;
  size_t n;

  if (src->quiet)
    return;
  va_start (args, fmt);
  if (vasprintf (&msg, fmt, args) == -1)
    msg = NULL;
  va_end (args);

  /* Quote up to 20 bytes of the offending text, stopping at a newline. */
  n = strcspn (here, "\n");
  if (n > 20)
    n = 20;
  if (*here)
    nbdkit_error ("data: %s, offset %zu, at \"%.*s\": %s",
                  src->origin, pos, (int) n, here, msg ? msg : fmt);
  else
    nbdkit_error ("data: %s, offset %zu, at the end: %s",
                  src->origin, pos, msg ? msg : fmt);
}

void
skip_blank (struct source *src)
{
  for (;;) {
    char c = peek (src);

    if (c == '#') {
      while (peek (src) && peek (src) != '\n')
        src->pos++;
    }
    else if (isspace ((unsigned char) c))
      src->pos++;
    else
      return;
  }
}

static unsigned
digit_value (char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

int
lex_number (struct source *src, const char *what, uint64_t *r)
{
  size_t start = src->pos, len = 0, i = 0;
  const char *p = src->text + start;
  unsigned base = 10;
  uint64_t n = 0;

  /* The token runs to the first character that cannot be in a number, so
   * "12abc" is one bad token rather than 12 followed by junk.
   */
  while (isalnum ((unsigned char) p[len]))
    len++;
  if (len == 0) {
    source_error (src, start, "expected a number (%s)", what);
    return -1;
  }
  if (len >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    base = 16;
    i = 2;
  }
  else if (len >= 2 && p[0] == '0') {
    base = 8;
    i = 1;
  }
  if (i == len) {
    source_error (src, start, "%.*s is not a number (%s)", (int) len, p, what);
    return -1;
  }
  for (; i < len; ++i) {
    unsigned d = digit_value (p[i]);

    if (d >= base) {
      source_error (src, start, "%.*s is not a %s number (%s)", (int) len, p,
                    base == 8 ? "octal" : base == 16 ? "hexadecimal"
                    : "decimal", what);
      return -1;
    }
    if (__builtin_mul_overflow (n, base, &n) ||
        __builtin_add_overflow (n, d, &n)) {
      source_error (src, start, "%.*s is too large (%s)", (int) len, p, what);
      return -1;
    }
  }
  src->pos += len;
  *r = n;
  return 0;
}

int
lex_offset (struct source *src, const char *what, uint64_t *r)
{
  size_t start = src->pos;

  if (lex_number (src, what, r) == -1)
    return -1;
  if (*r > MAX_OFFSET) {
    source_error (src, start, "%s %" PRIu64 " is larger than 2^63-1",
                  what, *r);
    return -1;
  }
  return 0;
}

int
lex_word (struct source *src, unsigned char bytes[8], size_t *len)
{
  size_t start = src->pos;
  const char *p = src->text + start;
  bool big_endian;
  unsigned bits, i;
  uint64_t n;

  if ((strncmp (p, "le", 2) != 0 && strncmp (p, "be", 2) != 0) ||
      (strncmp (p + 2, "16:", 3) != 0 && strncmp (p + 2, "32:", 3) != 0 &&
       strncmp (p + 2, "64:", 3) != 0)) {
    source_error (src, start, "expected a byte, a string, or one of "
                  "le16: le32: le64: be16: be32: be64:");
    return -1;
  }
  big_endian = p[0] == 'b';
  bits = (p[2] - '0') * 10 + (p[3] - '0');
  src->pos += 5;
  if (lex_number (src, "word", &n) == -1)
    return -1;
  if (bits < 64 && n >> bits) {
    source_error (src, start, "%" PRIu64 " does not fit in %u bits", n, bits);
    return -1;
  }
  for (i = 0; i < bits / 8; ++i) {
    unsigned shift = big_endian ? bits - 8 * (i + 1) : 8 * i;
    bytes[i] = (n >> shift) & 0xff;
  }
  *len = bits / 8;
  return 0;
}

/* The escape sequence after the backslash at src->pos - 1. */
static int
lex_escape (struct source *src, unsigned char *r)
{
  size_t start = src->pos - 1;
  char c = peek (src);
  unsigned n = 0, i;

  switch (c) {
  case '\\': case '"': case '\'': case '?': *r = c; break;
  case 'a': *r = '\a'; break;
  case 'b': *r = '\b'; break;
  case 'f': *r = '\f'; break;
  case 'n': *r = '\n'; break;
  case 'r': *r = '\r'; break;
  case 't': *r = '\t'; break;
  case 'v': *r = '\v'; break;

  case 'x':                     /* \xH or \xHH */
    src->pos++;
    for (i = 0; i < 2 && isxdigit ((unsigned char) peek (src)); ++i)
      n = n * 16 + digit_value (src->text[src->pos++]);
    if (i == 0) {
      source_error (src, start, "\\x must be followed by hexadecimal digits");
      return -1;
    }
    *r = n;
    return 0;

  case '0': case '1': case '2': case '3':
  case '4': case '5': case '6': case '7': /* \O, \OO or \OOO */
    for (i = 0; i < 3 && peek (src) >= '0' && peek (src) <= '7'; ++i)
      n = n * 8 + (src->text[src->pos++] - '0');
    if (n > 255) {
      source_error (src, start, "octal escape \\%o is larger than \\377", n);
      return -1;
    }
    *r = n;
    return 0;

  case '\0':
    source_error (src, start, "unterminated string");
    return -1;
  default:
    source_error (src, start, "unknown escape sequence \\%c in a string", c);
    return -1;
  }
  src->pos++;
  return 0;
}

int
lex_string (struct source *src, unsigned char **bytes, size_t *len)
{
  size_t start = src->pos;
  byte_vector buf = empty_vector;

  src->pos++;                   /* the opening quote */
  for (;;) {
    char c = peek (src);
    unsigned char b = c;

    if (c == '\0') {
      source_error (src, start, "unterminated string");
      goto err;
    }
    src->pos++;
    if (c == '"')
      break;
    if (c == '\\' && lex_escape (src, &b) == -1)
      goto err;
    if (byte_vector_append (&buf, b) == -1) {
      nbdkit_error ("data: realloc: %m");
      goto err;
    }
  }
  /* An empty string still gets a buffer the caller can free. */
  if (buf.ptr == NULL && byte_vector_reserve (&buf, 1) == -1) {
    nbdkit_error ("data: malloc: %m");
    return -1;
  }
  *bytes = buf.ptr;
  *len = buf.len;
  return 0;

 err:
  byte_vector_reset (&buf);
  return -1;
}

char *
lex_identifier (struct source *src, bool allow_dash)
{
  size_t start = src->pos++, len = 0;
  const char *p = src->text + src->pos;
  char *name;

  while (isalnum ((unsigned char) p[len]) || p[len] == '_' ||
         (allow_dash && p[len] == '-'))
    len++;
  if (len == 0) {
    source_error (src, start, "expected a name after '%c'", src->text[start]);
    return NULL;
  }
  src->pos += len;
  name = strndup (p, len);
  if (name == NULL)
    nbdkit_error ("data: strndup: %m");
  return name;
}

int
lex_slice (struct source *src, uint64_t *start, uint64_t *end,
           bool *has_end)
{
  *start = 0;
  *has_end = false;
  src->pos++;                   /* '[' */
  skip_blank (src);
  if (isdigit ((unsigned char) peek (src)) &&
      lex_offset (src, "slice start", start) == -1)
    return -1;
  skip_blank (src);
  if (peek (src) != ':') {
    source_error (src, src->pos, "expected ':' in [N:M]");
    return -1;
  }
  src->pos++;
  skip_blank (src);
  if (isdigit ((unsigned char) peek (src))) {
    if (lex_offset (src, "slice end", end) == -1)
      return -1;
    *has_end = true;
  }
  skip_blank (src);
  if (peek (src) != ']') {
    source_error (src, src->pos, "expected ']' to close [N:M]");
    return -1;
  }
  src->pos++;
  return 0;
}

char *
lex_file_name (struct source *src)
{
  size_t start = src->pos + 1;  /* after '<' */
  size_t len = strcspn (src->text + start, FILE_NAME_END);
  char *path;

  if (len == 0) {
    source_error (src, src->pos, "expected a file name after '<'");
    return NULL;
  }
  path = strndup (src->text + start, len);
  if (path == NULL) {
    nbdkit_error ("data: strndup: %m");
    return NULL;
  }
  src->pos = start + len;
  return path;
}

char *
lex_script (struct source *src)
{
  size_t start = src->pos, depth = 0, i;
  char *script;

  /* From the '(' after '<' to the matching ')'. */
  for (i = start + 1; src->text[i]; ++i) {
    if (src->text[i] == '(')
      depth++;
    else if (src->text[i] == ')' && --depth == 0)
      break;
  }
  if (src->text[i] == '\0') {
    source_error (src, start, "unmatched '(' in <(SCRIPT)");
    return NULL;
  }
  script = strndup (src->text + start + 2, i - start - 2);
  if (script == NULL) {
    nbdkit_error ("data: strndup: %m");
    return NULL;
  }
  src->pos = i + 1;
  return script;
}
