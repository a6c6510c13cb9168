/* SPDX-License-Identifier: BSD-3-Clause
 * The error filter: fail a chosen fraction of requests with a chosen
 * errno, per operation, optionally only while a trigger file exists, so
 * that clients' error handling can be tested.
 */

#include <config.h>

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include <nbdkit-filter.h>

#include "utils.h"

/* The operations errors can be injected into. */
enum op {
  OP_PREAD, OP_PWRITE, OP_TRIM, OP_ZERO, OP_EXTENTS, OP_CACHE, OP_FLUSH,
  NR_OPS
};

static const char *const op_names[NR_OPS] = {
  [OP_PREAD] = "pread", [OP_PWRITE] = "pwrite", [OP_TRIM] = "trim",
  [OP_ZERO] = "zero", [OP_EXTENTS] = "extents", [OP_CACHE] = "cache",
  [OP_FLUSH] = "flush",
};

/* The errors the NBD protocol can carry ("Error values"). */
static const struct {
  const char *name;
  int value;
} errors[] = {
  { "EPERM", EPERM }, { "EIO", EIO }, { "ENOMEM", ENOMEM },
  { "EINVAL", EINVAL }, { "ENOSPC", ENOSPC }, { "EOVERFLOW", EOVERFLOW },
  { "ENOTSUP", ENOTSUP }, { "ESHUTDOWN", ESHUTDOWN },
};

/* What to inject into one operation: error-OP=, error-OP-rate=,
 * error-OP-file= (or error=, error-rate=, error-file= for all of them).
 * The file is an absolute path, NULL for "always".
 */
struct injection {
  size_t error;                 /* index into errors[] */
  double rate;                  /* 0 (never) .. 1 (always) */
  char *file;
};

static struct injection injections[NR_OPS] = {
  [0 ... NR_OPS - 1] = { .error = 1 /* EIO */, .rate = 0, .file = NULL },
};

static void
error_unload (void)
{
  size_t i;

  for (i = 0; i < NR_OPS; ++i)
    free (injections[i].file);
}

static int
parse_error_name (const char *key, const char *value, size_t *ret)
{
  size_t i;

  for (i = 0; i < ARRAY_SIZE (errors); ++i)
    if (strcasecmp (value, errors[i].name) == 0) {
      *ret = i;
      return 0;
    }
  nbdkit_error ("%s: unknown error name '%s' (expected one of EPERM, EIO, "
                "ENOMEM, EINVAL, ENOSPC, EOVERFLOW, ENOTSUP, ESHUTDOWN)",
                key, value);
  return -1;
}

static int
parse_rate (const char *key, const char *value, double *ret)
{
  if (nbdkit_parse_probability (key, value, ret) == -1)
    return -1;
  if (*ret > 1) {
    nbdkit_error ("%s: rate '%s' is more than 100%%", key, value);
    return -1;
  }
  return 0;
}

/* Set one field (FIELD is "", "-rate" or "-file") of operations
 * [FIRST, LAST).
 */
static int
set_field (const char *key, const char *field, const char *value,
           size_t first, size_t last)
{
  size_t i, error;
  double rate;
  char *file;

  if (strcmp (field, "") == 0) {
    if (parse_error_name (key, value, &error) == -1)
      return -1;
    for (i = first; i < last; ++i)
      injections[i].error = error;
  }
  else if (strcmp (field, "-rate") == 0) {
    if (parse_rate (key, value, &rate) == -1)
      return -1;
    for (i = first; i < last; ++i)
      injections[i].rate = rate;
  }
  else {
    assert (strcmp (field, "-file") == 0);
    for (i = first; i < last; ++i) {
      /* Absolute, because the server changes directory when it forks. */
      file = nbdkit_absolute_path (value);
      if (file == NULL)
        return -1;
      free (injections[i].file);
      injections[i].file = file;
    }
  }
  return 0;
}

static bool
is_field (const char *s)
{
  return strcmp (s, "") == 0 || strcmp (s, "-rate") == 0 ||
    strcmp (s, "-file") == 0;
}

/* Keys are error[-OP][-rate|-file]. */
static int
error_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
              const char *key, const char *value)
{
  const char *rest;
  size_t i, len;

  if (strncmp (key, "error", 5) != 0)
    return next (nxdata, key, value);
  rest = key + 5;
  if (is_field (rest))
    return set_field (key, rest, value, 0, NR_OPS);
  if (rest[0] == '-') {
    for (i = 0; i < NR_OPS; ++i) {
      len = strlen (op_names[i]);
      if (strncmp (rest + 1, op_names[i], len) == 0 &&
          is_field (rest + 1 + len))
        return set_field (key, rest + 1 + len, value, i, i + 1);
    }
  }
  return next (nxdata, key, value);
}

