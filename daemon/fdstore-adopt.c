/* SPDX-License-Identifier: BSD-3-Clause
 * nbdkitd --fd-store: the map of the stored descriptors, handing off at
 * SIGTERM (the workers of stored exports keep running and serving), and
 * adopting them in the next daemon.  The map (FDSTORE_MAP_FILE):
 *
 *  {"v":1, "shared":[{"fd":NAME, "listen":"tcp::10809"}],
 *   "exports":[{"name":..., "listeners":[{"fd":NAME, "address":...}],
 *               "info":{"size":..., "eflags":..., "description":...,
 *                       "min_block":..., "pref_block":..., "max_block":...},
 *               "retired_base":{COUNTERS},
 *               "workers":[{"pid":..., "control":NAME, "stderr":NAME,
 *                           "ready":true, "retired":false,
 *                           "stopping":false, "said_stopping":false}]}]}
 */

#include <config.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbdkitd.h"
#include "fdstore.h"
#include "worker.h"

static void
add_string (json_object *o, const char *key, const char *value)
{
  if (value)
    json_object_object_add (o, key, json_object_new_string (value));
}

static void
add_int (json_object *o, const char *key, int64_t value)
{
  json_object_object_add (o, key, json_object_new_int64 (value));
}

static int64_t
get_int (json_object *o, const char *key)
{
  json_object *v;
  return json_object_object_get_ex (o, key, &v) ? json_object_get_int64 (v) : 0;
}

static bool
get_bool (json_object *o, const char *key)
{
  json_object *v;
  return json_object_object_get_ex (o, key, &v) && json_object_get_boolean (v);
}

static const char *
get_string (json_object *o, const char *key)
{
  json_object *v;
  return json_object_object_get_ex (o, key, &v) &&
    json_object_is_type (v, json_type_string) ? json_object_get_string (v)
    : NULL;
}

static json_object *
get_array (json_object *o, const char *key)
{
  json_object *v;
  return o && json_object_object_get_ex (o, key, &v) &&
    json_object_is_type (v, json_type_array) ? v : NULL;
}

static json_object *
worker_json (struct worker *w)
{
  json_object *o = json_object_new_object ();

  add_int (o, "pid", spawn_pid (w->spawn));
  add_string (o, "control", w->control_name);
  if (w->err_name[0])
    add_string (o, "stderr", w->err_name);
  json_object_object_add (o, "ready", json_object_new_boolean (w->ready));
  json_object_object_add (o, "retired", json_object_new_boolean (w->retired));
  json_object_object_add (o, "stopping",
                          json_object_new_boolean (w->stop_requested));
  json_object_object_add (o, "said_stopping",
                          json_object_new_boolean (w->stopping_event));
  return o;
}

static json_object *
export_json (struct export *e)
{
  json_object *o = json_object_new_object ();
  json_object *ls = json_object_new_array ();
  json_object *ws = json_object_new_array ();
  json_object *info = json_object_new_object ();
  json_object *base = json_object_new_object ();

  add_string (o, "name", e->def.name);
  for (size_t i = 0; i < e->listeners.len; i++) {
    json_object *l = json_object_new_object ();
    add_string (l, "fd", e->listeners.ptr[i].fdname);
    add_string (l, "address", e->listeners.ptr[i].address);
    json_object_array_add (ls, l);
  }
  json_object_object_add (o, "listeners", ls);
  if (e->info.valid) {
    add_int (info, "size", e->info.size);
    add_int (info, "eflags", e->info.eflags);
    add_string (info, "description", e->info.description);
    add_int (info, "min_block", e->info.min_block);
    add_int (info, "pref_block", e->info.pref_block);
    add_int (info, "max_block", e->info.max_block);
    json_object_object_add (o, "info", info);
  }
  else
    json_object_put (info);
  add_int (base, "total", e->retired_base.total);
  add_int (base, "requests", e->retired_base.requests);
  add_int (base, "bytes_read", e->retired_base.bytes_read);
  add_int (base, "bytes_written", e->retired_base.bytes_written);
  add_int (base, "errors", e->retired_base.errors);
  json_object_object_add (o, "retired_base", base);
  if (e->worker && e->worker->control_name[0])
    json_object_array_add (ws, worker_json (e->worker));
  for (struct worker *w = e->retired; w; w = w->next_retired)
    if (w->control_name[0])
      json_object_array_add (ws, worker_json (w));
  json_object_object_add (o, "workers", ws);
  return o;
}

