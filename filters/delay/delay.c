/* SPDX-License-Identifier: BSD-3-Clause
 * The delay filter: sleep before passing requests (and connection
 * opening and closing) to the layer below, to simulate a slow disk or
 * a distant server.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"

#define NS_PER_SEC  UINT64_C(1000000000)
#define NS_PER_MS   UINT64_C(1000000)

/* A week is a silly delay but still fits comfortably in the types used. */
#define MAX_DELAY_SECS (7 * 24 * 3600)

/* The delay of each operation in nanoseconds; 0 means none. */
static uint64_t delay_read;       /* rdelay=, delay-read= */
static uint64_t delay_write;      /* wdelay=, delay-write= */
static uint64_t delay_zero;       /* wdelay=, delay-zero= */
static uint64_t delay_trim;       /* wdelay=, delay-trim= */
static uint64_t delay_extents;    /* delay-extents= */
static uint64_t delay_cache;      /* delay-cache= */
static uint64_t delay_open;       /* delay-open= */
static uint64_t delay_close;      /* delay-close= */

/* If false, fast zero requests fail at once instead of being delayed
 * (delay-fast-zero=).
 */
static bool delay_fast_zero = true;

/* "SECS" (which may have a fraction) or "NNms". */
static int
parse_delay (const char *key, const char *value, uint64_t *ret)
{
  size_t len = strlen (value);
  char *end;
  double secs;

  if (len > 2 && strcmp (value + len - 2, "ms") == 0) {
    CLEANUP_FREE char *num = strndup (value, len - 2);
    unsigned ms;

    if (num == NULL) {
      nbdkit_error ("strndup: %m");
      return -1;
    }
    if (nbdkit_parse_unsigned (key, num, &ms) == -1)
      return -1;
    if (ms > MAX_DELAY_SECS * UINT64_C(1000)) {
      nbdkit_error ("%s: delay '%s' is too long", key, value);
      return -1;
    }
    *ret = ms * NS_PER_MS;
    return 0;
  }

  errno = 0;
  secs = strtod (value, &end);
  if (len == 0 || end == value || *end != '\0' || errno != 0 ||
      !isfinite (secs) || secs < 0) {
    nbdkit_error ("%s: could not parse delay '%s' "
                  "(expected seconds or a number followed by 'ms')",
                  key, value);
    return -1;
  }
  if (secs > MAX_DELAY_SECS) {
    nbdkit_error ("%s: delay '%s' is too long", key, value);
    return -1;
  }
  *ret = (uint64_t) (secs * NS_PER_SEC + 0.5);
  return 0;
}

static int
delay_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
              const char *key, const char *value)
{
  int r;

  if (strcmp (key, "rdelay") == 0 || strcmp (key, "delay-read") == 0)
    return parse_delay (key, value, &delay_read);
  if (strcmp (key, "wdelay") == 0) {
    /* Everything that changes the disk. */
    if (parse_delay (key, value, &delay_write) == -1)
      return -1;
    delay_zero = delay_trim = delay_write;
    return 0;
  }
  if (strcmp (key, "delay-write") == 0)
    return parse_delay (key, value, &delay_write);
  if (strcmp (key, "delay-zero") == 0)
    return parse_delay (key, value, &delay_zero);
  if (strcmp (key, "delay-trim") == 0)
    return parse_delay (key, value, &delay_trim);
  if (strcmp (key, "delay-extents") == 0)
    return parse_delay (key, value, &delay_extents);
  if (strcmp (key, "delay-cache") == 0)
    return parse_delay (key, value, &delay_cache);
  if (strcmp (key, "delay-open") == 0)
    return parse_delay (key, value, &delay_open);
  if (strcmp (key, "delay-close") == 0)
    return parse_delay (key, value, &delay_close);
  if (strcmp (key, "delay-fast-zero") == 0) {
    r = nbdkit_parse_bool (value);
    if (r == -1) {
      nbdkit_error ("delay-fast-zero: expected a boolean, got '%s'", value);
      return -1;
    }
    delay_fast_zero = r;
    return 0;
  }
  return next (nxdata, key, value);
}

#define delay_config_help \
  "rdelay=<DELAY>           Delay reads (SECS or NNms).\n" \
  "wdelay=<DELAY>           Delay writes, zeroes and trims.\n" \
  "delay-read=<DELAY>       Delay reads (same as rdelay).\n" \
  "delay-write=<DELAY>      Delay writes.\n" \
  "delay-zero=<DELAY>       Delay write zeroes.\n" \
  "delay-trim=<DELAY>       Delay trims.\n" \
  "delay-extents=<DELAY>    Delay block status.\n" \
  "delay-cache=<DELAY>      Delay cache requests.\n" \
  "delay-open=<DELAY>       Delay opening the export.\n" \
  "delay-close=<DELAY>      Delay closing a connection.\n" \
  "delay-fast-zero=<BOOL>   false: fail fast zero requests at once."

