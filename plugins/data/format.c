/* SPDX-License-Identifier: BSD-3-Clause
 * The grammar of the data format and its evaluation.  One pass over the
 * text turns each scope ("( ... )", a $VAR, the whole string) into a
 * layout value, which value.c then writes into the disk (allocator.h).
 */

#include <config.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "external.h"
#include "format.h"
#include "lexer.h"
#include "utils.h"
#include "value.h"
#include "vector.h"

/* Bounds the recursion of nested groups and variables ("$a" where a='$a'). */
#define MAX_NESTING 200

/* A name bound with "-> \NAME", visible in its scope and nested ones. */
struct binding {
  char *name;
  struct value *value;
};
DEFINE_VECTOR_TYPE (binding_vector, struct binding)

struct scope {
  const struct scope *parent;
  binding_vector bindings;
};

struct evaluator {
  struct value_arena arena;
  data_variable_fn variable;
  unsigned depth;
};

static struct value *parse_scope (struct evaluator *ev, struct source *src,
                                  const struct scope *parent,
                                  size_t open_paren);

/* Bytes written literally in the text ("1 2 3", strings, words).  Such a
 * value may absorb the literals that follow it, see layout_place.
 */
static struct value *
literal (struct evaluator *ev, unsigned char *bytes, size_t len)
{
  struct value *v = value_new_owned_bytes (&ev->arena, bytes, len);

  if (v)
    v->extendable = true;
  return v;
}

/* How much of a file or script is needed: up to the end of a slice that
 * follows it, so that "</dev/urandom[:512]" reads only 512 bytes.  The
 * look-ahead is quiet; the slice reports its own errors when parsed.
 */
static uint64_t
read_limit (const struct source *src)
{
  struct source ahead = *src;
  uint64_t start, end;
  bool has_end;

  ahead.quiet = true;
  skip_blank (&ahead);
  if (peek (&ahead) == '[' &&
      lex_slice (&ahead, &start, &end, &has_end) == 0 && has_end)
    return end;
  return UINT64_MAX;
}

/* "<FILE" and "<(SCRIPT)". */
static struct value *
parse_external (struct evaluator *ev, struct source *src)
{
  bool script = src->text[src->pos + 1] == '(';
  CLEANUP_FREE char *what = script ? lex_script (src) : lex_file_name (src);
  unsigned char *buf;
  size_t len;
  int r;

  if (what == NULL)
    return NULL;
  if (script)
    r = run_script (what, read_limit (src), &buf, &len);
  else
    r = read_file (what, read_limit (src), &buf, &len);
  if (r == -1)
    return NULL;
  return value_new_owned_bytes (&ev->arena, buf, len);
}

static struct value *
parse_name (struct source *src, const struct scope *scope)
{
  size_t start = src->pos;
  CLEANUP_FREE char *name = lex_identifier (src, true);

  if (name == NULL)
    return NULL;
  for (; scope; scope = scope->parent) {
    for (size_t i = scope->bindings.len; i-- > 0; ) {
      if (strcmp (scope->bindings.ptr[i].name, name) == 0)
        return scope->bindings.ptr[i].value;
    }
  }
  source_error (src, start, "\\%s is not defined here", name);
  return NULL;
}

/* "$NAME": the variable's text, evaluated as a nested scope. */
static struct value *
parse_variable (struct evaluator *ev, struct source *src,
                const struct scope *scope)
{
  size_t start = src->pos;
  CLEANUP_FREE char *name = lex_identifier (src, false);
  CLEANUP_FREE char *origin = NULL;
  struct source sub;
  const char *text;

  if (name == NULL)
    return NULL;
  text = ev->variable (name);
  if (text == NULL) {
    source_error (src, start, "$%s: no parameter or environment variable "
                  "has this name", name);
    return NULL;
  }
  if (asprintf (&origin, "$%s", name) == -1) {
    nbdkit_error ("data: asprintf: %m");
    return NULL;
  }
  sub = (struct source) { .text = text, .pos = 0, .origin = origin };
  return parse_scope (ev, &sub, scope, SIZE_MAX);
}

