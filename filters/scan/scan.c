/* SPDX-License-Identifier: BSD-3-Clause
 * The scan filter: while a client is connected to the default export, a
 * background thread sends cache (prefetch) requests across the whole
 * disk in order, skipping ahead of the client's reads.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"

/* scan-ahead=: jump past the client's reads (default true). */
static bool scan_ahead = true;

/* scan-clock=: a new client resumes where the last one stopped, rather
 * than at the start of the disk (default true).
 */
static bool scan_clock = true;

/* scan-forever=: start again after reaching the end (default false). */
static bool scan_forever = false;

/* scan-size=: bytes per cache request, a power of 2. */
static uint32_t scan_size = 2 * 1024 * 1024;
#define MIN_SCAN_SIZE 512
#define MAX_SCAN_SIZE (1024 * 1024 * 1024)

/* Between passes of scan-forever, so that a plugin whose cache costs
 * nothing does not keep a CPU busy.
 */
#define PASS_PAUSE_NS 100000000

/* False when the thread model does not allow scanning at all. */
static bool enabled = true;

/* Where the scan had got to, shared by all connections (scan-clock). */
static pthread_mutex_t clock_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t clock_offset;

/* One connection.  The thread uses next, which stays valid until
 * scan_close, where the thread is stopped and joined.
 */
struct handle {
  bool is_default_export;
  nbdkit_next *next;
  uint64_t size;
  pthread_t thread;
  bool running;
  pthread_mutex_t lock;          /* protects the fields below */
  pthread_cond_t wake;           /* signalled when stop is set */
  bool stop;
  uint64_t skip_to;              /* scan-ahead target, 0 if none */
};

static int
parse_bool (const char *key, const char *value, bool *r)
{
  int v = nbdkit_parse_bool (value);

  if (v == -1) {
    nbdkit_error ("%s=%s: expected a boolean (true/false)", key, value);
    return -1;
  }
  *r = v;
  return 0;
}

static int
scan_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
             const char *key, const char *value)
{
  if (strcmp (key, "scan-ahead") == 0)
    return parse_bool (key, value, &scan_ahead);
  if (strcmp (key, "scan-clock") == 0)
    return parse_bool (key, value, &scan_clock);
  if (strcmp (key, "scan-forever") == 0)
    return parse_bool (key, value, &scan_forever);
  if (strcmp (key, "scan-size") == 0) {
    int64_t v = nbdkit_parse_size (value);

    if (v == -1) {
      nbdkit_error ("scan-size=%s: cannot parse the size", value);
      return -1;
    }
    if (v < MIN_SCAN_SIZE || v > MAX_SCAN_SIZE || !is_power_of_2 (v)) {
      nbdkit_error ("scan-size=%s: must be a power of 2 from %d to %d",
                    value, MIN_SCAN_SIZE, MAX_SCAN_SIZE);
      return -1;
    }
    scan_size = v;
    return 0;
  }
  return next (nxdata, key, value);
}

#define scan_config_help \
  "scan-ahead=false     Do not skip ahead of the client's reads.\n" \
  "scan-clock=false     Start each client's scan at the beginning.\n" \
  "scan-forever=true    Scan again and again while clients are connected.\n" \
  "scan-size=<NN>       Size of each prefetch request (default 2M)."

/* Prefetching in the background needs requests in parallel. */
static int
scan_get_ready (int thread_model)
{
  if (thread_model != NBDKIT_THREAD_MODEL_PARALLEL) {
    nbdkit_error ("scan: warning: the thread model is not parallel, "
                  "so this filter does nothing");
    enabled = false;
  }
  return 0;
}

static void *
scan_open (nbdkit_next_open *next, nbdkit_context *context,
           int readonly, const char *exportname, int is_tls)
{
  struct handle *h;

  if (next (context, readonly, exportname) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  h->is_default_export = exportname[0] == '\0';
  pthread_mutex_init (&h->lock, NULL);
  pthread_cond_init (&h->wake, NULL);
  return h;
}

/* Sleep for the pause between passes unless told to stop first.
 * Called and returns with h->lock held.
 */
static void
pause_between_passes (struct handle *h)
{
  struct timespec until;

  clock_gettime (CLOCK_REALTIME, &until);
  until.tv_nsec += PASS_PAUSE_NS;
  if (until.tv_nsec >= 1000000000) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000;
  }
  while (!h->stop &&
         pthread_cond_timedwait (&h->wake, &h->lock, &until) != ETIMEDOUT)
    ;
}

