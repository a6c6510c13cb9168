/* SPDX-License-Identifier: BSD-3-Clause
 * The multi-conn filter: turns NBD_FLAG_CAN_MULTI_CONN on or off, and
 * can make it true for a plugin that lacks it by repeating each flush on
 * every open connection.  Dirty tracking skips flushes that have nothing
 * to do.
 */

#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "vector.h"

enum mode {
  MODE_AUTO,                    /* plugin if it can, else emulate */
  MODE_EMULATE,                 /* advertise; flush every connection */
  MODE_PLUGIN,                  /* whatever the plugin says */
  MODE_UNSAFE,                  /* advertise without doing anything */
  MODE_DISABLE,                 /* never advertise */
};

enum track {
  TRACK_FAST,                   /* one dirty flag for the whole server */
  TRACK_CONNECTION,             /* one dirty flag per connection */
  TRACK_OFF,                    /* every flush goes to the plugin */
};

/* multi-conn-mode= */
static enum mode mode = MODE_AUTO;

/* multi-conn-track-dirty= */
static enum track track = TRACK_CONNECTION;

/* multi-conn-exportname=: only flush connections to the same export. */
static bool by_exportname = false;

/* Set from get_ready: auto mode disables itself when connections are
 * served one at a time, since multi-conn cannot help then.
 */
static bool serialize_connections = false;

struct handle {
  nbdkit_next *next;            /* the layer below, known from prepare */
  char *exportname;
  enum mode mode;               /* auto already resolved */
  bool can_flush;               /* next->can_flush was true */
  bool dirty;                   /* written or read since its last flush */
};

DEFINE_VECTOR_TYPE (handle_list, struct handle *)

/* Protects everything below, and every handle's dirty flag. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Connections past prepare and not yet finalized. */
static handle_list connections = empty_vector;

/* TRACK_FAST: something was written since the last flush. */
static bool any_dirty = false;

static void
multi_conn_unload (void)
{
  handle_list_reset (&connections);
}

static int
multi_conn_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                   const char *key, const char *value)
{
  if (strcmp (key, "multi-conn-mode") == 0) {
    if (strcmp (value, "auto") == 0)
      mode = MODE_AUTO;
    else if (strcmp (value, "emulate") == 0)
      mode = MODE_EMULATE;
    else if (strcmp (value, "plugin") == 0)
      mode = MODE_PLUGIN;
    else if (strcmp (value, "unsafe") == 0)
      mode = MODE_UNSAFE;
    else if (strcmp (value, "disable") == 0)
      mode = MODE_DISABLE;
    else {
      nbdkit_error ("multi-conn-mode: unknown mode '%s' (expected auto, "
                    "emulate, plugin, unsafe or disable)", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "multi-conn-track-dirty") == 0) {
    if (strcmp (value, "fast") == 0)
      track = TRACK_FAST;
    else if (strcmp (value, "connection") == 0)
      track = TRACK_CONNECTION;
    else if (strcmp (value, "off") == 0)
      track = TRACK_OFF;
    else {
      nbdkit_error ("multi-conn-track-dirty: unknown level '%s' "
                    "(expected fast, connection or off)", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "multi-conn-exportname") == 0) {
    int r = nbdkit_parse_bool (value);
    if (r == -1) {
      nbdkit_error ("multi-conn-exportname: expected a boolean, got '%s'",
                    value);
      return -1;
    }
    by_exportname = r;
    return 0;
  }
  return next (nxdata, key, value);
}

#define multi_conn_config_help \
  "multi-conn-mode=<MODE>        'auto' (default), 'emulate', 'plugin',\n" \
  "                              'unsafe' or 'disable'.\n" \
  "multi-conn-track-dirty=<LVL>  'connection' (default), 'fast' or 'off'.\n" \
  "multi-conn-exportname=<BOOL>  Only flush connections to the same export."

static int
multi_conn_get_ready (int thread_model)
{
  serialize_connections =
    thread_model == NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS;
  return 0;
}

static void *
multi_conn_open (nbdkit_next_open *next, nbdkit_context *context,
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
  return h;
}

static void
unregister (struct handle *h)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  for (size_t i = 0; i < connections.len; ++i) {
    if (connections.ptr[i] == h) {
      handle_list_remove (&connections, i);
      break;
    }
  }
}

static void
multi_conn_close (void *handle)
{
  struct handle *h = handle;

  unregister (h);
  free (h->exportname);
  free (h);
}

/* What auto mode means for this connection. */
static enum mode
resolve_mode (nbdkit_next *next, bool can_flush)
{
  int r;

  if (mode != MODE_AUTO)
    return mode;
  if (serialize_connections)
    return MODE_DISABLE;
  r = next->can_multi_conn (next);
  if (r == 1)
    return MODE_PLUGIN;
  return can_flush ? MODE_EMULATE : MODE_DISABLE;
}

static int
multi_conn_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;
  int r = next->can_flush (next);

  if (r == -1)
    return -1;
  h->can_flush = r == 1;
  h->next = next;
  h->mode = resolve_mode (next, h->can_flush);
  if (h->mode == MODE_EMULATE && !h->can_flush) {
    nbdkit_error ("multi-conn-mode=emulate needs a plugin that can flush");
    return -1;
  }

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  if (handle_list_append (&connections, h) == -1) {
    nbdkit_error ("realloc: %m");
    return -1;
  }
  return 0;
}

static int
multi_conn_finalize (nbdkit_next *next, void *handle)
{
  unregister (handle);
  return 0;
}