#define error_config_help \
  "error=<ERRNO>            The error to inject (default EIO).\n" \
  "error-rate=<RATE>        Probability of an error, 0..1 or 0%..100%.\n" \
  "error-file=<FILE>        Inject errors only while FILE exists.\n" \
  "The same for one operation only:\n" \
  "  error-pread=, error-pread-rate=, error-pread-file=\n" \
  "  error-pwrite=, error-pwrite-rate=, error-pwrite-file=\n" \
  "  error-trim=, error-trim-rate=, error-trim-file=\n" \
  "  error-zero=, error-zero-rate=, error-zero-file=\n" \
  "  error-extents=, error-extents-rate=, error-extents-file=\n" \
  "  error-cache=, error-cache-rate=, error-cache-file=\n" \
  "  error-flush=, error-flush-rate=, error-flush-file="

/* A small fast generator per thread (xoshiro256**), seeded from the
 * kernel: requests on different threads never share state or a lock.
 */
static __thread uint64_t rng[4];
static __thread bool rng_seeded;

static inline uint64_t
rotl (uint64_t x, int k)
{
  return (x << k) | (x >> (64 - k));
}

static uint64_t
rng_next (void)
{
  uint64_t result = rotl (rng[1] * 5, 7) * 9;
  uint64_t t = rng[1] << 17;

  rng[2] ^= rng[0];
  rng[3] ^= rng[1];
  rng[1] ^= rng[2];
  rng[0] ^= rng[3];
  rng[2] ^= t;
  rng[3] = rotl (rng[3], 45);
  return result;
}

/* A uniform double in [0, 1). */
static double
random_fraction (void)
{
  if (!rng_seeded) {
    if (getrandom (rng, sizeof rng, 0) != sizeof rng) {
      /* Fall back to the clock and the stack address. */
      struct timespec ts;
      clock_gettime (CLOCK_MONOTONIC, &ts);
      rng[0] = ts.tv_nsec | 1;
      rng[1] = ts.tv_sec ^ (uintptr_t) &ts;
      rng[2] = 0x9e3779b97f4a7c15;
      rng[3] = (uintptr_t) &rng;
    }
    rng_seeded = true;
  }
  return (rng_next () >> 11) * 0x1.0p-53;
}

/* Whether to fail this request; if so, log it and set *err. */
static bool
inject (enum op op, int *err)
{
  const struct injection *inj = &injections[op];

  if (inj->rate <= 0)
    return false;
  if (inj->file && access (inj->file, F_OK) == -1)
    return false;
  if (inj->rate < 1 && random_fraction () >= inj->rate)
    return false;
  nbdkit_error ("injecting %s error into %s",
                errors[inj->error].name, op_names[op]);
  *err = errors[inj->error].value;
  return true;
}

static int
error_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  if (inject (OP_PREAD, err))
    return -1;
  return next->pread (next, buf, count, offset, flags, err);
}

static int
error_pwrite (nbdkit_next *next, void *handle, const void *buf,
              uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  if (inject (OP_PWRITE, err))
    return -1;
  return next->pwrite (next, buf, count, offset, flags, err);
}

static int
error_trim (nbdkit_next *next, void *handle, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  if (inject (OP_TRIM, err))
    return -1;
  return next->trim (next, count, offset, flags, err);
}

static int
error_zero (nbdkit_next *next, void *handle, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  if (inject (OP_ZERO, err))
    return -1;
  return next->zero (next, count, offset, flags, err);
}

static int
error_extents (nbdkit_next *next, void *handle, uint32_t count,
               uint64_t offset, uint32_t flags,
               struct nbdkit_extents *extents, int *err)
{
  if (inject (OP_EXTENTS, err))
    return -1;
  return next->extents (next, count, offset, flags, extents, err);
}

static int
error_cache (nbdkit_next *next, void *handle, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  if (inject (OP_CACHE, err))
    return -1;
  return next->cache (next, count, offset, flags, err);
}

static int
error_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  if (inject (OP_FLUSH, err))
    return -1;
  return next->flush (next, flags, err);
}

static struct nbdkit_filter filter = {
  .name              = "error",
  .longname          = "nbdkit error filter",
  .version           = PACKAGE_VERSION,
  .description       = "Inject errors into requests, for testing clients",
  .unload            = error_unload,
  .config            = error_config,
  .config_help       = error_config_help,
  .pread             = error_pread,
  .pwrite            = error_pwrite,
  .trim              = error_trim,
  .zero              = error_zero,
  .extents           = error_extents,
  .cache             = error_cache,
  .flush             = error_flush,
};

NBDKIT_REGISTER_FILTER (filter)