static void *
scan_thread (void *arg)
{
  struct handle *h = arg;
  uint64_t offset = 0;
  int err;

  if (scan_clock) {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&clock_lock);
    offset = clock_offset;
  }
  nbdkit_debug ("scan: starting at %" PRIu64, offset);

  for (;;) {
    uint32_t n;

    {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&h->lock);
      if (h->stop)
        break;
      if (h->skip_to > offset)
        offset = h->skip_to;
      h->skip_to = 0;
      if (offset >= h->size) {
        if (!scan_forever)
          break;
        offset = 0;
        pause_between_passes (h);
        continue;
      }
    }

    n = MIN ((uint64_t) scan_size, h->size - offset);
    if (h->next->cache (h->next, n, offset, 0, &err) == -1) {
      nbdkit_debug ("scan: cache at %" PRIu64 " failed (%s), stopping",
                    offset, strerror (err));
      break;
    }
    offset += n;
    if (scan_clock) {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&clock_lock);
      clock_offset = offset;
    }
  }
  nbdkit_debug ("scan: stopped at %" PRIu64, offset);
  return NULL;
}

/* Start the scan once the connection is ready to take requests. */
static int
scan_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;
  static bool warned;
  int64_t size;
  int r;

  if (!enabled || !h->is_default_export)
    return 0;
  size = next->get_size (next);
  if (size == -1)
    return -1;
  r = next->can_cache (next);
  if (r == -1)
    return -1;
  if (r == NBDKIT_CACHE_NONE) {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&clock_lock);
    if (!warned)
      nbdkit_error ("scan: warning: the plugin cannot prefetch (no cache "
                    "support), so this filter does nothing; add "
                    "--filter=cache after it");
    warned = true;
    return 0;
  }

  h->next = next;
  h->size = size;
  r = pthread_create (&h->thread, NULL, scan_thread, h);
  if (r != 0) {
    errno = r;
    nbdkit_error ("scan: pthread_create: %m");
    return -1;
  }
  h->running = true;
  return 0;
}

/* Stop and join the thread: it must not use next after this. */
static void
stop_scan (struct handle *h)
{
  if (!h->running)
    return;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&h->lock);
    h->stop = true;
    pthread_cond_signal (&h->wake);
  }
  pthread_join (h->thread, NULL);
  h->running = false;
}

static int
scan_finalize (nbdkit_next *next, void *handle)
{
  stop_scan (handle);
  return 0;
}

/* Also here: finalize is not called when a client vanishes. */
static void
scan_close (void *handle)
{
  struct handle *h = handle;

  stop_scan (h);
  pthread_cond_destroy (&h->wake);
  pthread_mutex_destroy (&h->lock);
  free (h);
}

/* scan-ahead: continue the scan from the block where the read ends. */
static int
scan_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;

  if (scan_ahead && h->running) {
    uint64_t target = ROUND_DOWN (offset + count, (uint64_t) scan_size);
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&h->lock);
    if (target > h->skip_to)
      h->skip_to = target;
  }
  return next->pread (next, buf, count, offset, flags, err);
}

static struct nbdkit_filter filter = {
  .name              = "scan",
  .longname          = "nbdkit scan filter",
  .version           = PACKAGE_VERSION,
  .description       = "Prefetch the whole disk in the background",
  .config            = scan_config,
  .config_help       = scan_config_help,
  .get_ready         = scan_get_ready,
  .open              = scan_open,
  .prepare           = scan_prepare,
  .finalize          = scan_finalize,
  .close             = scan_close,
  .pread             = scan_pread,
};

NBDKIT_REGISTER_FILTER (filter)