/* One expression before any "*N", "[N:M]" or "-> \NAME". */
static struct value *
parse_primary (struct evaluator *ev, struct source *src,
               const struct scope *scope)
{
  size_t start = src->pos;
  char c = peek (src);
  unsigned char *bytes;
  size_t len;

  if (isdigit ((unsigned char) c)) {
    uint64_t n;

    if (lex_number (src, "byte", &n) == -1)
      return NULL;
    if (n > 255) {
      source_error (src, start, "byte %" PRIu64 " is not in the range 0..255",
                    n);
      return NULL;
    }
    bytes = malloc (1);
    if (bytes == NULL) {
      nbdkit_error ("data: malloc: %m");
      return NULL;
    }
    bytes[0] = n;
    return literal (ev, bytes, 1);
  }

  switch (c) {
  case 'l': case 'b': {
    unsigned char word[8];

    if (lex_word (src, word, &len) == -1)
      return NULL;
    bytes = malloc (len);
    if (bytes == NULL) {
      nbdkit_error ("data: malloc: %m");
      return NULL;
    }
    memcpy (bytes, word, len);
    return literal (ev, bytes, len);
  }
  case '"':
    if (lex_string (src, &bytes, &len) == -1)
      return NULL;
    return literal (ev, bytes, len);
  case '<':
    return parse_external (ev, src);
  case '(':
    src->pos++;
    return parse_scope (ev, src, scope, start);
  case '\\':
    return parse_name (src, scope);
  case '$':
    return parse_variable (ev, src, scope);
  case '*':
    source_error (src, start, "*N must follow an expression");
    return NULL;
  case '[':
    source_error (src, start, "[N:M] must follow an expression");
    return NULL;
  case '-':
    if (src->text[start + 1] == '>') {
      source_error (src, start, "-> \\NAME must follow an expression");
      return NULL;
    }
    break;
  }
  source_error (src, start, "unexpected character '%c'", c);
  return NULL;
}

/* Apply "*N" and "[N:M]" to V.  On "-> \NAME", bind the result in SCOPE
 * and set *ASSIGNED: an assignment writes nothing.
 */
static struct value *
parse_postfix (struct evaluator *ev, struct source *src, struct value *v,
               struct scope *scope, bool *assigned)
{
  *assigned = false;
  for (;;) {
    size_t start;
    uint64_t n, m;
    bool has_end;

    skip_blank (src);
    start = src->pos;
    switch (peek (src)) {
    case '*':
      src->pos++;
      skip_blank (src);
      if (lex_number (src, "*N", &n) == -1)
        return NULL;
      if (v->size > 0 && n > VALUE_MAX_SIZE / v->size) {
        source_error (src, start, "repeating %" PRIu64 " bytes %" PRIu64
                      " times makes more than 2^63-1 bytes", v->size, n);
        return NULL;
      }
      v = value_new_repeat (&ev->arena, v, n);
      if (v == NULL)
        return NULL;
      break;

    case '[':
      if (lex_slice (src, &n, &m, &has_end) == -1)
        return NULL;
      if (!has_end)
        m = v->size;
      if (n > m || m > v->size) {
        source_error (src, start, "[%" PRIu64 ":%" PRIu64 "] is not a slice "
                      "of a %" PRIu64 "-byte expression", n, m, v->size);
        return NULL;
      }
      v = value_new_slice (&ev->arena, v, n, m);
      if (v == NULL)
        return NULL;
      break;

    case '-':
      if (src->text[start + 1] != '>')
        return v;
      src->pos += 2;
      skip_blank (src);
      if (peek (src) != '\\') {
        source_error (src, src->pos, "expected \\NAME after ->");
        return NULL;
      }
      else {
        struct binding b = { .value = v };

        b.name = lex_identifier (src, true);
        if (b.name == NULL)
          return NULL;
        if (binding_vector_append (&scope->bindings, b) == -1) {
          nbdkit_error ("data: realloc: %m");
          free (b.name);
          return NULL;
        }
      }
      /* Named values are shared: literal runs must not grow into them. */
      v->extendable = false;
      *assigned = true;
      return v;

    default:
      return v;
    }
  }
}

