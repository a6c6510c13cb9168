/* SPDX-License-Identifier: BSD-3-Clause
 * Quoting strings for the shell (captive --run variables) and for URIs.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utils.h"

char *
shell_quote (const char *str)
{
  static const char safe[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "_-+=.,:/@%";
  size_t len = strlen (str), i, j = 0;
  char *ret;

  if (len > 0 && strspn (str, safe) == len)
    return strdup (str);

  /* Single-quote everything; each ' becomes '\''. */
  ret = malloc (len * 4 + 3);
  if (ret == NULL)
    return NULL;
  ret[j++] = '\'';
  for (i = 0; i < len; ++i) {
    if (str[i] == '\'') {
      memcpy (&ret[j], "'\\''", 4);
      j += 4;
    }
    else
      ret[j++] = str[i];
  }
  ret[j++] = '\'';
  ret[j] = '\0';
  return ret;
}

char *
uri_quote (const char *str, const char *safe)
{
  static const char unreserved[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";
  size_t len = strlen (str), i, j = 0;
  char *ret = malloc (len * 3 + 1);

  if (ret == NULL)
    return NULL;
  for (i = 0; i < len; ++i) {
    unsigned char c = str[i];
    if (strchr (unreserved, c) || (safe && strchr (safe, c)))
      ret[j++] = c;
    else {
      snprintf (&ret[j], 4, "%%%02X", c);
      j += 3;
    }
  }
  ret[j] = '\0';
  return ret;
}
