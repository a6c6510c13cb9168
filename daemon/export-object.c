/* SPDX-License-Identifier: BSD-3-Clause
 * The Export objects (/org/nbdkit/Daemon1/export/NAME, interface
 * org.nbdkit.Daemon1.Export): properties, Start, Stop, Restart,
 * ListConnections and Disconnect.  Update is in export-update.c.
 */

#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nbdkitd.h"
#include "worker.h"
#include "cleanup.h"

/* Properties. */

static int
property_get_string (sd_bus *bus, const char *path, const char *interface,
                     const char *property, sd_bus_message *reply,
                     void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  const char *s = "";

  if (strcmp (property, "Name") == 0)
    s = e->def.name;
  else if (strcmp (property, "Description") == 0)
    s = e->def.description;
  else if (strcmp (property, "Plugin") == 0)
    s = e->def.plugin;
  else if (strcmp (property, "TLS") == 0)
    s = tls_mode_to_string (e->def.tls);
  else if (strcmp (property, "StartPolicy") == 0)
    s = start_policy_to_string (e->def.start);
  else if (strcmp (property, "State") == 0)
    s = export_state_to_string (e->state);
  else if (strcmp (property, "LastError") == 0)
    s = e->last_error;
  return sd_bus_message_append (reply, "s", s ? s : "");
}

static int
append_strv (sd_bus_message *reply, const string_vector *v)
{
  int r = sd_bus_message_open_container (reply, 'a', "s");

  for (size_t i = 0; r >= 0 && i < v->len; i++)
    r = sd_bus_message_append (reply, "s", v->ptr[i]);
  return r < 0 ? r : sd_bus_message_close_container (reply);
}

static int
property_get_filters (sd_bus *bus, const char *path, const char *interface,
                      const char *property, sd_bus_message *reply,
                      void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  return append_strv (reply, &e->def.filters);
}

static int
property_get_tls_allow (sd_bus *bus, const char *path, const char *interface,
                        const char *property, sd_bus_message *reply,
                        void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  return append_strv (reply, &e->def.tls_allow);
}

static int
property_get_listeners (sd_bus *bus, const char *path, const char *interface,
                        const char *property, sd_bus_message *reply,
                        void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  string_vector shared = empty_vector;
  int r;

  if (e->def.listeners.len)
    return append_strv (reply, &e->def.listeners);
  /* No listeners given means the shared listener. */
  if (string_vector_append (&shared, (char *) "shared") == -1)
    return -ENOMEM;
  r = append_strv (reply, &shared);
  string_vector_reset (&shared);
  return r;
}

static int
property_get_parameters (sd_bus *bus, const char *path, const char *interface,
                         const char *property, sd_bus_message *reply,
                         void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  int r = sd_bus_message_open_container (reply, 'a', "(ss)");

  for (size_t i = 0; r >= 0 && i < e->def.params.len; i++) {
    const struct param *p = &e->def.params.ptr[i];
    r = sd_bus_message_append (reply, "(ss)", p->key,
                               p->secret ? "<secret>" : p->value);
  }
  return r < 0 ? r : sd_bus_message_close_container (reply);
}

static int
property_get_bool (sd_bus *bus, const char *path, const char *interface,
                   const char *property, sd_bus_message *reply,
                   void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  int b = strcmp (property, "ReadOnly") == 0 ? e->def.readonly : e->def.persist;
  return sd_bus_message_append (reply, "b", b);
}

static int
property_get_u32 (sd_bus *bus, const char *path, const char *interface,
                  const char *property, sd_bus_message *reply,
                  void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  uint32_t v = 0;

  if (strcmp (property, "MainPID") == 0)
    v = e->worker ? (uint32_t) spawn_pid (e->worker->spawn) : 0;
  else
    v = e->counters.active;
  return sd_bus_message_append (reply, "u", v);
}

static int
property_get_counter (sd_bus *bus, const char *path, const char *interface,
                      const char *property, sd_bus_message *reply,
                      void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  uint64_t v = 0;

  if (strcmp (property, "TotalConnections") == 0)
    v = e->counters.total;
  else if (strcmp (property, "Requests") == 0)
    v = e->counters.requests;
  else if (strcmp (property, "BytesRead") == 0)
    v = e->counters.bytes_read;
  else if (strcmp (property, "BytesWritten") == 0)
    v = e->counters.bytes_written;
  else if (strcmp (property, "Errors") == 0)
    v = e->counters.errors;
  return sd_bus_message_append (reply, "t", v);
}