static int
multi_conn_can_multi_conn (nbdkit_next *next, void *handle)
{
  struct handle *h = handle;

  switch (h->mode) {
  case MODE_EMULATE:
  case MODE_UNSAFE:
    return 1;
  case MODE_DISABLE:
    return 0;
  case MODE_PLUGIN:
  case MODE_AUTO:
    break;
  }
  return next->can_multi_conn (next);
}

/* Emulated FUA becomes a write followed by a flush of every connection. */
static int
multi_conn_can_fua (nbdkit_next *next, void *handle)
{
  struct handle *h = handle;

  if (h->mode == MODE_EMULATE)
    return NBDKIT_FUA_EMULATE;
  return next->can_fua (next);
}

/* Record that H has done something a later flush must cover. */
static void
mark_dirty (struct handle *h, bool is_write)
{
  /* Only the tracking levels that look at them need the flags. */
  if (track == TRACK_OFF || (!is_write && track != TRACK_CONNECTION) ||
      h->mode == MODE_UNSAFE || h->mode == MODE_DISABLE)
    return;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  if (is_write)
    any_dirty = true;
  h->dirty = true;
}

/* Flush one connection, with the lock held. */
static int
flush_one (struct handle *h, int *err)
{
  bool was_dirty = h->dirty;

  /* Cleared first: a write finishing during the flush is not covered
   * by it and must leave the connection dirty again.
   */
  h->dirty = false;
  if (h->next->flush (h->next, 0, err) == -1) {
    h->dirty = was_dirty;
    return -1;
  }
  return 0;
}

/* A client's flush (or the flush that ends an emulated FUA request) on
 * connection H.
 */
static int
do_flush (struct handle *h, int *err)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  size_t i;

  switch (h->mode) {
  case MODE_EMULATE:
    if (track == TRACK_FAST && !any_dirty)
      return 0;
    for (i = 0; i < connections.len; ++i) {
      struct handle *c = connections.ptr[i];

      if (!c->can_flush)
        continue;
      if (by_exportname && strcmp (c->exportname, h->exportname) != 0)
        continue;
      if (track == TRACK_CONNECTION && !c->dirty)
        continue;
      if (flush_one (c, err) == -1)
        return -1;
    }
    any_dirty = false;
    return 0;

  case MODE_PLUGIN:
    if (track == TRACK_FAST && !any_dirty)
      return 0;
    if (track == TRACK_CONNECTION && !h->dirty)
      return 0;
    if (flush_one (h, err) == -1)
      return -1;
    any_dirty = false;
    return 0;

  case MODE_UNSAFE:
  case MODE_DISABLE:
  case MODE_AUTO:
    break;
  }
  return flush_one (h, err);
}

static int
multi_conn_pread (nbdkit_next *next, void *handle, void *buf,
                  uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  int r = next->pread (next, buf, count, offset, flags, err);

  /* What was read may now sit in a cache a flush would drop. */
  mark_dirty (handle, false);
  return r;
}

/* Run a write-type request R (already done), then finish it: record the
 * change and, for emulated FUA, flush everywhere.
 */
static int
finish_write (struct handle *h, int r, bool fua, int *err)
{
  mark_dirty (h, true);
  if (r == -1)
    return -1;
  return fua ? do_flush (h, err) : 0;
}

/* In emulate mode FUA is taken off the request and done by flushing. */
static bool
take_fua (struct handle *h, uint32_t *flags)
{
  if (h->mode == MODE_EMULATE && (*flags & NBDKIT_FLAG_FUA)) {
    *flags &= ~NBDKIT_FLAG_FUA;
    return true;
  }
  return false;
}

static int
multi_conn_pwrite (nbdkit_next *next, void *handle, const void *buf,
                   uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  bool fua = take_fua (handle, &flags);
  int r = next->pwrite (next, buf, count, offset, flags, err);

  return finish_write (handle, r, fua, err);
}

static int
multi_conn_zero (nbdkit_next *next, void *handle, uint32_t count,
                 uint64_t offset, uint32_t flags, int *err)
{
  bool fua = take_fua (handle, &flags);
  int r = next->zero (next, count, offset, flags, err);

  return finish_write (handle, r, fua, err);
}

static int
multi_conn_trim (nbdkit_next *next, void *handle, uint32_t count,
                 uint64_t offset, uint32_t flags, int *err)
{
  bool fua = take_fua (handle, &flags);
  int r = next->trim (next, count, offset, flags, err);

  return finish_write (handle, r, fua, err);
}

static int
multi_conn_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  return do_flush (handle, err);
}

static struct nbdkit_filter filter = {
  .name              = "multi-conn",
  .longname          = "nbdkit multi-conn filter",
  .version           = PACKAGE_VERSION,
  .description       = "Enable, emulate or disable multi-conn",
  .unload            = multi_conn_unload,
  .config            = multi_conn_config,
  .config_help       = multi_conn_config_help,
  .get_ready         = multi_conn_get_ready,
  .open              = multi_conn_open,
  .close             = multi_conn_close,
  .prepare           = multi_conn_prepare,
  .finalize          = multi_conn_finalize,
  .can_multi_conn    = multi_conn_can_multi_conn,
  .can_fua           = multi_conn_can_fua,
  .pread             = multi_conn_pread,
  .pwrite            = multi_conn_pwrite,
  .zero              = multi_conn_zero,
  .trim              = multi_conn_trim,
  .flush             = multi_conn_flush,
};

NBDKIT_REGISTER_FILTER (filter)
