/* SPDX-License-Identifier: BSD-3-Clause
 * The stats filter: counts operations, bytes and time spent per kind of
 * request, with a histogram of request sizes and alignments, and writes
 * the totals to a file when nbdkit exits.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"

/* statsfile=: absolute path of the output file (required). */
static char *statsfile;

/* statsappend=: append to the file instead of replacing it. */
static bool statsappend = false;

/* statsthreshold=: the histogram shows this percentage of requests;
 * 0 turns it off.
 */
static int statsthreshold = 95;

/* The output file, opened in get_ready so that a bad path fails early. */
static FILE *statsfp;

/* When the server became ready: the start of "total" time. */
static struct timespec start_time;

/* Requests whose size needs BITS bits (floor of log2), and how their
 * offsets are aligned: aligned[k] requests had exactly k trailing zero
 * bits (64 for offset 0).
 */
struct size_bucket {
  uint64_t ops, bytes;
  uint64_t aligned[65];
};

/* The counters of one kind of request.  Zero-initialized, so the
 * array lives in .bss and not in the library file.
 */
struct op_stats {
  uint64_t ops, bytes, nanoseconds;
  struct size_bucket sizes[64];
};

enum op { OP_READ, OP_WRITE, OP_TRIM, OP_ZERO, OP_EXTENTS, OP_CACHE,
          OP_FLUSH, OP_COUNT };

static const char *const op_names[OP_COUNT] = {
  [OP_READ] = "read", [OP_WRITE] = "write", [OP_TRIM] = "trim",
  [OP_ZERO] = "zero", [OP_EXTENTS] = "extents", [OP_CACHE] = "cache",
  [OP_FLUSH] = "flush",
};

static struct op_stats stats[OP_COUNT];

/* One lock per kind of request. */
static pthread_mutex_t locks[OP_COUNT] = {
  PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
  PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
  PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
  PTHREAD_MUTEX_INITIALIZER,
};

/* Whether the statistics were written (by cleanup, else by unload). */
static bool written = false;

