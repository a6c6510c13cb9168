/* SPDX-License-Identifier: BSD-3-Clause
 * The log filter: records every call that passes through it — server
 * events, connections and each request with its result and duration —
 * in a log file and/or by running a shell script (see log-format.c).
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "log.h"

/* logfile=: absolute path of the log file, or NULL. */
static char *logfile;

/* logappend=: append to the file instead of truncating it. */
static bool logappend = false;

/* logscript=: shell script run for every entry, or NULL. */
static char *logscript;

/* Numbering: connections (each open), and the calls that happen
 * outside any connection, each kind counted on its own.
 */
static uint64_t connections, preconnects, listings;

/* One open connection. */
struct handle {
  uint64_t connection;          /* connection=N in the log */
  uint64_t requests;            /* last request id used */
  char *exportname;
  int tls;
  bool connected;               /* Connect was logged */
};

/* A call being logged: ENTER is written when it starts, LEAVE with its
 * result and duration when it ends.
 */
struct call {
  uint64_t connection;
  const char *act;
  uint64_t id;
  struct timespec start;
};

static void
log_unload (void)
{
  log_stop ();
  free (logfile);
  free (logscript);
}

static int
log_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
            const char *key, const char *value)
{
  if (strcmp (key, "logfile") == 0) {
    free (logfile);
    logfile = nbdkit_absolute_path (value);
    return logfile ? 0 : -1;
  }
  if (strcmp (key, "logappend") == 0) {
    int r = nbdkit_parse_bool (value);
    if (r == -1) {
      nbdkit_error ("logappend: expected a boolean, got '%s'", value);
      return -1;
    }
    logappend = r;
    return 0;
  }
  if (strcmp (key, "logscript") == 0) {
    free (logscript);
    logscript = strdup (value);
    if (logscript == NULL) {
      nbdkit_error ("strdup: %m");
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

#define log_config_help \
  "logfile=<FILE>       The file to write the log to.\n" \
  "logappend=<BOOL>     Append to the file instead of replacing it.\n" \
  "logscript=<SCRIPT>   Shell script to run for every log entry."

/* A server event with at most one integer field. */
static void
print_simple (const char *act, const char *key, int value)
{
  struct log_fields f;

  if (log_fields_init (&f) == -1)
    return;
  if (key)
    log_fields_add (&f, key, "%d", value);
  log_entry (LOG_PRINT, 0, act, 0, &f);
  log_fields_free (&f);
}

static int
log_get_ready (int thread_model)
{
  if (log_start (logfile, logappend, logscript) == -1)
    return -1;
  if (log_enabled ())
    print_simple ("Ready", "thread_model", thread_model);
  return 0;
}

static int
log_after_fork (nbdkit_backend *backend)
{
  if (log_enabled ())
    print_simple ("Fork", NULL, 0);
  return 0;
}

static void
call_begin (struct call *c, uint64_t connection, const char *act,
            uint64_t id, struct log_fields *f)
{
  c->connection = connection;
  c->act = act;
  c->id = id;
  log_entry (LOG_ENTER, connection, act, id, f);
  clock_gettime (CLOCK_MONOTONIC, &c->start);
}

/* F holds any result fields already; return=, error= and duration= are
 * added here.
 */
static void
call_end (struct call *c, struct log_fields *f, int r, int err)
{
  struct timespec end;
  double seconds;

  clock_gettime (CLOCK_MONOTONIC, &end);
  seconds = (end.tv_sec - c->start.tv_sec) +
    (end.tv_nsec - c->start.tv_nsec) / 1e9;
  log_fields_add_result (f, r, err, seconds);
  log_entry (LOG_LEAVE, c->connection, c->act, c->id, f);
}

static int
log_preconnect (nbdkit_next_preconnect *next, nbdkit_backend *nxdata,
                int readonly)
{
  struct log_fields f;
  struct call c;
  int r, err;

  if (!log_enabled () || log_fields_init (&f) == -1)
    return next (nxdata, readonly);
  log_fields_add (&f, "readonly", "%d", readonly);
  call_begin (&c, 0, "Preconnect",
              __atomic_add_fetch (&preconnects, 1, __ATOMIC_SEQ_CST), &f);
  log_fields_free (&f);

  errno = 0;
  r = next (nxdata, readonly);
  err = errno;
  if (log_fields_init (&f) == 0) {
    call_end (&c, &f, r, err);
    log_fields_free (&f);
  }
  return r;
}

/* exports=(NAME ...), each name quoted as needed. */
static void
add_exports (struct log_fields *f, struct nbdkit_exports *exports)
{
  CLEANUP_FREE char *items = NULL;
  size_t len = 0, i;
  FILE *fp = open_memstream (&items, &len);

  if (fp == NULL)
    return;
  for (i = 0; i < nbdkit_exports_count (exports); ++i) {
    if (i > 0)
      fputc (' ', fp);
    log_quote (fp, nbdkit_get_export (exports, i).name);
  }
  if (fclose (fp) == 0)
    log_fields_add_list (f, "exports", items);
}

static int
log_list_exports (nbdkit_next_list_exports *next, nbdkit_backend *nxdata,
                  int readonly, int is_tls, struct nbdkit_exports *exports)
{
  struct log_fields f;
  struct call c;
  int r, err;

  if (!log_enabled () || log_fields_init (&f) == -1)
    return next (nxdata, readonly, exports);
  log_fields_add (&f, "readonly", "%d", readonly);
  log_fields_add (&f, "tls", "%d", is_tls);
  call_begin (&c, 0, "ListExports",
              __atomic_add_fetch (&listings, 1, __ATOMIC_SEQ_CST), &f);
  log_fields_free (&f);

  errno = 0;
  r = next (nxdata, readonly, exports);
  err = errno;
  if (log_fields_init (&f) == 0) {
    if (r == 0)
      add_exports (&f, exports);
    call_end (&c, &f, r, err);
    log_fields_free (&f);
  }
  return r;
}

static void *
log_open (nbdkit_next_open *next, nbdkit_context *context,
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
  h->exportname = strdup (exportname);
  if (h->exportname == NULL) {
    nbdkit_error ("strdup: %m");
    free (h);
    return NULL;
  }
  h->connection = __atomic_add_fetch (&connections, 1, __ATOMIC_SEQ_CST);
  h->tls = is_tls;
  return h;
}

/* The Connect entry: the export and everything the layer below said
 * about it.
 */
static int
log_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;
  uint32_t minimum = 0, preferred = 0, maximum = 0;
  struct log_fields f;
  int64_t size;

  if (!log_enabled ())
    return 0;
  size = next->get_size (next);
  if (size == -1 ||
      next->block_size (next, &minimum, &preferred, &maximum) == -1)
    return -1;
  if (log_fields_init (&f) == -1)
    return -1;
  log_fields_add_string (&f, "export", h->exportname);
  log_fields_add (&f, "tls", "%d", h->tls);
  log_fields_add (&f, "size", "0x%" PRIx64, size);
  log_fields_add (&f, "minsize", "0x%" PRIx32, minimum);
  log_fields_add (&f, "prefsize", "0x%" PRIx32, preferred);
  log_fields_add (&f, "maxsize", "0x%" PRIx32, maximum);
  log_fields_add (&f, "write", "%d", next->can_write (next));
  log_fields_add (&f, "flush", "%d", next->can_flush (next));
  log_fields_add (&f, "rotational", "%d", next->is_rotational (next));
  log_fields_add (&f, "trim", "%d", next->can_trim (next));
  log_fields_add (&f, "zero", "%d", next->can_zero (next));
  log_fields_add (&f, "fua", "%d", next->can_fua (next));
  log_fields_add (&f, "extents", "%d", next->can_extents (next));
  log_fields_add (&f, "cache", "%d", next->can_cache (next));
  log_fields_add (&f, "fast_zero", "%d", next->can_fast_zero (next));
  log_entry (LOG_PRINT, h->connection, "Connect", 0, &f);
  log_fields_free (&f);
  h->connected = true;
  return 0;
}

static void
log_close (void *handle)
{
  struct handle *h = handle;
  struct log_fields f;

  if (h->connected && log_enabled () && log_fields_init (&f) == 0) {
    log_fields_add (&f, "transactions", "%" PRIu64,
                    __atomic_load_n (&h->requests, __ATOMIC_SEQ_CST));
    log_entry (LOG_PRINT, h->connection, "Disconnect", 0, &f);
    log_fields_free (&f);
  }
  free (h->exportname);
  free (h);
}

/* Log the start of a request on connection H, with fields F (freed). */
static void
request_begin (struct call *c, struct handle *h, const char *act,
               struct log_fields *f)
{
  uint64_t id = __atomic_add_fetch (&h->requests, 1, __ATOMIC_SEQ_CST);

  call_begin (c, h->connection, act, id, f);
  log_fields_free (f);
}

/* Finish a request with no result fields. */
static int
request_end (struct call *c, int r, int *err)
{
  struct log_fields f;

  if (log_fields_init (&f) == 0) {
    call_end (c, &f, r, r == -1 ? *err : 0);
    log_fields_free (&f);
  }
  return r;
}

/* Begin fields for a request with an offset and count. */
static bool
range_fields (struct log_fields *f, uint32_t count, uint64_t offset)
{
  if (!log_enabled () || log_fields_init (f) == -1)
    return false;
  log_fields_add (f, "offset", "0x%" PRIx64, offset);
  log_fields_add (f, "count", "0x%" PRIx32, count);
  return true;
}

static int
log_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
           uint64_t offset, uint32_t flags, int *err)
{
  struct log_fields f;
  struct call c;

  if (!range_fields (&f, count, offset))
    return next->pread (next, buf, count, offset, flags, err);
  request_begin (&c, handle, "Read", &f);
  return request_end (&c, next->pread (next, buf, count, offset, flags, err),
                      err);
}

static int
log_pwrite (nbdkit_next *next, void *handle, const void *buf,
            uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  struct log_fields f;
  struct call c;

  if (!range_fields (&f, count, offset))
    return next->pwrite (next, buf, count, offset, flags, err);
  log_fields_add (&f, "fua", "%d", !!(flags & NBDKIT_FLAG_FUA));
  request_begin (&c, handle, "Write", &f);
  return request_end (&c,
                      next->pwrite (next, buf, count, offset, flags, err),
                      err);
}

static int
log_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  struct log_fields f;
  struct call c;

  if (!log_enabled () || log_fields_init (&f) == -1)
    return next->flush (next, flags, err);
  request_begin (&c, handle, "Flush", &f);
  return request_end (&c, next->flush (next, flags, err), err);
}