/* "@OFFSET", "@+N", "@-N" and "@^ALIGNMENT": move *OFFSET. */
static int
parse_move (struct source *src, uint64_t *offset)
{
  size_t start = src->pos;
  char how;
  uint64_t n;

  src->pos++;                   /* '@' */
  how = peek (src);
  if (how == '+' || how == '-' || how == '^')
    src->pos++;
  if (lex_offset (src, "offset", &n) == -1)
    return -1;

  switch (how) {
  case '+':
    if (*offset + n > VALUE_MAX_SIZE) {
      source_error (src, start, "moves the offset beyond 2^63-1");
      return -1;
    }
    *offset += n;
    break;
  case '-':
    if (n > *offset) {
      source_error (src, start, "moves before the start of the scope "
                    "(the current offset is %" PRIu64 ")", *offset);
      return -1;
    }
    *offset -= n;
    break;
  case '^':
    if (!is_power_of_2 (n)) {
      source_error (src, start, "the alignment %" PRIu64 " is not a power "
                    "of 2", n);
      return -1;
    }
    if (ROUND_UP (*offset, n) > VALUE_MAX_SIZE) {
      source_error (src, start, "moves the offset beyond 2^63-1");
      return -1;
    }
    *offset = ROUND_UP (*offset, n);
    break;
  default:
    *offset = n;
  }
  return 0;
}

/* Parse items up to the ')' matching the '(' at OPEN_PAREN, or to the end
 * of the text if OPEN_PAREN is SIZE_MAX, into a new layout.  Offsets in
 * the scope start from 0 and names bound in it end with it.
 */
static struct value *
parse_scope (struct evaluator *ev, struct source *src,
             const struct scope *parent, size_t open_paren)
{
  struct scope scope = { .parent = parent, .bindings = empty_vector };
  struct value *layout, *result = NULL;
  uint64_t offset = 0;

  if (++ev->depth > MAX_NESTING) {
    source_error (src, src->pos, "groups and variables are nested more "
                  "than %d deep", MAX_NESTING);
    goto out;
  }
  layout = value_new_layout (&ev->arena);
  if (layout == NULL)
    goto out;

  for (;;) {
    char c;

    skip_blank (src);
    c = peek (src);
    if (c == '\0') {
      if (open_paren != SIZE_MAX) {
        source_error (src, open_paren, "unmatched '('");
        goto out;
      }
      break;
    }
    if (c == ')') {
      if (open_paren == SIZE_MAX) {
        source_error (src, src->pos, "unmatched ')'");
        goto out;
      }
      src->pos++;
      break;
    }
    if (c == '@') {
      if (parse_move (src, &offset) == -1)
        goto out;
      if (offset > layout->size)
        layout->size = offset;
    }
    else {
      size_t start = src->pos;
      struct value *v;
      bool assigned;

      v = parse_primary (ev, src, &scope);
      if (v)
        v = parse_postfix (ev, src, v, &scope, &assigned);
      if (v == NULL)
        goto out;
      if (!assigned) {
        uint64_t size = v->size;  /* layout_place may merge and free v */

        if (size > VALUE_MAX_SIZE - offset) {
          source_error (src, start, "writing %" PRIu64 " bytes at offset %"
                        PRIu64 " goes beyond 2^63-1", size, offset);
          goto out;
        }
        if (layout_place (&ev->arena, layout, offset, v) == -1)
          goto out;
        offset += size;
      }
    }
  }
  result = layout;

 out:
  ev->depth--;
  for (size_t i = 0; i < scope.bindings.len; ++i)
    free (scope.bindings.ptr[i].name);
  binding_vector_reset (&scope.bindings);
  return result;
}

int64_t
data_format_store (const char *text, data_variable_fn variable,
                   struct allocator *sa)
{
  struct evaluator ev = { .arena = { empty_vector }, .variable = variable };
  struct source src = { .text = text, .pos = 0, .origin = "data" };
  struct value *disk;
  int64_t size = -1;

  disk = parse_scope (&ev, &src, NULL, SIZE_MAX);
  if (disk && value_store (disk, sa) == 0)
    size = disk->size;
  value_arena_free (&ev.arena);
  return size;
}
