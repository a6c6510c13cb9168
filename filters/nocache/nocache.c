/* SPDX-License-Identifier: BSD-3-Clause
 * The nocache filter: hides, emulates or ignores NBD_CMD_CACHE, to
 * measure what the plugin's prefetching is worth.
 */

#include <config.h>

#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

/* cachemode=: how NBD_CMD_CACHE is handled. */
static enum cache_mode {
  CACHE_NONE,                   /* not advertised */
  CACHE_EMULATE,                /* advertised, done by reading */
  CACHE_NOP,                    /* advertised, accepted and ignored */
} cachemode = CACHE_NONE;

static int
nocache_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                const char *key, const char *value)
{
  if (strcmp (key, "cachemode") == 0) {
    if (strcmp (value, "none") == 0)
      cachemode = CACHE_NONE;
    else if (strcmp (value, "emulate") == 0)
      cachemode = CACHE_EMULATE;
    else if (strcmp (value, "nop") == 0)
      cachemode = CACHE_NOP;
    else {
      nbdkit_error ("cachemode: unknown mode '%s' "
                    "(expected none, emulate or nop)", value);
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

#define nocache_config_help \
  "cachemode=<MODE>     One of 'none' (default), 'emulate', 'nop'."

static int
nocache_can_cache (nbdkit_next *next, void *handle)
{
  switch (cachemode) {
  case CACHE_NONE:
    return NBDKIT_CACHE_NONE;
  case CACHE_EMULATE:
    /* The server turns each request into reads through this layer. */
    return NBDKIT_CACHE_EMULATE;
  case CACHE_NOP:
    /* Native, so that requests come to nocache_cache and stop there. */
    return NBDKIT_CACHE_NATIVE;
  }
  abort ();
}

static int
nocache_cache (nbdkit_next *next, void *handle, uint32_t count,
               uint64_t offset, uint32_t flags, int *err)
{
  /* Only cachemode=nop advertises a native cache. */
  return 0;
}

static struct nbdkit_filter filter = {
  .name              = "nocache",
  .longname          = "nbdkit nocache filter",
  .version           = PACKAGE_VERSION,
  .description       = "Disable, emulate or ignore cache requests",
  .config            = nocache_config,
  .config_help       = nocache_config_help,
  .can_cache         = nocache_can_cache,
  .cache             = nocache_cache,
};

NBDKIT_REGISTER_FILTER (filter)