static int
log_trim (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
          uint32_t flags, int *err)
{
  struct log_fields f;
  struct call c;

  if (!range_fields (&f, count, offset))
    return next->trim (next, count, offset, flags, err);
  log_fields_add (&f, "fua", "%d", !!(flags & NBDKIT_FLAG_FUA));
  request_begin (&c, handle, "Trim", &f);
  return request_end (&c, next->trim (next, count, offset, flags, err), err);
}

static int
log_zero (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
          uint32_t flags, int *err)
{
  struct log_fields f;
  struct call c;

  if (!range_fields (&f, count, offset))
    return next->zero (next, count, offset, flags, err);
  log_fields_add (&f, "trim", "%d", !!(flags & NBDKIT_FLAG_MAY_TRIM));
  log_fields_add (&f, "fua", "%d", !!(flags & NBDKIT_FLAG_FUA));
  log_fields_add (&f, "fast", "%d", !!(flags & NBDKIT_FLAG_FAST_ZERO));
  request_begin (&c, handle, "Zero", &f);
  return request_end (&c, next->zero (next, count, offset, flags, err), err);
}

static const char *
extent_type_name (uint32_t type)
{
  switch (type & (NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO)) {
  case 0: return "";
  case NBDKIT_EXTENT_HOLE: return "hole";
  case NBDKIT_EXTENT_ZERO: return "zero";
  default: return "hole,zero";
  }
}

