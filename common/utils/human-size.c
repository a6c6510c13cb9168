/* SPDX-License-Identifier: BSD-3-Clause
 * Parsing sizes such as "100M" or "4k" (nbdkit_parse_size and the daemon's
 * size options).  Suffixes are powers of 2; "s" is a 512-byte sector.
 */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "utils.h"

int64_t
parse_human_size (const char *str, const char **error)
{
  char *end;
  intmax_t size;
  int shift = 0;
  int64_t scale = 1;

  errno = 0;
  size = strtoimax (str, &end, 10);
  if (str == end) {
    *error = "could not parse size string";
    return -1;
  }
  if (size < 0) {
    *error = "size cannot be negative";
    return -1;
  }
  if (errno) {
    *error = "size exceeds maximum value";
    return -1;
  }

  switch (*end) {
  case '\0': break;
  case 'b': case 'B': end++; break;
  case 's': case 'S': scale = 512; end++; break;
  case 'k': case 'K': shift = 10; end++; break;
  case 'm': case 'M': shift = 20; end++; break;
  case 'g': case 'G': shift = 30; end++; break;
  case 't': case 'T': shift = 40; end++; break;
  case 'p': case 'P': shift = 50; end++; break;
  case 'e': case 'E': shift = 60; end++; break;
  default:
    *error = "could not parse size: unknown suffix";
    return -1;
  }
  if (*end) {
    *error = "could not parse size: unknown suffix";
    return -1;
  }

  if (shift)
    scale = INT64_C (1) << shift;
  if (size > INT64_MAX / scale) {
    *error = "overflow computing size";
    return -1;
  }
  return size * scale;
}
