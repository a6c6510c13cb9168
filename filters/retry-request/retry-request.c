/* SPDX-License-Identifier: BSD-3-Clause
 * The retry-request filter: repeat a failed request (and optionally a
 * failed open) a few times after a delay, on the same connection to the
 * plugin.  Lighter than the retry filter, which reopens the plugin.
 */

#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

/* retry-request-retries=: how many times a request is repeated. */
static unsigned retries = 2;

/* retry-request-delay=: seconds to wait before each retry. */
static double retry_delay = 2;

/* retry-request-open=: treat a failed open like a failed request. */
static bool retry_open = true;

/* The longest delay accepted, to catch typing mistakes (one day). */
#define MAX_DELAY 86400.

static int
rr_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
           const char *key, const char *value)
{
  char *end;
  int r;

  if (strcmp (key, "retry-request-retries") == 0)
    return nbdkit_parse_unsigned (key, value, &retries);
  if (strcmp (key, "retry-request-delay") == 0) {
    errno = 0;
    retry_delay = strtod (value, &end);
    /* Written so that NaN fails too. */
    if (errno || end == value || *end != '\0' ||
        !(retry_delay >= 0 && retry_delay <= MAX_DELAY)) {
      nbdkit_error ("retry-request-delay=%s: expected a number of seconds "
                    "from 0 to %g", value, MAX_DELAY);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "retry-request-open") == 0) {
    r = nbdkit_parse_bool (value);
    if (r == -1) {
      nbdkit_error ("retry-request-open: expected a boolean, got '%s'",
                    value);
      return -1;
    }
    retry_open = r;
    return 0;
  }
  return next (nxdata, key, value);
}

#define rr_config_help \
  "retry-request-retries=<N>     Times to retry a request (default 2).\n" \
  "retry-request-delay=<SECS>    Seconds before each retry (default 2).\n" \
  "retry-request-open=<BOOL>     Retry opening the plugin (default yes)."

static int
sleep_seconds (double secs)
{
  unsigned whole = (unsigned) secs;

  return nbdkit_nanosleep (whole, (unsigned) ((secs - whole) * 1e9));
}

/* Say whether to try again after attempt ATTEMPT (from 0) of WHAT
 * failed, waiting first.
 */
static bool
again (const char *what, unsigned attempt, int *err)
{
  if (attempt >= retries) {
    nbdkit_error ("retry-request: %s failed, giving up after %u retries",
                  what, retries);
    return false;
  }
  nbdkit_debug ("retry-request: %s failed, retry %u of %u in %g seconds",
                what, attempt + 1, retries, retry_delay);
  if (sleep_seconds (retry_delay) == -1) {
    if (err)
      *err = ESHUTDOWN;
    return false;
  }
  return true;
}

/* The first attempt goes through `next`, which may be called only
 * once; later ones open a context by hand and link it in its place.
 */
static void *
rr_open (nbdkit_next_open *next, nbdkit_context *context,
         int readonly, const char *exportname, int is_tls)
{
  nbdkit_next *n;
  unsigned attempt;

  if (next (context, readonly, exportname) == 0)
    return NBDKIT_HANDLE_NOT_NEEDED;
  if (!retry_open)
    return NULL;
  for (attempt = 0; again ("open", attempt, NULL); ++attempt) {
    n = nbdkit_next_context_open (nbdkit_context_get_backend (context),
                                  readonly, exportname, 0);
    if (n) {
      nbdkit_context_set_next (context, n);
      nbdkit_debug ("retry-request: open succeeded after %u retries",
                    attempt + 1);
      return NBDKIT_HANDLE_NOT_NEEDED;
    }
  }
  return NULL;
}

/* Errors that repeating the request cannot cure. */
static bool
is_permanent (uint32_t flags, int err)
{
  return err == EROFS ||
    (err == ENOTSUP && (flags & NBDKIT_FLAG_FAST_ZERO));
}

/* Repeat CALL (an expression using next and err) until it succeeds or
 * the retries run out.
 */
#define RETRY(what, flags, call)                                        \
  do {                                                                  \
    unsigned attempt_;                                                  \
    for (attempt_ = 0; ; ++attempt_) {                                  \
      if ((call) == 0) {                                                \
        if (attempt_ > 0)                                               \
          nbdkit_debug ("retry-request: %s succeeded after %u retries", \
                        (what), attempt_);                              \
        return 0;                                                       \
      }                                                                 \
      if (is_permanent ((flags), *err) || !again ((what), attempt_, err)) \
        return -1;                                                      \
    }                                                                   \
  } while (0)

static int
rr_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
          uint64_t offset, uint32_t flags, int *err)
{
  RETRY ("pread", flags,
         next->pread (next, buf, count, offset, flags, err));
}

static int
rr_pwrite (nbdkit_next *next, void *handle, const void *buf,
           uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  RETRY ("pwrite", flags,
         next->pwrite (next, buf, count, offset, flags, err));
}

static int
rr_trim (nbdkit_next *next, void *handle, uint32_t count,
         uint64_t offset, uint32_t flags, int *err)
{
  RETRY ("trim", flags, next->trim (next, count, offset, flags, err));
}

static int
rr_zero (nbdkit_next *next, void *handle, uint32_t count,
         uint64_t offset, uint32_t flags, int *err)
{
  RETRY ("zero", flags, next->zero (next, count, offset, flags, err));
}

static int
rr_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  RETRY ("flush", flags, next->flush (next, flags, err));
}

static int
rr_cache (nbdkit_next *next, void *handle, uint32_t count,
          uint64_t offset, uint32_t flags, int *err)
{
  RETRY ("cache", flags, next->cache (next, count, offset, flags, err));
}

/* One attempt at extents, into a list of its own so that a failed
 * attempt leaves nothing behind in the client's list.
 */
static int
extents_once (nbdkit_next *next, uint32_t count, uint64_t offset,
              uint32_t flags, struct nbdkit_extents *extents, int *err)
{
  struct nbdkit_extents *sub;
  int64_t size = next->get_size (next);
  size_t i;
  int r = -1;

  if (size == -1) {
    *err = EIO;
    return -1;
  }
  sub = nbdkit_extents_new (offset, size);
  if (sub == NULL) {
    *err = errno;
    return -1;
  }
  if (next->extents (next, count, offset, flags, sub, err) == -1)
    goto out;
  for (i = 0; i < nbdkit_extents_count (sub); ++i) {
    struct nbdkit_extent e = nbdkit_get_extent (sub, i);
    if (nbdkit_add_extent (extents, e.offset, e.length, e.type) == -1) {
      *err = errno;
      goto out;
    }
  }
  r = 0;
 out:
  nbdkit_extents_free (sub);
  return r;
}

static int
rr_extents (nbdkit_next *next, void *handle, uint32_t count,
            uint64_t offset, uint32_t flags,
            struct nbdkit_extents *extents, int *err)
{
  RETRY ("extents", flags,
         extents_once (next, count, offset, flags, extents, err));
}

static struct nbdkit_filter filter = {
  .name              = "retry-request",
  .longname          = "nbdkit retry-request filter",
  .version           = PACKAGE_VERSION,
  .description       = "Retry single requests that fail",
  .config            = rr_config,
  .config_help       = rr_config_help,
  .open              = rr_open,
  .pread             = rr_pread,
  .pwrite            = rr_pwrite,
  .trim              = rr_trim,
  .zero              = rr_zero,
  .flush             = rr_flush,
  .cache             = rr_cache,
  .extents           = rr_extents,
};

NBDKIT_REGISTER_FILTER (filter)
