/* SPDX-License-Identifier: BSD-3-Clause
 * The rate filter: limits the bandwidth of reads and writes, for the
 * whole server and/or per connection, with token buckets.  Limits can be
 * changed while running by rewriting a file.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nbdkit-filter.h>

#include "cleanup.h"

/* A token bucket holding bits.  It fills at RATE bits per second up to
 * CAPACITY; a request takes its size from it and, when that leaves the
 * bucket in debt, waits until the debt would be paid back.
 */
struct bucket {
  pthread_mutex_t lock;
  uint64_t rate;                /* bits per second, 0 = unlimited */
  double capacity;              /* bits */
  double level;                 /* bits; negative while in debt */
  struct timespec last;         /* when level was last brought up to date */
  bool started;
};

/* A limit: the value from the command line, and a file that may replace
 * it while the server runs.
 */
struct limit {
  const char *what;             /* parameter name, for messages */
  uint64_t rate;                /* bits per second, 0 = unlimited */
  char *file;                   /* absolute path, or NULL */
  struct timespec checked;      /* when the file was last read ... */
  bool ever_checked;            /* ... if it ever was */
  pthread_mutex_t lock;
};

/* rate= / rate-file= and connection-rate= / connection-rate-file=. */
static struct limit server_limit = {
  .what = "rate", .lock = PTHREAD_MUTEX_INITIALIZER,
};
static struct limit connection_limit = {
  .what = "connection-rate", .lock = PTHREAD_MUTEX_INITIALIZER,
};

/* burstiness=: the bucket capacity, in seconds at the full rate. */
static double burstiness = 2.0;

/* How often the rate files are read again, in seconds. */
#define RECHECK_INTERVAL 1.0

/* Reads and writes are limited separately. */
static struct bucket server_read = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct bucket server_write = { .lock = PTHREAD_MUTEX_INITIALIZER };

struct handle {
  struct bucket read, write;
};

static void
rate_unload (void)
{
  free (server_limit.file);
  free (connection_limit.file);
}

/* BITSPERSEC: a number with an optional K, M, G... suffix. */
static int
parse_rate (const char *what, const char *value, uint64_t *rate)
{
  int64_t r = nbdkit_parse_size (value);

  if (r == -1) {
    nbdkit_error ("%s=%s: could not parse the rate", what, value);
    return -1;
  }
  *rate = r;
  return 0;
}

