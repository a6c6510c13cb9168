/* SPDX-License-Identifier: BSD-3-Clause
 * The retry filter: when a request fails, close the layers behind, open
 * them again and repeat the request, a number of times with a delay in
 * between, so that a plugin whose connection to its data broke (a
 * network drop, a restarted server) recovers without the client noticing.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"

/* retries=: how many times a request is repeated before failing. */
static unsigned retries = 5;

/* retry-delay=: seconds to wait before the first retry. */
static double retry_delay = 2;

/* retry-exponential=: double the delay after every retry. */
static bool retry_exponential = true;

/* retry-readonly=: reopen the layers behind read-only after a failure. */
static bool retry_readonly = false;

/* The longest delay accepted, to catch typing mistakes (one day). */
#define MAX_DELAY 86400.

static int
parse_bool_param (const char *key, const char *value, bool *ret)
{
  int r = nbdkit_parse_bool (value);

  if (r == -1) {
    nbdkit_error ("%s: expected a boolean, got '%s'", key, value);
    return -1;
  }
  *ret = r;
  return 0;
}

static int
retry_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
              const char *key, const char *value)
{
  char *end;

  if (strcmp (key, "retries") == 0)
    return nbdkit_parse_unsigned ("retries", value, &retries);
  if (strcmp (key, "retry-delay") == 0) {
    errno = 0;
    retry_delay = strtod (value, &end);
    /* Written so that NaN fails too. */
    if (errno || end == value || *end != '\0' ||
        !(retry_delay >= 0 && retry_delay <= MAX_DELAY)) {
      nbdkit_error ("retry-delay=%s: expected a number of seconds from 0 "
                    "to %g", value, MAX_DELAY);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "retry-exponential") == 0)
    return parse_bool_param (key, value, &retry_exponential);
  if (strcmp (key, "retry-readonly") == 0)
    return parse_bool_param (key, value, &retry_readonly);
  return next (nxdata, key, value);
}

#define retry_config_help \
  "retries=<N>              Times to retry a failed request (default 5).\n" \
  "retry-delay=<SECS>       Seconds before the first retry (default 2).\n" \
  "retry-exponential=<BOOL> Double the delay each time (default yes).\n" \
  "retry-readonly=<BOOL>    Reopen read-only after a failure (default no)."

/* One client connection.  Requests use `next` while holding `lock` for
 * reading; a reopen replaces it while holding `lock` for writing, so no
 * request is using the old context when it is closed.
 */
struct retry_handle {
  nbdkit_context *context;      /* this filter's context, for set_next */
  char *exportname;
  int readonly;                 /* as the client opened it */
  pthread_rwlock_t lock;
  nbdkit_next *next;            /* NULL if the last reopen failed */
  uint64_t generation;          /* counts reopens */
  int64_t size;
};

