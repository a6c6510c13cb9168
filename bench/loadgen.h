/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by the benchmark's client programs (randio.c, rawio.c,
 * connect-latency.c): the monotonic clock, a cheap random generator and
 * strict parsing of numeric options.  Not part of the test suite.
 */

#ifndef NBDKIT_BENCH_LOADGEN_H
#define NBDKIT_BENCH_LOADGEN_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double
now_seconds (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64; STATE must never be zero. */
static inline uint64_t
next_random (uint64_t *state)
{
  uint64_t x = *state;

  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *state = x;
  return x;
}

/* ARG as a number in [MIN, MAX], or exit naming PROGRAM and ARG. */
static inline unsigned long
parse_number (const char *program, const char *arg,
              unsigned long min, unsigned long max)
{
  char *end;
  unsigned long value;

  errno = 0;
  value = strtoul (arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0' || value < min || value > max) {
    fprintf (stderr, "%s: bad number: %s\n", program, arg);
    exit (EXIT_FAILURE);
  }
  return value;
}

#endif /* NBDKIT_BENCH_LOADGEN_H */