/* The map of what is in the store now. */
json_object *
fdstore_map_build (struct context *ctx)
{
  json_object *map = json_object_new_object ();
  json_object *shared = json_object_new_array ();
  json_object *exports = json_object_new_array ();
  size_t k = 0;

  add_int (map, "v", 1);
  /* The --listen listeners, in order (shared_listeners_open). */
  for (size_t i = 0; i < ctx->config.listen.len; i++) {
    const char *listen = ctx->config.listen.ptr[i];
    if (strcmp (listen, "none") == 0 || k >= ctx->shared.len)
      continue;
    if (ctx->shared.ptr[k].fdname[0] &&
        strcmp (ctx->shared.ptr[k].fdname, FDSTORE_NOT_OURS) != 0) {
      json_object *o = json_object_new_object ();
      add_string (o, "fd", ctx->shared.ptr[k].fdname);
      add_string (o, "listen", listen);
      json_object_array_add (shared, o);
    }
    k++;
  }
  json_object_object_add (map, "shared", shared);
  for (size_t i = 0; i < ctx->exports.len; i++)
    if (fdstore_keeps (ctx->exports.ptr[i]))
      json_object_array_add (exports, export_json (ctx->exports.ptr[i]));
  json_object_object_add (map, "exports", exports);
  return map;
}

/* E's own listeners: the stored ones for the same addresses, the others
 * opened now.
 */
static int
adopt_listeners (struct export *e, json_object *je, sd_bus_error *error)
{
  json_object *ls = get_array (je, "listeners");

  for (size_t i = 0; i < e->def.listeners.len; i++) {
    const char *a = e->def.listeners.ptr[i];
    struct listener l = { .fd = -1 };
    int r;

    if (strcmp (a, "shared") == 0)
      continue;
    for (size_t j = 0; ls && l.fd < 0 && j < json_object_array_length (ls);
         j++) {
      json_object *o = json_object_array_get_idx (ls, j);
      const char *addr = get_string (o, "address");
      const char *name = get_string (o, "fd");
      if (addr && name && strcmp (addr, a) == 0 &&
          (l.fd = fdstore_claim (name)) >= 0)
        snprintf (l.fdname, sizeof l.fdname, "%s", name);
    }
    if (l.fd < 0 && (r = listener_open (a, &l.fd, error)) < 0) {
      listeners_close (&e->listeners);
      return r;
    }
    l.address = strdup (a);
    if (l.address == NULL || listener_vector_append (&e->listeners, l) == -1) {
      free (l.address);
      close (l.fd);
      listeners_close (&e->listeners);
      return -ENOMEM;
    }
  }
  return 0;
}

static void
adopt_info (struct export *e, json_object *je)
{
  json_object *info, *base;
  const char *desc;

  if (json_object_object_get_ex (je, "retired_base", &base)) {
    e->retired_base.total = get_int (base, "total");
    e->retired_base.requests = get_int (base, "requests");
    e->retired_base.bytes_read = get_int (base, "bytes_read");
    e->retired_base.bytes_written = get_int (base, "bytes_written");
    e->retired_base.errors = get_int (base, "errors");
  }
  if (!json_object_object_get_ex (je, "info", &info))
    return;
  free (e->info.description);
  desc = get_string (info, "description");
  e->info = (struct export_info) {
    .valid = true,
    .size = get_int (info, "size"),
    .eflags = get_int (info, "eflags"),
    .description = desc ? strdup (desc) : NULL,
    .min_block = get_int (info, "min_block"),
    .pref_block = get_int (info, "pref_block"),
    .max_block = get_int (info, "max_block"),
  };
}

