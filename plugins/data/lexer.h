/* SPDX-License-Identifier: BSD-3-Clause
 * The tokens of the data format: numbers, words, strings, names, slices,
 * file names and scripts, read from a position in the text, with errors
 * that quote the text where they were found.
 */

#ifndef NBDKIT_DATA_LEXER_H
#define NBDKIT_DATA_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One text being parsed: the data parameter or the text of a $VAR. */
struct source {
  const char *text;
  size_t pos;
  const char *origin;           /* for messages: "data" or "$NAME" */
  bool quiet;                   /* looking ahead: report no errors */
};

static inline char
peek (const struct source *src)
{
  return src->text[src->pos];
}

/* Report a problem at byte POS of SRC with nbdkit_error. */
extern void source_error (const struct source *src, size_t pos,
                          const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));

/* Skip whitespace and "# comments". */
extern void skip_blank (struct source *src);

/* Each lex_* function reads one token at src->pos and moves past it, or
 * returns -1 (NULL) after reporting an error.  WHAT names the number in
 * messages.
 */

/* An unsigned number: decimal, octal with a leading 0, or hex with 0x. */
extern int lex_number (struct source *src, const char *what, uint64_t *r);

/* A number that is an offset or size, at most 2^63-1. */
extern int lex_offset (struct source *src, const char *what, uint64_t *r);

/* "le16:WORD" ... "be64:WORD": the 2, 4 or 8 bytes of the word. */
extern int lex_word (struct source *src, unsigned char bytes[8],
                     size_t *len);

/* A quoted string with C escapes: a new buffer of its bytes. */
extern int lex_string (struct source *src, unsigned char **bytes,
                       size_t *len);

/* The name after the sigil of "\NAME" or "$NAME", newly allocated.
 * ALLOW_DASH admits '-' as well as letters, digits and '_'.
 */
extern char *lex_identifier (struct source *src, bool allow_dash);

/* "[N:M]": *HAS_END is false for "[N:]"; N defaults to 0. */
extern int lex_slice (struct source *src, uint64_t *start, uint64_t *end,
                      bool *has_end);

/* The file name of "<FILE", newly allocated. */
extern char *lex_file_name (struct source *src);

/* The script of "<(SCRIPT)", newly allocated. */
extern char *lex_script (struct source *src);

#endif /* NBDKIT_DATA_LEXER_H */