static int
stats_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
              const char *key, const char *value)
{
  if (strcmp (key, "statsfile") == 0) {
    free (statsfile);
    statsfile = nbdkit_absolute_path (value);
    return statsfile ? 0 : -1;
  }
  if (strcmp (key, "statsappend") == 0) {
    int r = nbdkit_parse_bool (value);
    if (r == -1) {
      nbdkit_error ("statsappend: expected a boolean, got '%s'", value);
      return -1;
    }
    statsappend = r;
    return 0;
  }
  if (strcmp (key, "statsthreshold") == 0) {
    if (nbdkit_parse_int ("statsthreshold", value, &statsthreshold) == -1)
      return -1;
    if (statsthreshold < 0 || statsthreshold > 100) {
      nbdkit_error ("statsthreshold: must be a percentage from 0 to 100");
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

static int
stats_config_complete (nbdkit_next_config_complete *next,
                       nbdkit_backend *nxdata)
{
  if (statsfile == NULL) {
    nbdkit_error ("statsfile: this parameter is required");
    return -1;
  }
  return next (nxdata);
}

#define stats_config_help \
  "statsfile=<FILE>     (required) The file to write statistics to.\n" \
  "statsappend=<BOOL>   Append to the file instead of replacing it.\n" \
  "statsthreshold=<PCT> Percentage of requests the histogram shows\n" \
  "                     (default 95, 0 for no histogram)."

static int
stats_get_ready (int thread_model)
{
  statsfp = fopen (statsfile, statsappend ? "a" : "w");
  if (statsfp == NULL) {
    nbdkit_error ("statsfile: %s: %m", statsfile);
    return -1;
  }
  clock_gettime (CLOCK_MONOTONIC, &start_time);
  return 0;
}

static double
seconds_since (const struct timespec *t)
{
  struct timespec now;

  clock_gettime (CLOCK_MONOTONIC, &now);
  return (now.tv_sec - t->tv_sec) + (now.tv_nsec - t->tv_nsec) / 1e9;
}

/* BYTES in binary units, e.g. "512 bytes", "64.50 KiB", with SUFFIX. */
static const char *
human (char *buf, size_t len, double bytes, const char *suffix)
{
  static const char *const units[] = {
    "KiB", "MiB", "GiB", "TiB", "PiB", "EiB",
  };
  size_t i = 0;

  if (bytes < 1024) {
    snprintf (buf, len, "%.0f bytes%s", bytes, suffix);
    return buf;
  }
  bytes /= 1024;
  while (bytes >= 1024 && i + 1 < ARRAY_SIZE (units)) {
    bytes /= 1024;
    i++;
  }
  snprintf (buf, len, "%.2f %s%s", bytes, units[i], suffix);
  return buf;
}

/* The "N bit aligned" rows of one size bucket: from the alignment every
 * request has (100%) up, at each step where fewer requests qualify,
 * until the share falls below what the threshold leaves out.
 */
static void
print_alignment (const struct size_bucket *b)
{
  uint64_t at_least[66];
  int k, first = 0;

  at_least[65] = 0;
  for (k = 64; k >= 0; --k)
    at_least[k] = at_least[k + 1] + b->aligned[k];
  for (k = 64; k >= 0; --k)
    if (at_least[k] == b->ops) {
      first = k;
      break;
    }
  for (k = first; k <= 64 && at_least[k] > 0; ++k) {
    double pct = 100.0 * at_least[k] / b->ops;

    if (k > first && at_least[k] == at_least[k - 1])
      continue;
    if (pct < 100 - statsthreshold)
      break;
    fprintf (statsfp, "         %2d bit aligned: %5.1f%% (%" PRIu64 ")\n",
             k, pct, at_least[k]);
  }
}

/* The size histogram of one operation: biggest buckets first, until the
 * threshold share of requests is shown; the rest as "other sizes".
 */
static void
print_histogram (const struct op_stats *s)
{
  bool shown[64] = { false };
  uint64_t shown_ops = 0, other_ops, other_bytes = 0;
  char buf[64];
  int i, best;

  fprintf (statsfp, "  Request size and alignment breakdown:\n");
  while (100.0 * shown_ops / s->ops < statsthreshold) {
    best = -1;
    for (i = 0; i < 64; ++i)
      if (!shown[i] && s->sizes[i].ops > 0 &&
          (best == -1 || s->sizes[i].ops > s->sizes[best].ops))
        best = i;
    if (best == -1)
      break;
    shown[best] = true;
    shown_ops += s->sizes[best].ops;
    fprintf (statsfp, "    %2d bits: %5.1f%% (%" PRIu64 " reqs, %s total)\n",
             best, 100.0 * s->sizes[best].ops / s->ops, s->sizes[best].ops,
             human (buf, sizeof buf, s->sizes[best].bytes, ""));
    print_alignment (&s->sizes[best]);
  }
  other_ops = s->ops - shown_ops;
  for (i = 0; i < 64; ++i)
    if (!shown[i])
      other_bytes += s->sizes[i].bytes;
  if (other_ops > 0)
    fprintf (statsfp, "    other sizes: %5.1f%% (%" PRIu64 " reqs, "
             "%s total)\n", 100.0 * other_ops / s->ops, other_ops,
             human (buf, sizeof buf, other_bytes, ""));
  fprintf (statsfp, "\n");
}

static void
print_stats (void)
{
  double elapsed = seconds_since (&start_time);
  uint64_t total_ops = 0, total_bytes = 0;
  char b1[64], b2[64], b3[64];
  size_t i;

  /* "total" counts every request, and the bytes moved or changed. */
  for (i = 0; i < OP_COUNT; ++i) {
    total_ops += stats[i].ops;
    if (i == OP_READ || i == OP_WRITE || i == OP_TRIM || i == OP_ZERO)
      total_bytes += stats[i].bytes;
  }
  fprintf (statsfp, "total: %" PRIu64 " ops, %.6f s, %s, %s\n",
           total_ops, elapsed, human (b1, sizeof b1, total_bytes, ""),
           human (b2, sizeof b2, elapsed > 0 ? total_bytes / elapsed : 0,
                  "/s"));

  for (i = 0; i < OP_COUNT; ++i) {
    const struct op_stats *s = &stats[i];
    double secs = s->nanoseconds / 1e9;

    if (s->ops == 0)
      continue;
    fprintf (statsfp, "%s: %" PRIu64 " ops, %.6f s, %s, %s op, %s total\n",
             op_names[i], s->ops, secs, human (b1, sizeof b1, s->bytes, ""),
             human (b2, sizeof b2, secs > 0 ? s->bytes / secs : 0, "/s"),
             human (b3, sizeof b3,
                    elapsed > 0 ? s->bytes / elapsed : 0, "/s"));
    if (statsthreshold > 0 && i != OP_FLUSH)
      print_histogram (s);
  }
  fflush (statsfp);
  written = true;
}

static void
stats_cleanup (nbdkit_backend *backend)
{
  if (statsfp && !written)
    print_stats ();
}

static void
stats_unload (void)
{
  if (statsfp) {
    if (!written)
      print_stats ();
    fclose (statsfp);
  }
  free (statsfile);
}

/* Account one successful request of COUNT bytes at OFFSET. */
static void
record (enum op op, const struct timespec *start, uint32_t count,
        uint64_t offset)
{
  struct op_stats *s = &stats[op];
  struct timespec end;
  uint64_t ns;

  clock_gettime (CLOCK_MONOTONIC, &end);
  ns = (end.tv_sec - start->tv_sec) * UINT64_C (1000000000) +
    end.tv_nsec - start->tv_nsec;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&locks[op]);
  s->ops++;
  s->bytes += count;
  s->nanoseconds += ns;
  if (count > 0) {
    struct size_bucket *b = &s->sizes[63 - __builtin_clzll (count)];
    b->ops++;
    b->bytes += count;
    b->aligned[offset ? __builtin_ctzll (offset) : 64]++;
  }
}

#define TIMED(op, count, offset, call)                                  \
  do {                                                                  \
    struct timespec start_;                                             \
    int r_;                                                             \
    clock_gettime (CLOCK_MONOTONIC, &start_);                           \
    r_ = (call);                                                        \
    if (r_ == 0)                                                        \
      record ((op), &start_, (count), (offset));                        \
    return r_;                                                          \
  } while (0)

static int
stats_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  TIMED (OP_READ, count, offset,
         next->pread (next, buf, count, offset, flags, err));
}

static int
stats_pwrite (nbdkit_next *next, void *handle, const void *buf,
              uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  TIMED (OP_WRITE, count, offset,
         next->pwrite (next, buf, count, offset, flags, err));
}

static int
stats_trim (nbdkit_next *next, void *handle, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  TIMED (OP_TRIM, count, offset,
         next->trim (next, count, offset, flags, err));
}

static int
stats_zero (nbdkit_next *next, void *handle, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  TIMED (OP_ZERO, count, offset,
         next->zero (next, count, offset, flags, err));
}

static int
stats_extents (nbdkit_next *next, void *handle, uint32_t count,
               uint64_t offset, uint32_t flags,
               struct nbdkit_extents *extents, int *err)
{
  TIMED (OP_EXTENTS, count, offset,
         next->extents (next, count, offset, flags, extents, err));
}

static int
stats_cache (nbdkit_next *next, void *handle, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  TIMED (OP_CACHE, count, offset,
         next->cache (next, count, offset, flags, err));
}

static int
stats_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  TIMED (OP_FLUSH, 0, 0, next->flush (next, flags, err));
}

static struct nbdkit_filter filter = {
  .name              = "stats",
  .longname          = "nbdkit stats filter",
  .version           = PACKAGE_VERSION,
  .description       = "Write statistics about requests to a file at exit",
  .unload            = stats_unload,
  .config            = stats_config,
  .config_complete   = stats_config_complete,
  .config_help       = stats_config_help,
  .get_ready         = stats_get_ready,
  .cleanup           = stats_cleanup,
  .pread             = stats_pread,
  .pwrite            = stats_pwrite,
  .trim              = stats_trim,
  .zero              = stats_zero,
  .extents           = stats_extents,
  .cache             = stats_cache,
  .flush             = stats_flush,
};

NBDKIT_REGISTER_FILTER (filter)