/* The worker has closed its end of the control socket: it has gone
 * (its pid may even belong to another process by now).
 */
static bool
control_closed (int fd)
{
  struct pollfd p = { .fd = fd, .events = POLLIN };

  return poll (&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

/* Returns true if JW was adopted as E's current worker. */
static bool
adopt_worker (struct export *e, json_object *jw)
{
  struct worker_adoption a = {
    .pid = get_int (jw, "pid"),
    .control_name = get_string (jw, "control"),
    .err_name = get_string (jw, "stderr"),
    .ready = get_bool (jw, "ready"),
    .retired = get_bool (jw, "retired"),
    .stopping = get_bool (jw, "stopping"),
    .said_stopping = get_bool (jw, "said_stopping"),
  };
  int r;

  a.control_fd = fdstore_claim (a.control_name);
  a.err_fd = fdstore_claim (a.err_name);
  if (a.control_fd < 0 || a.pid <= 0 || control_closed (a.control_fd)) {
    log_info (e->ctx, "export '%s': worker %d has gone", e->def.name,
              (int) a.pid);
    if (a.control_fd >= 0)
      close (a.control_fd);
    if (a.err_fd >= 0)
      close (a.err_fd);
    return false;
  }
  r = worker_adopt (e, &a);
  if (r < 0) {
    log_warning (e->ctx, "export '%s': cannot adopt worker %d: %s",
                 e->def.name, (int) a.pid, strerror (-r));
    return false;
  }
  return !a.retired;
}

/* E's listeners and workers from the earlier daemon.  Returns 1 if its
 * current worker was adopted, 0 if it has none (start it by policy).
 */
int
fdstore_adopt_export (struct export *e, sd_bus_error *error)
{
  json_object *je = fdstore_map_export (e->def.name), *ws;
  bool adopted = false;
  int r;

  r = adopt_listeners (e, je, error);
  if (r < 0 || je == NULL)
    return r;
  adopt_info (e, je);
  ws = get_array (je, "workers");
  for (size_t i = 0; ws && i < json_object_array_length (ws); i++)
    adopted |= adopt_worker (e, json_object_array_get_idx (ws, i));
  if (!adopted)
    e->info.valid = false;
  export_recount (e);
  return adopted;
}

/* SIGTERM with --fd-store: the workers of stored exports keep serving;
 * transient exports (not in the state directory, so no later daemon
 * could know them) stop as without --fd-store.
 */
void
fdstore_hand_off (struct context *ctx)
{
  size_t kept = 0;

  ctx->handing_off = true;
  for (size_t i = 0; i < ctx->exports.len; i++) {
    struct export *e = ctx->exports.ptr[i];
    if (fdstore_keeps (e))
      kept += export_has_workers (e);
    else
      worker_stop (e, true);
  }
  fdstore_dirty ();
  fdstore_sync (ctx);
  log_info (ctx, "fd store: %zu worker(s) keep running for the next nbdkitd",
            kept);
}

/* At exit after fdstore_hand_off: forget the kept workers and listeners
 * without stopping, killing or unlinking anything.
 */
void
fdstore_detach (struct context *ctx)
{
  for (size_t i = 0; i < ctx->exports.len; i++) {
    struct export *e = ctx->exports.ptr[i];

    if (!fdstore_keeps (e)) {
      worker_stop (e, false);
      continue;
    }
    if (e->worker)
      spawn_detach (e->worker->spawn);
    for (struct worker *w = e->retired; w; w = w->next_retired)
      spawn_detach (w->spawn);
    for (size_t j = 0; j < e->listeners.len; j++) {
      sd_event_source_disable_unref (e->listeners.ptr[j].watch);
      close (e->listeners.ptr[j].fd);
      free (e->listeners.ptr[j].address);
    }
    listener_vector_reset (&e->listeners);
  }
}
