/* SPDX-License-Identifier: BSD-3-Clause
 * The blocksize-policy filter: advertises block size constraints chosen
 * on the command line (nbd-protocol.md "Block size constraints"), and
 * optionally fails requests that break them before the plugin sees
 * them, or disconnects clients sending over-large writes.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "utils.h"

/* Limits from nbd-protocol.md "Block size constraints". */
#define MAX_MINIMUM   (64 * 1024)
#define MIN_PREFERRED 512
#define MAX_PREFERRED (32 * 1024 * 1024)
#define NO_MAXIMUM    UINT32_MAX

/* The defaults the protocol suggests for a server without constraints. */
#define DEFAULT_MINIMUM   1
#define DEFAULT_PREFERRED 4096

/* blocksize-minimum=, -preferred=, -maximum=: 0 when not given. */
static uint32_t config_minimum, config_preferred, config_maximum;

/* blocksize-error-policy=: whether the filter fails bad requests. */
static enum { POLICY_ALLOW, POLICY_ERROR } error_policy = POLICY_ALLOW;

/* blocksize-write-disconnect=: writes above this many bytes make the
 * filter drop the connection.  0 (the default) means never.
 */
static uint32_t write_disconnect;

/* The constraints of one connection, worked out in prepare. */
struct handle {
  uint32_t minimum, preferred, maximum;
};

static int
parse_size (const char *key, const char *value, uint64_t lo, uint64_t hi,
            uint32_t *r)
{
  int64_t v = nbdkit_parse_size (value);

  if (v == -1) {
    nbdkit_error ("%s=%s: cannot parse the size", key, value);
    return -1;
  }
  if ((uint64_t) v < lo || (uint64_t) v > hi) {
    nbdkit_error ("%s=%s: must be between %" PRIu64 " and %" PRIu64,
                  key, value, lo, hi);
    return -1;
  }
  *r = v;
  return 0;
}

static int
parse_power_of_2 (const char *key, const char *value, uint64_t lo,
                  uint64_t hi, uint32_t *r)
{
  if (parse_size (key, value, lo, hi, r) == -1)
    return -1;
  if (!is_power_of_2 (*r)) {
    nbdkit_error ("%s=%s: must be a power of 2", key, value);
    return -1;
  }
  return 0;
}

