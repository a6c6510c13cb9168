/* SPDX-License-Identifier: BSD-3-Clause
 * Small arithmetic and string helpers shared by every component.
 */

#ifndef NBDKIT_UTILS_H
#define NBDKIT_UTILS_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <time.h>

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ARRAY_SIZE(a) (sizeof (a) / sizeof ((a)[0]))

static inline bool
is_power_of_2 (uint64_t v)
{
  return v && (v & (v - 1)) == 0;
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t
monotonic_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Round up/down to a multiple of N, a power of 2. */
#define ROUND_UP(i, n) (((i) + (n) - 1) & -((__typeof__ (i)) (n)))
#define ROUND_DOWN(i, n) ((i) & -((__typeof__ (i)) (n)))
#define IS_ALIGNED(i, n) (((i) & ((n) - 1)) == 0)

/* True if all LEN bytes at BUF are zero. */
static inline bool
is_zero (const char *buf, size_t len)
{
  /* Check the first 16 bytes directly, then compare the buffer against
   * itself shifted: memcmp is vectorized and much faster than a loop.
   */
  size_t i, n = len < 16 ? len : 16;
  for (i = 0; i < n; ++i)
    if (buf[i])
      return false;
  if (len <= 16)
    return true;
  return __builtin_memcmp (buf, buf + 16, len - 16) == 0;
}

/* Parse a size with an optional suffix (b, k/K/KiB, M, G, T, P, E, s for
 * 512-byte sectors).  Returns -1 with *error set to a static message on
 * failure.
 */
extern int64_t parse_human_size (const char *str, const char **error);

/* Quote STR for a POSIX shell into a newly allocated string. */
extern char *shell_quote (const char *str);

/* Percent-encode STR for a URI path or query component. */
extern char *uri_quote (const char *str, const char *safe);

#endif /* NBDKIT_UTILS_H */
