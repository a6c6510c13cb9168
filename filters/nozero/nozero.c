/* SPDX-License-Identifier: BSD-3-Clause
 * The nozero filter: hides, emulates or restricts write-zeroes support,
 * to measure what efficient zeroing is worth and to exercise client
 * fallbacks.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "utils.h"

/* zeromode=: how NBD_CMD_WRITE_ZEROES is handled. */
static enum zero_mode {
  ZERO_NONE,                    /* not advertised */
  ZERO_EMULATE,                 /* advertised, done with writes */
  ZERO_NOTRIM,                  /* passed on without the may-trim flag */
  ZERO_PLUGIN,                  /* passed on unchanged */
} zeromode = ZERO_NONE;

/* fastzeromode=: how NBD_CMD_FLAG_FAST_ZERO is handled. */
static enum fast_zero_mode {
  FAST_DEFAULT,                 /* emulate: fail fast; otherwise plugin */
  FAST_NONE,                    /* not advertised */
  FAST_SLOW,                    /* advertised, always fails with ENOTSUP */
  FAST_IGNORE,                  /* advertised, flag dropped (unsafe) */
} fastzeromode = FAST_DEFAULT;

/* Zeroes written by zeromode=emulate, this many bytes per write.  It is
 * in .bss and never written to, so it costs no memory until read, and
 * then only the kernel's shared zero page.  (Not const: that would put
 * 1 MiB of zeroes in the shared library file.)
 */
#define ZERO_CHUNK (1024 * 1024)
static char zero_buffer[ZERO_CHUNK];

static int
nozero_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
               const char *key, const char *value)
{
  if (strcmp (key, "zeromode") == 0) {
    if (strcmp (value, "none") == 0)
      zeromode = ZERO_NONE;
    else if (strcmp (value, "emulate") == 0)
      zeromode = ZERO_EMULATE;
    else if (strcmp (value, "notrim") == 0)
      zeromode = ZERO_NOTRIM;
    else if (strcmp (value, "plugin") == 0)
      zeromode = ZERO_PLUGIN;
    else {
      nbdkit_error ("zeromode: unknown mode '%s' "
                    "(expected none, emulate, notrim or plugin)", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "fastzeromode") == 0) {
    if (strcmp (value, "default") == 0)
      fastzeromode = FAST_DEFAULT;
    else if (strcmp (value, "none") == 0)
      fastzeromode = FAST_NONE;
    else if (strcmp (value, "slow") == 0)
      fastzeromode = FAST_SLOW;
    else if (strcmp (value, "ignore") == 0)
      fastzeromode = FAST_IGNORE;
    else {
      nbdkit_error ("fastzeromode: unknown mode '%s' "
                    "(expected default, none, slow or ignore)", value);
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

#define nozero_config_help \
  "zeromode=<MODE>      One of 'none' (default), 'emulate', 'notrim',\n" \
  "                     'plugin'.\n" \
  "fastzeromode=<MODE>  One of 'default', 'none', 'slow', 'ignore'."

/* notrim and plugin pass requests on, which only makes sense when the
 * layer below really has a zero operation of its own.
 */
static int
nozero_prepare (nbdkit_next *next, void *handle, int readonly)
{
  int r;

  if (zeromode != ZERO_NOTRIM && zeromode != ZERO_PLUGIN)
    return 0;
  r = next->can_write (next);
  if (r <= 0)
    return r;
  r = next->can_zero (next);
  if (r == -1)
    return -1;
  if (r != NBDKIT_ZERO_NATIVE) {
    nbdkit_error ("zeromode=%s needs a plugin with its own zero support",
                  zeromode == ZERO_NOTRIM ? "notrim" : "plugin");
    return -1;
  }
  return 0;
}

static int
nozero_can_zero (nbdkit_next *next, void *handle)
{
  switch (zeromode) {
  case ZERO_NONE:
    return NBDKIT_ZERO_NONE;
  case ZERO_EMULATE:
    return NBDKIT_ZERO_EMULATE;
  case ZERO_NOTRIM:
  case ZERO_PLUGIN:
    return next->can_zero (next);
  }
  abort ();
}

static int
nozero_can_fast_zero (nbdkit_next *next, void *handle)
{
  switch (fastzeromode) {
  case FAST_NONE:
    return 0;
  case FAST_SLOW:
  case FAST_IGNORE:
    return 1;
  case FAST_DEFAULT:
    if (zeromode == ZERO_EMULATE)
      return 1;                 /* every fast zero fails at once */
    return next->can_fast_zero (next);
  }
  abort ();
}

/* Write zeroes over the range with ordinary writes.  FUA, if asked
 * for, goes with the last write: the writes before it complete first.
 */
static int
write_zeroes (nbdkit_next *next, uint32_t count, uint64_t offset,
              uint32_t flags, int *err)
{
  uint32_t write_flags = flags & NBDKIT_FLAG_FUA;

  while (count > 0) {
    uint32_t n = MIN (count, (uint32_t) ZERO_CHUNK);

    if (next->pwrite (next, zero_buffer, n, offset,
                      n == count ? write_flags : 0, err) == -1)
      return -1;
    offset += n;
    count -= n;
  }
  return 0;
}

static int
nozero_zero (nbdkit_next *next, void *handle, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  /* The server never sends a zero while zeromode=none says "no". */
  assert (zeromode != ZERO_NONE);

  if (flags & NBDKIT_FLAG_FAST_ZERO) {
    if (fastzeromode == FAST_SLOW ||
        (fastzeromode == FAST_DEFAULT && zeromode == ZERO_EMULATE)) {
      *err = ENOTSUP;
      return -1;
    }
    if (fastzeromode == FAST_IGNORE)
      flags &= ~NBDKIT_FLAG_FAST_ZERO;
  }

  switch (zeromode) {
  case ZERO_EMULATE:
    return write_zeroes (next, count, offset, flags, err);
  case ZERO_NOTRIM:
    flags &= ~NBDKIT_FLAG_MAY_TRIM;
    /* fallthrough */
  case ZERO_PLUGIN:
    return next->zero (next, count, offset, flags, err);
  case ZERO_NONE:
    break;
  }
  abort ();
}

static struct nbdkit_filter filter = {
  .name              = "nozero",
  .longname          = "nbdkit nozero filter",
  .version           = PACKAGE_VERSION,
  .description       = "Disable, emulate or restrict write-zeroes requests",
  .config            = nozero_config,
  .config_help       = nozero_config_help,
  .prepare           = nozero_prepare,
  .can_zero          = nozero_can_zero,
  .can_fast_zero     = nozero_can_fast_zero,
  .zero              = nozero_zero,
};

NBDKIT_REGISTER_FILTER (filter)