/* extents=(OFFSET LENGTH "TYPE" ...) */
static void
add_extents (struct log_fields *f, struct nbdkit_extents *extents)
{
  CLEANUP_FREE char *items = NULL;
  size_t len = 0, i;
  FILE *fp = open_memstream (&items, &len);

  if (fp == NULL)
    return;
  for (i = 0; i < nbdkit_extents_count (extents); ++i) {
    struct nbdkit_extent e = nbdkit_get_extent (extents, i);
    fprintf (fp, "%s0x%" PRIx64 " 0x%" PRIx64 " \"%s\"", i > 0 ? " " : "",
             e.offset, e.length, extent_type_name (e.type));
  }
  if (fclose (fp) == 0)
    log_fields_add_list (f, "extents", items);
}

static int
log_extents (nbdkit_next *next, void *handle, uint32_t count,
             uint64_t offset, uint32_t flags, struct nbdkit_extents *extents,
             int *err)
{
  struct log_fields f;
  struct call c;
  int r;

  if (!range_fields (&f, count, offset))
    return next->extents (next, count, offset, flags, extents, err);
  log_fields_add (&f, "req_one", "%d", !!(flags & NBDKIT_FLAG_REQ_ONE));
  request_begin (&c, handle, "Extents", &f);
  r = next->extents (next, count, offset, flags, extents, err);
  if (log_fields_init (&f) == 0) {
    if (r == 0)
      add_extents (&f, extents);
    call_end (&c, &f, r, r == -1 ? *err : 0);
    log_fields_free (&f);
  }
  return r;
}

static int
log_cache (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
           uint32_t flags, int *err)
{
  struct log_fields f;
  struct call c;

  if (!range_fields (&f, count, offset))
    return next->cache (next, count, offset, flags, err);
  request_begin (&c, handle, "Cache", &f);
  return request_end (&c, next->cache (next, count, offset, flags, err),
                      err);
}

static struct nbdkit_filter filter = {
  .name              = "log",
  .longname          = "nbdkit log filter",
  .version           = PACKAGE_VERSION,
  .description       = "Log every request to a file or a script",
  .unload            = log_unload,
  .config            = log_config,
  .config_help       = log_config_help,
  .get_ready         = log_get_ready,
  .after_fork        = log_after_fork,
  .preconnect        = log_preconnect,
  .list_exports      = log_list_exports,
  .open              = log_open,
  .close             = log_close,
  .prepare           = log_prepare,
  .pread             = log_pread,
  .pwrite            = log_pwrite,
  .flush             = log_flush,
  .trim              = log_trim,
  .zero              = log_zero,
  .extents           = log_extents,
  .cache             = log_cache,
};

NBDKIT_REGISTER_FILTER (filter)