static int
policy_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
               const char *key, const char *value)
{
  if (strcmp (key, "blocksize-minimum") == 0)
    return parse_power_of_2 (key, value, 1, MAX_MINIMUM, &config_minimum);
  if (strcmp (key, "blocksize-preferred") == 0)
    return parse_power_of_2 (key, value, MIN_PREFERRED, MAX_PREFERRED,
                             &config_preferred);
  if (strcmp (key, "blocksize-maximum") == 0)
    /* At least the smallest preferred size, which it must not be under. */
    return parse_size (key, value, MIN_PREFERRED, NO_MAXIMUM,
                       &config_maximum);
  if (strcmp (key, "blocksize-write-disconnect") == 0)
    return parse_size (key, value, 1, NO_MAXIMUM, &write_disconnect);
  if (strcmp (key, "blocksize-error-policy") == 0) {
    if (strcmp (value, "allow") == 0)
      error_policy = POLICY_ALLOW;
    else if (strcmp (value, "error") == 0)
      error_policy = POLICY_ERROR;
    else {
      nbdkit_error ("blocksize-error-policy: unknown policy '%s' "
                    "(expected allow or error)", value);
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

#define policy_config_help \
  "blocksize-minimum=<N>        Minimum block size to advertise.\n" \
  "blocksize-preferred=<N>      Preferred block size to advertise.\n" \
  "blocksize-maximum=<N>        Maximum block size to advertise.\n" \
  "blocksize-error-policy=allow|error\n" \
  "                             Fail requests breaking the constraints.\n" \
  "blocksize-write-disconnect=<N>\n" \
  "                             Disconnect clients writing more than N."

/* The values given must fit together (each one alone was checked). */
static int
policy_config_complete (nbdkit_next_config_complete *next,
                        nbdkit_backend *nxdata)
{
  if (config_minimum && config_preferred &&
      config_minimum > config_preferred) {
    nbdkit_error ("blocksize-minimum (%" PRIu32 ") must not be larger than "
                  "blocksize-preferred (%" PRIu32 ")",
                  config_minimum, config_preferred);
    return -1;
  }
  if (config_maximum && config_preferred &&
      config_preferred > config_maximum) {
    nbdkit_error ("blocksize-preferred (%" PRIu32 ") must not be larger than "
                  "blocksize-maximum (%" PRIu32 ")",
                  config_preferred, config_maximum);
    return -1;
  }
  if (config_maximum && config_minimum &&
      (config_maximum < config_minimum ||
       (config_maximum != NO_MAXIMUM && config_maximum % config_minimum))) {
    nbdkit_error ("blocksize-maximum (%" PRIu32 ") must be a multiple of "
                  "blocksize-minimum (%" PRIu32 ")",
                  config_maximum, config_minimum);
    return -1;
  }
  if (write_disconnect && config_minimum &&
      write_disconnect < config_minimum) {
    nbdkit_error ("blocksize-write-disconnect (%" PRIu32 ") must not be "
                  "smaller than blocksize-minimum (%" PRIu32 ")",
                  write_disconnect, config_minimum);
    return -1;
  }
  return next (nxdata);
}

static void *
policy_open (nbdkit_next_open *next, nbdkit_context *context,
             int readonly, const char *exportname, int is_tls)
{
  struct handle *h;

  if (next (context, readonly, exportname) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (h == NULL)
    nbdkit_error ("calloc: %m");
  return h;
}

static void
policy_close (void *handle)
{
  free (handle);
}

/* The largest power of 2 not above V (V > 0). */
static uint32_t
power_of_2_below (uint32_t v)
{
  return UINT32_C (1) << (31 - __builtin_clz (v));
}

/* Start from the plugin's constraints (or the protocol's defaults if it
 * has none), replace those given on the command line, and bring an
 * unconfigured preferred size inside [minimum, maximum].
 */
static int
policy_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;

  if (next->block_size (next, &h->minimum, &h->preferred, &h->maximum) == -1)
    return -1;
  if (!config_minimum && !config_preferred && !config_maximum)
    return 0;                   /* advertise what the plugin does */
  if (h->minimum == 0) {
    h->minimum = DEFAULT_MINIMUM;
    h->preferred = DEFAULT_PREFERRED;
    h->maximum = NO_MAXIMUM;
  }
  if (config_minimum)
    h->minimum = config_minimum;
  if (config_maximum)
    h->maximum = config_maximum;
  if (config_preferred)
    h->preferred = config_preferred;
  else {
    h->preferred = MAX (h->preferred, MAX (h->minimum, MIN_PREFERRED));
    if (h->preferred > h->maximum)
      h->preferred = power_of_2_below (h->maximum);
  }
  if (h->minimum > h->preferred || h->preferred > h->maximum ||
      (h->maximum != NO_MAXIMUM && h->maximum % h->minimum)) {
    nbdkit_error ("blocksize-policy: the plugin's block size constraints "
                  "do not fit the ones given: minimum %" PRIu32
                  ", preferred %" PRIu32 ", maximum %" PRIu32,
                  h->minimum, h->preferred, h->maximum);
    return -1;
  }
  return 0;
}

static int
policy_block_size (nbdkit_next *next, void *handle, uint32_t *minimum,
                   uint32_t *preferred, uint32_t *maximum)
{
  struct handle *h = handle;

  *minimum = h->minimum;
  *preferred = h->preferred;
  *maximum = h->maximum;
  return 0;
}

/* With blocksize-error-policy=error, whether the request keeps to the
 * constraints; HAS_PAYLOAD requests are also bound by the maximum.
 */
static bool
request_ok (const struct handle *h, const char *what, uint32_t count,
            uint64_t offset, bool has_payload, int *err)
{
  if (error_policy == POLICY_ALLOW || h->minimum == 0)
    return true;
  if (!IS_ALIGNED (count | offset, h->minimum)) {
    nbdkit_error ("client %s request rejected: offset %" PRIu64
                  " or count %" PRIu32 " is not a multiple of the minimum "
                  "block size %" PRIu32, what, offset, count, h->minimum);
    *err = EINVAL;
    return false;
  }
  if (has_payload && count > h->maximum) {
    nbdkit_error ("client %s request rejected: count %" PRIu32 " is larger "
                  "than the maximum block size %" PRIu32,
                  what, count, h->maximum);
    *err = EINVAL;
    return false;
  }
  return true;
}

static int
policy_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
              uint64_t offset, uint32_t flags, int *err)
{
  if (!request_ok (handle, "pread", count, offset, true, err))
    return -1;
  return next->pread (next, buf, count, offset, flags, err);
}

static int
policy_pwrite (nbdkit_next *next, void *handle, const void *buf,
               uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  if (write_disconnect && count > write_disconnect) {
    nbdkit_error ("client write of %" PRIu32 " bytes is larger than "
                  "blocksize-write-disconnect=%" PRIu32 ": disconnecting",
                  count, write_disconnect);
    nbdkit_disconnect (1);
    *err = ESHUTDOWN;
    return -1;
  }
  if (!request_ok (handle, "pwrite", count, offset, true, err))
    return -1;
  return next->pwrite (next, buf, count, offset, flags, err);
}

static int
policy_trim (nbdkit_next *next, void *handle, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  if (!request_ok (handle, "trim", count, offset, false, err))
    return -1;
  return next->trim (next, count, offset, flags, err);
}

static int
policy_zero (nbdkit_next *next, void *handle, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  if (!request_ok (handle, "zero", count, offset, false, err))
    return -1;
  return next->zero (next, count, offset, flags, err);
}

static int
policy_extents (nbdkit_next *next, void *handle, uint32_t count,
                uint64_t offset, uint32_t flags,
                struct nbdkit_extents *extents, int *err)
{
  if (!request_ok (handle, "extents", count, offset, false, err))
    return -1;
  return next->extents (next, count, offset, flags, extents, err);
}

static int
policy_cache (nbdkit_next *next, void *handle, uint32_t count,
              uint64_t offset, uint32_t flags, int *err)
{
  if (!request_ok (handle, "cache", count, offset, false, err))
    return -1;
  return next->cache (next, count, offset, flags, err);
}

static struct nbdkit_filter filter = {
  .name              = "blocksize-policy",
  .longname          = "nbdkit blocksize policy filter",
  .version           = PACKAGE_VERSION,
  .description       = "Advertise block size constraints and enforce them",
  .config            = policy_config,
  .config_complete   = policy_config_complete,
  .config_help       = policy_config_help,
  .open              = policy_open,
  .close             = policy_close,
  .prepare           = policy_prepare,
  .block_size        = policy_block_size,
  .pread             = policy_pread,
  .pwrite            = policy_pwrite,
  .trim              = policy_trim,
  .zero              = policy_zero,
  .extents           = policy_extents,
  .cache             = policy_cache,
};

NBDKIT_REGISTER_FILTER (filter)