static void *
retry_open (nbdkit_next_open *next, nbdkit_context *context,
            int readonly, const char *exportname, int is_tls)
{
  struct retry_handle *h;
  pthread_rwlockattr_t attr;

  if (next (context, readonly, exportname) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  h->exportname = strdup (exportname);
  if (h->exportname == NULL) {
    nbdkit_error ("strdup: %m");
    free (h);
    return NULL;
  }
  /* Writers first: a reopen must not wait behind a stream of requests. */
  pthread_rwlockattr_init (&attr);
  pthread_rwlockattr_setkind_np (&attr,
                                 PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init (&h->lock, &attr);
  pthread_rwlockattr_destroy (&attr);
  h->context = context;
  h->readonly = readonly;
  h->size = -1;
  return h;
}

static void
retry_close (void *handle)
{
  struct retry_handle *h = handle;

  pthread_rwlock_destroy (&h->lock);
  free (h->exportname);
  free (h);
}

/* Ask NEXT everything the data path looks at, so its answers are known
 * (the server asserts that before passing a request on).
 */
static int
ask_capabilities (nbdkit_next *next)
{
  if (next->get_size (next) == -1 || next->can_write (next) == -1 ||
      next->can_flush (next) == -1 || next->can_trim (next) == -1 ||
      next->can_zero (next) == -1 || next->can_fast_zero (next) == -1 ||
      next->can_fua (next) == -1 || next->can_extents (next) == -1 ||
      next->can_cache (next) == -1)
    return -1;
  return 0;
}

static int
retry_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct retry_handle *h = handle;

  if (ask_capabilities (next) == -1)
    return -1;
  h->next = next;
  h->size = next->get_size (next);
  return 0;
}

/* With the lock held for writing: close the layers behind and open
 * them again.  On failure h->next is left NULL, and the next attempt
 * of the request tries again.
 */
static void
reopen_locked (struct retry_handle *h)
{
  nbdkit_next *old, *new;
  int readonly = h->readonly || retry_readonly;

  h->generation++;
  old = nbdkit_context_set_next (h->context, NULL);
  h->next = NULL;
  if (old) {
    old->finalize (old);        /* errors were logged; carry on */
    nbdkit_next_context_close (old);
  }

  nbdkit_debug ("retry: reopening the plugin%s",
                readonly && !h->readonly ? " read-only" : "");
  new = nbdkit_next_context_open (nbdkit_context_get_backend (h->context),
                                  readonly, h->exportname, 0);
  if (new == NULL) {
    nbdkit_error ("retry: reopening the plugin failed");
    return;
  }
  if (new->prepare (new) == -1 || ask_capabilities (new) == -1) {
    nbdkit_error ("retry: preparing the reopened plugin failed");
    new->finalize (new);
    nbdkit_next_context_close (new);
    return;
  }
  if (new->get_size (new) != h->size) {
    nbdkit_error ("retry: the reopened plugin has another size (%" PRIi64
                  " bytes, was %" PRIi64 ")", new->get_size (new), h->size);
    new->finalize (new);
    nbdkit_next_context_close (new);
    return;
  }
  nbdkit_context_set_next (h->context, new);
  h->next = new;
}

/* Reopen, unless another request already did since GENERATION. */
static void
reopen (struct retry_handle *h, uint64_t generation)
{
  ACQUIRE_WRLOCK_FOR_CURRENT_SCOPE (&h->lock);

  if (h->generation == generation)
    reopen_locked (h);
}

/* The requests this filter retries, described so one loop serves all. */
enum op { OP_PREAD, OP_PWRITE, OP_TRIM, OP_ZERO, OP_FLUSH, OP_EXTENTS,
          OP_CACHE };

static const char *const op_names[] = {
  [OP_PREAD] = "pread", [OP_PWRITE] = "pwrite", [OP_TRIM] = "trim",
  [OP_ZERO] = "zero", [OP_FLUSH] = "flush", [OP_EXTENTS] = "extents",
  [OP_CACHE] = "cache",
};

struct request {
  enum op op;
  void *buf;                    /* pread, pwrite */
  uint32_t count;
  uint64_t offset;
  uint32_t flags;
  struct nbdkit_extents *extents;
};

/* Whether the current (possibly reopened) context can take the request:
 * it may have been reopened read-only, or without a feature.
 */
static int
check_next (nbdkit_next *next, const struct request *req, int *err)
{
  bool write = req->op == OP_PWRITE || req->op == OP_TRIM ||
    req->op == OP_ZERO;

  if (next == NULL) {
    nbdkit_error ("retry: the plugin is not open");
    *err = EIO;
    return -1;
  }
  if (write && next->can_write (next) != 1) {
    *err = EROFS;
    return -1;
  }
  if ((req->op == OP_TRIM && next->can_trim (next) != 1) ||
      (req->op == OP_ZERO && next->can_zero (next) <= NBDKIT_ZERO_NONE) ||
      (req->op == OP_FLUSH && next->can_flush (next) != 1) ||
      (req->op == OP_CACHE && next->can_cache (next) <= NBDKIT_CACHE_NONE) ||
      ((req->flags & NBDKIT_FLAG_FUA) &&
       next->can_fua (next) <= NBDKIT_FUA_NONE)) {
    nbdkit_error ("retry: the reopened plugin cannot %s", op_names[req->op]);
    *err = EIO;
    return -1;
  }
  if ((req->flags & NBDKIT_FLAG_FAST_ZERO) &&
      next->can_fast_zero (next) != 1) {
    *err = ENOTSUP;
    return -1;
  }
  return 0;
}

/* Extents go to a list of their own for each attempt, so a failed
 * attempt leaves nothing behind in the client's list.
 */
static int
call_extents (nbdkit_next *next, const struct request *req, int64_t size,
              int *err)
{
  struct nbdkit_extents *sub;
  size_t i;
  int r = -1;

  sub = nbdkit_extents_new (req->offset, size);
  if (sub == NULL) {
    *err = errno;
    return -1;
  }
  if (next->extents (next, req->count, req->offset, req->flags, sub,
                     err) == -1)
    goto out;
  for (i = 0; i < nbdkit_extents_count (sub); ++i) {
    struct nbdkit_extent e = nbdkit_get_extent (sub, i);
    if (nbdkit_add_extent (req->extents, e.offset, e.length, e.type) == -1) {
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
call_next (struct retry_handle *h, const struct request *req, int *err)
{
  nbdkit_next *next = h->next;

  if (check_next (next, req, err) == -1)
    return -1;
  switch (req->op) {
  case OP_PREAD:
    return next->pread (next, req->buf, req->count, req->offset, req->flags,
                        err);
  case OP_PWRITE:
    return next->pwrite (next, req->buf, req->count, req->offset,
                         req->flags, err);
  case OP_TRIM:
    return next->trim (next, req->count, req->offset, req->flags, err);
  case OP_ZERO:
    return next->zero (next, req->count, req->offset, req->flags, err);
  case OP_FLUSH:
    return next->flush (next, req->flags, err);
  case OP_EXTENTS:
    return call_extents (next, req, h->size, err);
  case OP_CACHE:
  default:
    return next->cache (next, req->count, req->offset, req->flags, err);
  }
}

/* Errors that reopening cannot cure. */
static bool
is_permanent (const struct request *req, int err)
{
  return err == EROFS ||
    (err == ENOTSUP && (req->flags & NBDKIT_FLAG_FAST_ZERO));
}

static int
sleep_seconds (double secs)
{
  unsigned whole = (unsigned) secs;

  return nbdkit_nanosleep (whole, (unsigned) ((secs - whole) * 1e9));
}

static int
do_retry (struct retry_handle *h, const struct request *req, int *err)
{
  double delay = retry_delay;
  uint64_t generation;
  unsigned attempt;
  int r;

  for (attempt = 0; ; ++attempt) {
    {
      ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&h->lock);
      generation = h->generation;
      r = call_next (h, req, err);
    }
    if (r == 0) {
      if (attempt > 0)
        nbdkit_debug ("retry: %s succeeded after %u retries",
                      op_names[req->op], attempt);
      return 0;
    }
    if (is_permanent (req, *err))
      return -1;
    if (attempt >= retries) {
      nbdkit_error ("retry: %s failed, giving up after %u retries",
                    op_names[req->op], retries);
      return -1;
    }
    nbdkit_debug ("retry: %s failed (%s), retry %u of %u in %g seconds",
                  op_names[req->op], strerror (*err), attempt + 1, retries,
                  delay);
    if (sleep_seconds (delay) == -1) {
      *err = ESHUTDOWN;
      return -1;
    }
    if (retry_exponential)
      delay = MIN (delay * 2, MAX_DELAY);
    reopen (h, generation);
  }
}

static int
retry_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  struct request req = { .op = OP_PREAD, .buf = buf, .count = count,
                         .offset = offset, .flags = flags };
  return do_retry (handle, &req, err);
}

static int
retry_pwrite (nbdkit_next *next, void *handle, const void *buf,
              uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  struct request req = { .op = OP_PWRITE, .buf = (void *) buf,
                         .count = count, .offset = offset, .flags = flags };
  return do_retry (handle, &req, err);
}

static int
retry_trim (nbdkit_next *next, void *handle, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  struct request req = { .op = OP_TRIM, .count = count, .offset = offset,
                         .flags = flags };
  return do_retry (handle, &req, err);
}

static int
retry_zero (nbdkit_next *next, void *handle, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  struct request req = { .op = OP_ZERO, .count = count, .offset = offset,
                         .flags = flags };
  return do_retry (handle, &req, err);
}

static int
retry_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  struct request req = { .op = OP_FLUSH, .flags = flags };
  return do_retry (handle, &req, err);
}

static int
retry_extents (nbdkit_next *next, void *handle, uint32_t count,
               uint64_t offset, uint32_t flags,
               struct nbdkit_extents *extents, int *err)
{
  struct request req = { .op = OP_EXTENTS, .count = count, .offset = offset,
                         .flags = flags, .extents = extents };
  return do_retry (handle, &req, err);
}

static int
retry_cache (nbdkit_next *next, void *handle, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  struct request req = { .op = OP_CACHE, .count = count, .offset = offset,
                         .flags = flags };
  return do_retry (handle, &req, err);
}

static struct nbdkit_filter filter = {
  .name              = "retry",
  .longname          = "nbdkit retry filter",
  .version           = PACKAGE_VERSION,
  .description       = "Reopen the plugin and retry requests that fail",
  .config            = retry_config,
  .config_help       = retry_config_help,
  .open              = retry_open,
  .close             = retry_close,
  .prepare           = retry_prepare,
  .pread             = retry_pread,
  .pwrite            = retry_pwrite,
  .trim              = retry_trim,
  .zero              = retry_zero,
  .flush             = retry_flush,
  .extents           = retry_extents,
  .cache             = retry_cache,
};

NBDKIT_REGISTER_FILTER (filter)
