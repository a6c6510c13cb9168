/* SPDX-License-Identifier: BSD-3-Clause
 * A small base64 decoder: four 6-bit symbols make three bytes; '='
 * padding may shorten the final group to one or two bytes.
 */

#include <config.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

/* The 6-bit value of C, or -1 if C is not in the alphabet. */
static int
symbol_value (char c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

int
base64_decode (const char *str, unsigned char **out, size_t *len,
               const char **error)
{
  unsigned char *buf;
  size_t n = 0, symbols = 0, padding = 0;
  unsigned long group = 0;

  *error = NULL;
  buf = malloc (strlen (str) / 4 * 3 + 3);
  if (buf == NULL)
    return -1;

  for (; *str; ++str) {
    int v;

    if (isspace ((unsigned char) *str))
      continue;
    if (*str == '=') {
      /* Padding completes the final group and nothing may follow it. */
      if (symbols % 4 < 2) {
        *error = "misplaced '=' padding";
        goto err;
      }
      padding++;
      symbols++;
      if (symbols % 4 == 0)
        break;
      continue;
    }
    if (padding > 0) {
      *error = "data after '=' padding";
      goto err;
    }
    v = symbol_value (*str);
    if (v == -1) {
      *error = "character outside the base64 alphabet";
      goto err;
    }
    group = (group << 6) | v;
    symbols++;
    if (symbols % 4 == 0) {
      buf[n++] = group >> 16;
      buf[n++] = group >> 8;
      buf[n++] = group;
      group = 0;
    }
  }

  /* Anything after the padded group other than whitespace is an error. */
  if (*str == '=')
    str++;
  for (; *str; ++str) {
    if (!isspace ((unsigned char) *str)) {
      *error = "data after '=' padding";
      goto err;
    }
  }

  switch (symbols % 4) {
  case 0:
    /* A padded final group: two symbols + "==" or three symbols + "=". */
    if (padding == 2)
      buf[n++] = group >> 4;
    else if (padding == 1) {
      buf[n++] = group >> 10;
      buf[n++] = group >> 2;
    }
    break;
  case 2:                       /* unpadded final group of one byte */
    buf[n++] = group >> 4;
    break;
  case 3:                       /* unpadded final group of two bytes */
    buf[n++] = group >> 10;
    buf[n++] = group >> 2;
    break;
  default:
    *error = "truncated input (length is not a whole number of symbols)";
    goto err;
  }

  *out = buf;
  *len = n;
  return 0;

 err:
  free (buf);
  return -1;
}