/* Percent-encode an export name for a URI path. */
static char *
uri_escape (const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  char *out = malloc (strlen (s) * 3 + 1), *p = out;

  for (; out && *s; s++) {
    unsigned char c = *s;
    if (strchr ("-._~", c) || (c >= '0' && c <= '9') ||
        ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'))
      *p++ = c;
    else {
      *p++ = '%';
      *p++ = hex[c >> 4];
      *p++ = hex[c & 15];
    }
  }
  if (out)
    *p = '\0';
  return out;
}

static int
append_uri (sd_bus_message *reply, const char *address, const char *name,
            bool tls)
{
  char *uri = NULL;
  const char *rest;
  int r;

  if (strncmp (address, "tcp:", 4) == 0) {
    rest = address + 4;
    if (rest[0] == ':')                 /* all addresses */
      r = asprintf (&uri, "nbd%s://localhost%s/%s", tls ? "s" : "", rest, name);
    else
      r = asprintf (&uri, "nbd%s://%s/%s", tls ? "s" : "", rest, name);
  }
  else if (strncmp (address, "unix:", 5) == 0)
    r = asprintf (&uri, "nbd%s+unix:///%s?socket=%s", tls ? "s" : "", name,
                  address + 5);
  else if (strncmp (address, "vsock:", 6) == 0)
    r = asprintf (&uri, "nbd%s+vsock://2:%s/%s", tls ? "s" : "", address + 6,
                  name);
  else
    return 0;
  if (r == -1)
    return -ENOMEM;
  r = sd_bus_message_append (reply, "s", uri);
  free (uri);
  return r;
}

static int
property_get_uris (sd_bus *bus, const char *path, const char *interface,
                   const char *property, sd_bus_message *reply,
                   void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  char *name = uri_escape (e->def.name);
  bool tls = e->def.tls != TLS_MODE_OFF;
  int r;

  if (name == NULL)
    return -ENOMEM;
  r = sd_bus_message_open_container (reply, 'a', "s");
  for (size_t i = 0; r >= 0 && i < e->def.listeners.len; i++)
    r = append_uri (reply, e->def.listeners.ptr[i], name, tls);
  for (size_t i = 0; r >= 0 && e->shared && i < e->ctx->shared.len; i++)
    r = append_uri (reply, e->ctx->shared.ptr[i].address, name, tls);
  free (name);
  return r < 0 ? r : sd_bus_message_close_container (reply);
}

/* Emitting changes. */

void
export_emit_changed (struct export *e, const char *prop, ...)
{
  const char *names[16];
  size_t n = 0;
  va_list args;

  if (!e->ctx->bus_ready || export_registry_find_path (e->ctx, e->path) != e)
    return;
  va_start (args, prop);
  for (const char *p = prop; p && n < 15; p = va_arg (args, const char *))
    names[n++] = p;
  va_end (args);
  names[n] = NULL;
  sd_bus_emit_properties_changed_strv (e->ctx->bus, e->path,
                                       NBDKITD_EXPORT_IFACE, (char **) names);
}

void
export_emit_all_changed (struct export *e)
{
  export_emit_changed (e, "Description", "Plugin", "Filters", "Parameters",
                       "ReadOnly", "Listeners", "URIs", "TLS", "TLSAllow",
                       "StartPolicy", NULL);
}

static uint64_t
now_usec (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * UINT64_C (1000000) + ts.tv_nsec / 1000;
}

static int
on_counters_timer (sd_event_source *s, uint64_t usec, void *userdata)
{
  struct export *e = userdata;

  e->counters_timer = sd_event_source_disable_unref (e->counters_timer);
  export_counters_changed (e);
  return 0;
}

/* The counters emit PropertiesChanged at most once a second. */
void
export_counters_changed (struct export *e)
{
  uint64_t now = now_usec (), next = e->counters_emitted_usec + 1000000;

  if (e->counters_timer)
    return;
  if (e->counters_emitted_usec && now < next) {
    sd_event_add_time_relative (e->ctx->event, &e->counters_timer,
                                CLOCK_MONOTONIC, next - now, 0,
                                on_counters_timer, e);
    return;
  }
  e->counters_emitted_usec = now;
  export_emit_changed (e, "ActiveConnections", "TotalConnections", "Requests",
                       "BytesRead", "BytesWritten", "Errors", NULL);
}

/* Methods. */

static int
method_start (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  int r;

  if (e->broken_file)
    return sd_bus_error_setf (error, NBDKITD_ERROR_PLUGIN_FAILED,
                              "Export '%s': %s", e->def.name, e->last_error);
  if (e->removing)
    return sd_bus_error_setf (error, NBDKITD_ERROR_BUSY,
                              "Export '%s' is being removed", e->def.name);
  if (e->worker && !e->worker->stop_requested)
    return sd_bus_reply_method_return (m, NULL);
  r = polkit_authorize (e->ctx, m, POLKIT_ACTION_MANAGE, true, method_start,
                        error);
  if (r <= 0)
    return r < 0 ? r : 1;
  e->quick_failures = 0;
  r = e->worker ? worker_restart (e) : worker_start (e);
  if (r < 0)
    return sd_bus_error_set_errnof (error, r, "Export '%s': failed to start: %m",
                                    e->def.name);
  return sd_bus_reply_method_return (m, NULL);
}

static int
method_stop (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  int r;

  if (!export_has_workers (e) && !e->restart_timer) {
    if (e->state == EXPORT_STARTING)
      export_set_state (e, EXPORT_INACTIVE);
    return sd_bus_reply_method_return (m, NULL);
  }
  r = polkit_authorize (e->ctx, m, POLKIT_ACTION_MANAGE, true, method_stop,
                        error);
  if (r <= 0)
    return r < 0 ? r : 1;
  e->restart_pending = false;
  if (e->restart_timer) {
    e->restart_timer = sd_event_source_disable_unref (e->restart_timer);
    export_set_state (e, EXPORT_INACTIVE);
  }
  worker_stop (e, true);
  return sd_bus_reply_method_return (m, NULL);
}

static int
method_restart (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  int r;

  if (e->broken_file)
    return sd_bus_error_setf (error, NBDKITD_ERROR_PLUGIN_FAILED,
                              "Export '%s': %s", e->def.name, e->last_error);
  if (e->removing)
    return sd_bus_error_setf (error, NBDKITD_ERROR_BUSY,
                              "Export '%s' is being removed", e->def.name);
  r = polkit_authorize (e->ctx, m, POLKIT_ACTION_MANAGE, true, method_restart,
                        error);
  if (r <= 0)
    return r < 0 ? r : 1;
  r = worker_restart (e);
  if (r < 0)
    return sd_bus_error_set_errnof (error, r,
                                    "Export '%s': failed to restart: %m",
                                    e->def.name);
  return sd_bus_reply_method_return (m, NULL);
}

static void
list_connections_reply (struct export *e, json_object *reply, void *opaque)
{
  sd_bus_message *m = opaque, *out = NULL;
  json_object *conns = NULL;
  int r;

  if (reply == NULL || !json_object_object_get_ex (reply, "connections", &conns)) {
    sd_bus_reply_method_errorf (m, NBDKITD_ERROR_PLUGIN_FAILED,
                                "Export '%s': the worker did not list its "
                                "connections", e->def.name);
    goto out;
  }
  r = sd_bus_message_new_method_return (m, &out);
  if (r >= 0)
    r = sd_bus_message_open_container (out, 'a', "(tsssttt)");
  for (size_t i = 0; r >= 0 && i < json_object_array_length (conns); i++) {
    json_object *c = json_object_array_get_idx (conns, i), *v;
#define S(k) (json_object_object_get_ex (c, k, &v) ? json_object_get_string (v) : "")
#define T(k) (json_object_object_get_ex (c, k, &v) ? (uint64_t) json_object_get_int64 (v) : 0)
    r = sd_bus_message_append (out, "(tsssttt)", T ("connection"), S ("peer"),
                               S ("export"), S ("tls_identity"), T ("since"),
                               T ("bytes_read"), T ("bytes_written"));
#undef S
#undef T
  }
  if (r >= 0)
    r = sd_bus_message_close_container (out);
  if (r >= 0)
    r = sd_bus_send (NULL, out, NULL);
  if (r < 0)
    sd_bus_reply_method_errno (m, r, NULL);
 out:
  sd_bus_message_unref (out);
  sd_bus_message_unref (m);
}

static int
method_list_connections (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  int r;

  if (!worker_running (e))
    return sd_bus_reply_method_return (m, "a(tsssttt)", 0);
  r = worker_command (e, "list-connections", NULL, -1, list_connections_reply,
                      sd_bus_message_ref (m));
  if (r < 0) {
    sd_bus_message_unref (m);
    return sd_bus_error_set_errnof (error, r, "Export '%s': %m", e->def.name);
  }
  return 1;
}

static void
disconnect_reply (struct export *e, json_object *reply, void *opaque)
{
  sd_bus_message *m = opaque;
  json_object *ok, *err;

  if (reply && json_object_object_get_ex (reply, "ok", &ok) &&
      json_object_get_boolean (ok))
    sd_bus_reply_method_return (m, NULL);
  else
    sd_bus_reply_method_errorf (m, NBDKITD_ERROR_INVALID_PARAMETER,
                                "Export '%s': %s", e->def.name,
                                reply && json_object_object_get_ex (reply, "error", &err)
                                ? json_object_get_string (err)
                                : "the worker went away");
  sd_bus_message_unref (m);
}

static int
method_disconnect (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  json_object *args;
  uint64_t id;
  int force, r;

  r = sd_bus_message_read (m, "tb", &id, &force);
  if (r < 0)
    return r;
  if (!worker_running (e))
    return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                              "Export '%s' has no connection %" PRIu64,
                              e->def.name, id);
  r = polkit_authorize (e->ctx, m, POLKIT_ACTION_DISCONNECT, true,
                        method_disconnect, error);
  if (r <= 0)
    return r < 0 ? r : 1;
  args = json_object_new_object ();
  json_object_object_add (args, "connection", json_object_new_int64 (id));
  json_object_object_add (args, "force", json_object_new_boolean (force));
  r = worker_command (e, "disconnect", args, -1, disconnect_reply,
                      sd_bus_message_ref (m));
  if (r < 0) {
    sd_bus_message_unref (m);
    return sd_bus_error_set_errnof (error, r, "Export '%s': %m", e->def.name);
  }
  return 1;
}