static int
rate_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
             const char *key, const char *value)
{
  if (strcmp (key, "rate") == 0)
    return parse_rate (key, value, &server_limit.rate);
  if (strcmp (key, "connection-rate") == 0)
    return parse_rate (key, value, &connection_limit.rate);
  if (strcmp (key, "rate-file") == 0 ||
      strcmp (key, "connection-rate-file") == 0) {
    struct limit *l = key[0] == 'r' ? &server_limit : &connection_limit;
    free (l->file);
    l->file = nbdkit_absolute_path (value);
    return l->file ? 0 : -1;
  }
  if (strcmp (key, "burstiness") == 0) {
    char *end;
    errno = 0;
    burstiness = strtod (value, &end);
    if (errno || end == value || *end != '\0' || !isfinite (burstiness) ||
        burstiness <= 0) {
      nbdkit_error ("burstiness: '%s' is not a positive number of seconds",
                    value);
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

#define rate_config_help \
  "rate=<BITSPERSEC>               Limit the whole server's bandwidth.\n" \
  "connection-rate=<BITSPERSEC>    Limit each connection's bandwidth.\n" \
  "rate-file=<FILE>                Read the server limit from FILE.\n" \
  "connection-rate-file=<FILE>     Read the connection limit from FILE.\n" \
  "burstiness=<SECS>               Bucket capacity in seconds (default 2)."

static double
elapsed (const struct timespec *from, const struct timespec *to)
{
  return (to->tv_sec - from->tv_sec) + (to->tv_nsec - from->tv_nsec) / 1e9;
}

/* The limit now in force: re-read the file at most once a second.  A
 * missing or unreadable file keeps the previous value.
 */
static uint64_t
current_rate (struct limit *l)
{
  struct timespec now;
  CLEANUP_FREE char *line = NULL;
  size_t len = 0;
  uint64_t r;
  FILE *fp;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&l->lock);
  if (l->file == NULL)
    return l->rate;
  clock_gettime (CLOCK_MONOTONIC, &now);
  if (l->ever_checked && elapsed (&l->checked, &now) < RECHECK_INTERVAL)
    return l->rate;
  l->checked = now;
  l->ever_checked = true;

  fp = fopen (l->file, "r");
  if (fp == NULL)
    return l->rate;
  if (getline (&line, &len, fp) > 0) {
    line[strcspn (line, " \t\r\n")] = '\0';
    if (*line && parse_rate (l->what, line, &r) == 0 && r != l->rate) {
      nbdkit_debug ("%s: changed to %" PRIu64 " bits/s", l->what, r);
      l->rate = r;
    }
  }
  fclose (fp);
  return l->rate;
}

/* Take BITS from bucket B, whose limit is now RATE.  Returns how many
 * seconds the caller must wait.
 */
static double
bucket_take (struct bucket *b, uint64_t rate, uint64_t bits)
{
  struct timespec now;

  if (rate == 0)
    return 0;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&b->lock);
  clock_gettime (CLOCK_MONOTONIC, &now);
  if (!b->started) {
    /* After a (long) time of no traffic the bucket is full. */
    b->level = rate * burstiness;
    b->started = true;
  }
  else
    b->level += b->rate * elapsed (&b->last, &now);
  b->rate = rate;
  b->capacity = rate * burstiness;
  if (b->level > b->capacity)
    b->level = b->capacity;
  b->last = now;

  b->level -= bits;
  return b->level >= 0 ? 0 : -b->level / rate;
}

static int
wait_for (double seconds, int *err)
{
  unsigned sec;
  unsigned nsec;

  if (seconds <= 0)
    return 0;
  sec = (unsigned) seconds;
  nsec = (unsigned) ((seconds - sec) * 1e9);
  if (nbdkit_nanosleep (sec, nsec) == -1) {
    *err = errno ? errno : ESHUTDOWN;
    return -1;
  }
  return 0;
}

/* Wait until COUNT bytes may pass through both buckets. */
static int
limit (struct bucket *conn_bucket, struct bucket *server_bucket,
       uint32_t count, int *err)
{
  uint64_t bits = (uint64_t) count * 8;

  if (wait_for (bucket_take (conn_bucket, current_rate (&connection_limit),
                             bits), err) == -1)
    return -1;
  return wait_for (bucket_take (server_bucket, current_rate (&server_limit),
                                bits), err);
}

static void *
rate_open (nbdkit_next_open *next, nbdkit_context *context,
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
  pthread_mutex_init (&h->read.lock, NULL);
  pthread_mutex_init (&h->write.lock, NULL);
  return h;
}

static void
rate_close (void *handle)
{
  struct handle *h = handle;

  pthread_mutex_destroy (&h->read.lock);
  pthread_mutex_destroy (&h->write.lock);
  free (h);
}

static int
rate_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;

  if (limit (&h->read, &server_read, count, err) == -1)
    return -1;
  return next->pread (next, buf, count, offset, flags, err);
}

static int
rate_pwrite (nbdkit_next *next, void *handle, const void *buf,
             uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;

  if (limit (&h->write, &server_write, count, err) == -1)
    return -1;
  return next->pwrite (next, buf, count, offset, flags, err);
}

static struct nbdkit_filter filter = {
  .name              = "rate",
  .longname          = "nbdkit rate filter",
  .version           = PACKAGE_VERSION,
  .description       = "Limit the bandwidth of reads and writes",
  .unload            = rate_unload,
  .config            = rate_config,
  .config_help       = rate_config_help,
  .open              = rate_open,
  .close             = rate_close,
  .pread             = rate_pread,
  .pwrite            = rate_pwrite,
};

NBDKIT_REGISTER_FILTER (filter)