/* Sleep NS nanoseconds.  The server cuts the sleep short when it or the
 * connection is shutting down; the request then fails.
 */
static int
sleep_for (uint64_t ns, int *err)
{
  if (ns == 0)
    return 0;
  if (nbdkit_nanosleep (ns / NS_PER_SEC, ns % NS_PER_SEC) == -1) {
    *err = errno ? errno : ESHUTDOWN;
    return -1;
  }
  return 0;
}

static void *
delay_open_cb (nbdkit_next_open *next, nbdkit_context *context,
               int readonly, const char *exportname, int is_tls)
{
  int err;

  if (sleep_for (delay_open, &err) == -1)
    return NULL;
  if (next (context, readonly, exportname) == -1)
    return NULL;
  return NBDKIT_HANDLE_NOT_NEEDED;
}

/* Finalize runs when the client disconnects, before the layers close.
 * nbdkit_nanosleep cannot be used here: the connection is already
 * marked as closing, which makes it return at once.  A plain sleep is
 * bounded by the configured delay, so at worst it holds up a server
 * shutdown by that long.
 */
static int
delay_finalize (nbdkit_next *next, void *handle)
{
  struct timespec ts = {
    .tv_sec = delay_close / NS_PER_SEC,
    .tv_nsec = delay_close % NS_PER_SEC,
  };

  if (delay_close == 0)
    return 0;
  while (clock_nanosleep (CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
    ;
  return 0;
}

/* With delay-fast-zero=false a delayed zero answers fast zero requests
 * itself (with ENOTSUP), so it can always advertise them.
 */
static bool
fail_fast_zero (void)
{
  return !delay_fast_zero && delay_zero > 0;
}

static int
delay_can_fast_zero (nbdkit_next *next, void *handle)
{
  if (fail_fast_zero ())
    return 1;
  return next->can_fast_zero (next);
}

static int
delay_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  if (sleep_for (delay_read, err) == -1)
    return -1;
  return next->pread (next, buf, count, offset, flags, err);
}

static int
delay_pwrite (nbdkit_next *next, void *handle, const void *buf,
              uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  if (sleep_for (delay_write, err) == -1)
    return -1;
  return next->pwrite (next, buf, count, offset, flags, err);
}

static int
delay_zero_cb (nbdkit_next *next, void *handle, uint32_t count,
               uint64_t offset, uint32_t flags, int *err)
{
  if ((flags & NBDKIT_FLAG_FAST_ZERO) && fail_fast_zero ()) {
    *err = ENOTSUP;
    return -1;
  }
  if (sleep_for (delay_zero, err) == -1)
    return -1;
  return next->zero (next, count, offset, flags, err);
}

static int
delay_trim_cb (nbdkit_next *next, void *handle, uint32_t count,
               uint64_t offset, uint32_t flags, int *err)
{
  if (sleep_for (delay_trim, err) == -1)
    return -1;
  return next->trim (next, count, offset, flags, err);
}

static int
delay_extents_cb (nbdkit_next *next, void *handle, uint32_t count,
                  uint64_t offset, uint32_t flags,
                  struct nbdkit_extents *extents, int *err)
{
  if (sleep_for (delay_extents, err) == -1)
    return -1;
  return next->extents (next, count, offset, flags, extents, err);
}

static int
delay_cache_cb (nbdkit_next *next, void *handle, uint32_t count,
                uint64_t offset, uint32_t flags, int *err)
{
  if (sleep_for (delay_cache, err) == -1)
    return -1;
  return next->cache (next, count, offset, flags, err);
}

static struct nbdkit_filter filter = {
  .name              = "delay",
  .longname          = "nbdkit delay filter",
  .version           = PACKAGE_VERSION,
  .description       = "Delay requests, to simulate a slow disk",
  .config            = delay_config,
  .config_help       = delay_config_help,
  .open              = delay_open_cb,
  .finalize          = delay_finalize,
  .can_fast_zero     = delay_can_fast_zero,
  .pread             = delay_pread,
  .pwrite            = delay_pwrite,
  .zero              = delay_zero_cb,
  .trim              = delay_trim_cb,
  .extents           = delay_extents_cb,
  .cache             = delay_cache_cb,
};

NBDKIT_REGISTER_FILTER (filter)