#define EMITS SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE
static const sd_bus_vtable export_vtable[] = {
  SD_BUS_VTABLE_START (0),
  SD_BUS_PROPERTY ("Name", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
  SD_BUS_PROPERTY ("Description", "s", property_get_string, 0, EMITS),
  SD_BUS_PROPERTY ("Plugin", "s", property_get_string, 0, EMITS),
  SD_BUS_PROPERTY ("Filters", "as", property_get_filters, 0, EMITS),
  SD_BUS_PROPERTY ("Parameters", "a(ss)", property_get_parameters, 0, EMITS),
  SD_BUS_PROPERTY ("ReadOnly", "b", property_get_bool, 0, EMITS),
  SD_BUS_PROPERTY ("Persistent", "b", property_get_bool, 0, SD_BUS_VTABLE_PROPERTY_CONST),
  SD_BUS_PROPERTY ("Listeners", "as", property_get_listeners, 0, EMITS),
  SD_BUS_PROPERTY ("URIs", "as", property_get_uris, 0, EMITS),
  SD_BUS_PROPERTY ("TLS", "s", property_get_string, 0, EMITS),
  SD_BUS_PROPERTY ("TLSAllow", "as", property_get_tls_allow, 0, EMITS),
  SD_BUS_PROPERTY ("StartPolicy", "s", property_get_string, 0, EMITS),
  SD_BUS_PROPERTY ("State", "s", property_get_string, 0, EMITS),
  SD_BUS_PROPERTY ("MainPID", "u", property_get_u32, 0, EMITS),
  SD_BUS_PROPERTY ("LastError", "s", property_get_string, 0, EMITS),
  SD_BUS_PROPERTY ("ActiveConnections", "u", property_get_u32, 0, EMITS),
  SD_BUS_PROPERTY ("TotalConnections", "t", property_get_counter, 0, EMITS),
  SD_BUS_PROPERTY ("Requests", "t", property_get_counter, 0, EMITS),
  SD_BUS_PROPERTY ("BytesRead", "t", property_get_counter, 0, EMITS),
  SD_BUS_PROPERTY ("BytesWritten", "t", property_get_counter, 0, EMITS),
  SD_BUS_PROPERTY ("Errors", "t", property_get_counter, 0, EMITS),
  SD_BUS_METHOD_WITH_ARGS ("Start", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                           method_start, SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("Stop", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                           method_stop, SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("Restart", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                           method_restart, SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("Update", SD_BUS_ARGS ("a{sv}", changes),
                           SD_BUS_NO_RESULT, method_update,
                           SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("ListConnections", SD_BUS_NO_ARGS,
                           SD_BUS_RESULT ("a(tsssttt)", connections),
                           method_list_connections, SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("Disconnect", SD_BUS_ARGS ("t", id, "b", force),
                           SD_BUS_NO_RESULT, method_disconnect,
                           SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_VTABLE_END
};

static int
export_object_find (sd_bus *bus, const char *path, const char *interface,
                    void *userdata, void **found, sd_bus_error *error)
{
  struct context *ctx = userdata;
  struct export *e = export_registry_find_path (ctx, path);

  if (e == NULL)
    return 0;
  *found = e;
  return 1;
}

static int
export_object_enumerate (sd_bus *bus, const char *path, void *userdata,
                         char ***nodes, sd_bus_error *error)
{
  struct context *ctx = userdata;
  char **l = calloc (ctx->exports.len + 1, sizeof *l);

  if (l == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < ctx->exports.len; i++)
    if ((l[i] = strdup (ctx->exports.ptr[i]->path)) == NULL) {
      for (size_t j = 0; j < i; j++)
        free (l[j]);
      free (l);
      return -ENOMEM;
    }
  *nodes = l;
  return 0;
}

int
export_object_register (struct context *ctx)
{
  int r;

  r = sd_bus_add_fallback_vtable (ctx->bus, NULL, NBDKITD_EXPORT_PREFIX,
                                  NBDKITD_EXPORT_IFACE, export_vtable,
                                  export_object_find, ctx);
  if (r < 0)
    return r;
  return sd_bus_add_node_enumerator (ctx->bus, NULL, NBDKITD_EXPORT_PREFIX,
                                     export_object_enumerate, ctx);
}
