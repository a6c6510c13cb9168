/* SPDX-License-Identifier: BSD-3-Clause
 * The Manager object (/org/nbdkit/Daemon1, interface
 * org.nbdkit.Daemon1.Manager): AddExport, RemoveExport, GetExport,
 * ListExports, ListPlugins, ListFilters, Reload, Version, ExportCount,
 * ExportAdded and ExportRemoved; and the ObjectManager.
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbdkitd.h"
#include "worker.h"

/* An AddExport between authorization and its reply: the dry run, or the
 * start of the export's first worker.
 */
struct add_job {
  struct context *ctx;
  sd_bus_message *m;
  struct export_def def;
  char *name;                   /* in ctx->pending_names until the reply */
  listener_vector listeners;
  struct export *export;        /* its first worker is starting */
};

static void
add_job_free (struct add_job *job)
{
  struct context *ctx = job->ctx;

  for (size_t i = 0; i < ctx->pending_names.len; i++)
    if (ctx->pending_names.ptr[i] == job->name) {
      free (ctx->pending_names.ptr[i]);
      string_vector_remove (&ctx->pending_names, i);
      break;
    }
  if (job->export) {
    for (size_t i = 0; i < ctx->adding.len; i++)
      if (ctx->adding.ptr[i] == job->export) {
        export_vector_remove (&ctx->adding, i);
        break;
      }
    job->export->adding = NULL;
    export_free (job->export);
  }
  listeners_close (&job->listeners);
  export_def_done (&job->def);
  sd_bus_message_unref (job->m);
  free (job);
  ctx->pending_calls--;
  context_check_idle (ctx);
}

static int
on_track_empty (sd_bus_track *track, void *userdata)
{
  struct export *e = userdata;

  log_info (e->ctx, "export '%s': its creator left the bus, removing it",
            e->def.name);
  export_remove_graceful (e, NULL);
  return 0;
}

/* E is checked and stored: register, announce, reply. */
static void
add_export_publish (struct add_job *job, struct export *e)
{
  struct context *ctx = job->ctx;
  int r;

  if (!e->def.persist) {
    r = sd_bus_track_new (ctx->bus, &e->track, on_track_empty, e);
    if (r >= 0)
      r = sd_bus_track_add_sender (e->track, job->m);
    if (r < 0)
      log_warning (ctx, "export '%s': cannot track its creator: %s",
                   e->def.name, strerror (-r));
  }
  log_info (ctx, "export '%s' added (plugin %s)", e->def.name, e->def.plugin);
  sd_bus_emit_object_added (ctx->bus, e->path);
  sd_bus_emit_signal (ctx->bus, NBDKITD_MANAGER_PATH, NBDKITD_MANAGER_IFACE,
                      "ExportAdded", "so", e->def.name, e->path);
  manager_emit_export_count (ctx);
  sd_bus_reply_method_return (job->m, "o", e->path);
}

/* The dry run is done (manual and on-demand exports): store, register,
 * announce, reply, and watch the listeners for on-demand.
 */
static void
add_export_validated (void *opaque, int err, const char *err_name,
                      const char *message)
{
  struct add_job *job = opaque;
  struct context *ctx = job->ctx;
  struct export *e;
  int r;

  if (err < 0) {
    sd_bus_reply_method_errorf (job->m, err_name, "Export '%s': %s",
                                job->def.name, message);
    add_job_free (job);
    return;
  }
  r = store_save (ctx, &job->def);
  if (r < 0) {
    sd_bus_reply_method_errnof (job->m, r, "Export '%s': failed to store "
                                "the definition: %m", job->def.name);
    add_job_free (job);
    return;
  }
  r = export_registry_add (ctx, &job->def, &e);
  if (r < 0) {
    store_delete (ctx, job->def.name);
    sd_bus_reply_method_errno (job->m, r, NULL);
    add_job_free (job);
    return;
  }
  e->listeners = job->listeners;
  job->listeners = (listener_vector) empty_vector;
  add_export_publish (job, e);
  export_start_by_policy (e);
  context_update_status (ctx);
  add_job_free (job);
}

/* A boot export: starting its worker is the check (it sends "error"
 * instead of "ready" for what a dry run would refuse), so there is one
 * nbdkit start between AddExport and the first byte, not two.
 */
static int
add_export_start (struct add_job *job)
{
  struct context *ctx = job->ctx;
  struct export *e;
  int r;

  r = export_new (ctx, &job->def, &e);
  if (r < 0)
    return r;
  if (export_vector_append (&ctx->adding, e) == -1) {
    export_def_swap (&job->def, &e->def);
    export_free (e);
    return -ENOMEM;
  }
  e->listeners = job->listeners;
  job->listeners = (listener_vector) empty_vector;
  e->adding = job;
  job->export = e;
  return worker_start (e);
}

/* E's first worker is ready: store, register, announce, reply. */
void
add_export_worker_ready (struct export *e)
{
  struct add_job *job = e->adding;
  struct context *ctx = job->ctx;
  int r;

  r = store_save (ctx, &e->def);
  if (r >= 0)
    r = export_registry_insert (ctx, e);
  if (r < 0) {
    store_delete (ctx, e->def.name);
    sd_bus_reply_method_errnof (job->m, r, "Export '%s': failed to store "
                                "the definition: %m", e->def.name);
    add_job_free (job);           /* stops the worker */
    return;
  }
  for (size_t i = 0; i < ctx->adding.len; i++)
    if (ctx->adding.ptr[i] == e) {
      export_vector_remove (&ctx->adding, i);
      break;
    }
  e->adding = NULL;
  job->export = NULL;
  add_export_publish (job, e);
  context_update_status (ctx);
  add_job_free (job);
}

/* E's first worker failed before it was ready: nothing is kept. */
void
add_export_worker_failed (struct export *e, const char *message)
{
  struct add_job *job = e->adding;
  char *msg = validate_error_text (message ? message : "");

  sd_bus_reply_method_errorf (job->m, validate_error_name (msg ? msg : ""),
                              "Export '%s': %s", e->def.name,
                              msg ? msg : "nbdkit failed");
  free (msg);
  add_job_free (job);
}

/* At exit: the exports still starting are dropped without a reply. */
void
add_exports_abandon (struct context *ctx)
{
  while (ctx->adding.len)
    add_job_free (ctx->adding.ptr[0]->adding);
  export_vector_reset (&ctx->adding);
}

/* AddExport's arguments (s name, s plugin, as filters, a(ss) params,
 * a{sv} options).
 */
static int
add_export_body_read (sd_bus_message *m, struct export_def *def,
                      bool *no_interaction, int_vector *fds,
                      string_vector *keys, sd_bus_error *error)
{
  const char *name, *plugin;
  char **filters = NULL;
  int r;

  r = sd_bus_message_read (m, "ss", &name, &plugin);
  if (r < 0)
    return r;
  def->name = strdup (name);
  def->plugin = strdup (plugin);
  if (!def->name || !def->plugin)
    return -ENOMEM;
  r = sd_bus_message_read_strv (m, &filters);
  if (r < 0)
    return r;
  for (char **p = filters; p && *p; p++)
    if (string_vector_append (&def->filters, *p) == -1) {
      for (; *p; p++)
        free (*p);
      free (filters);
      return -ENOMEM;
    }
  free (filters);
  r = export_params_read (m, &def->params);
  if (r < 0)
    return r;
  return export_options_parse (m, def, false, no_interaction, fds, keys, error);
}

static int
method_add_export (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct context *ctx = userdata;
  struct export_def def;
  int_vector fds = empty_vector;
  string_vector keys = empty_vector;
  bool no_interaction = false;
  struct add_job *job = NULL;
  int r;

  /* Read. */
  export_def_init (&def);
  r = add_export_body_read (m, &def, &no_interaction, &fds, &keys, error);
  /* Validate. */
  if (r >= 0)
    r = export_def_check (&def, error);
  if (r >= 0 && fds.len && def.persist)
    r = sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                           "Export '%s': secrets need persist=false (secrets "
                           "are never stored)", def.name);
  if (r >= 0 && (export_registry_find (ctx, def.name) ||
                 export_name_pending (ctx, def.name)))
    r = sd_bus_error_setf (error, NBDKITD_ERROR_EXPORT_EXISTS,
                           "Export '%s' exists already", def.name);
  if (r < 0)
    goto out;
  /* Authorize (0: polkit was asked, the handler runs again later). */
  r = polkit_authorize (ctx, m, POLKIT_ACTION_MANAGE, !no_interaction,
                        method_add_export, error);
  if (r <= 0) {
    r = r < 0 ? r : 1;
    goto out;
  }
  /* Act: secrets, listeners, then the first worker or the dry run. */
  job = calloc (1, sizeof *job);
  if (job == NULL) {
    r = -ENOMEM;
    goto out;
  }
  r = secrets_read (&def, &fds, &keys, error);
  if (r >= 0)
    r = listeners_open (&def.listeners, &job->listeners, error);
  if (r >= 0) {
    job->name = strdup (def.name);
    if (job->name == NULL ||
        string_vector_append (&ctx->pending_names, job->name) == -1) {
      free (job->name);
      r = -ENOMEM;
    }
  }
  if (r < 0) {
    listeners_close (&job->listeners);
    free (job);
    goto out;
  }
  job->ctx = ctx;
  job->m = sd_bus_message_ref (m);
  job->def = def;
  export_def_init (&def);
  ctx->pending_calls++;
  if (job->def.start == START_BOOT)
    r = add_export_start (job);
  else
    r = validate_export (ctx, &job->def, add_export_validated, job);
  if (r < 0) {
    sd_bus_error_set_errnof (error, r, "Export '%s': cannot run nbdkit: %m",
                             job->name);
    add_job_free (job);
    goto out;
  }
  r = 1;
 out:
  export_def_done (&def);
  int_vector_reset (&fds);
  string_vector_free_all (&keys);
  return r;
}

static int
method_remove_export (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct context *ctx = userdata;
  const char *name, *mode;
  struct export *e;
  bool hard;
  int r;

  r = sd_bus_message_read (m, "ss", &name, &mode);
  if (r < 0)
    return r;
  if (strcmp (mode, "safe") != 0 && strcmp (mode, "hard") != 0)
    return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                              "Removal mode '%s' is neither 'safe' nor 'hard'",
                              mode);
  hard = strcmp (mode, "hard") == 0;
  e = export_registry_find (ctx, name);
  if (e == NULL)
    return sd_bus_error_setf (error, NBDKITD_ERROR_NO_SUCH_EXPORT,
                              "No export named '%s'", name);
  r = polkit_authorize (ctx, m, POLKIT_ACTION_MANAGE, true,
                        method_remove_export, error);
  if (r <= 0)
    return r < 0 ? r : 1;
  if (!hard && (e->counters.active > 0 || router_has_pending (e)))
    return sd_bus_error_setf (error, NBDKITD_ERROR_BUSY,
                              "Export '%s' has %u connected clients "
                              "(remove it with mode 'hard' to disconnect them)",
                              name, e->counters.active);
  if (e->updating || e->removing)
    return sd_bus_error_setf (error, NBDKITD_ERROR_BUSY,
                              "Export '%s' is being %s", name,
                              e->updating ? "updated" : "removed");
  /* Act: the worker stops gracefully (hard: its clients' in-flight
   * requests finish), then the export goes and the call is answered.
   */
  r = export_remove_graceful (e, m);
  if (r < 0)
    return sd_bus_error_set_errnof (error, r, "Export '%s': cannot remove "
                                    "it: %m", name);
  return 1;
}

static int
method_get_export (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct context *ctx = userdata;
  const char *name;
  struct export *e;
  int r;

  r = sd_bus_message_read (m, "s", &name);
  if (r < 0)
    return r;
  e = export_registry_find (ctx, name);
  if (e == NULL)
    return sd_bus_error_setf (error, NBDKITD_ERROR_NO_SUCH_EXPORT,
                              "No export named '%s'", name);
  return sd_bus_reply_method_return (m, "o", e->path);
}

static int
method_list_exports (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct context *ctx = userdata;
  sd_bus_message *reply = NULL;
  int r;

  r = sd_bus_message_new_method_return (m, &reply);
  if (r >= 0)
    r = sd_bus_message_open_container (reply, 'a', "(ssso)");
  for (size_t i = 0; r >= 0 && i < ctx->exports.len; i++) {
    struct export *e = ctx->exports.ptr[i];
    r = sd_bus_message_append (reply, "(ssso)", e->def.name, e->def.plugin,
                               export_state_to_string (e->state), e->path);
  }
  if (r >= 0)
    r = sd_bus_message_close_container (reply);
  if (r >= 0)
    r = sd_bus_send (NULL, reply, NULL);
  sd_bus_message_unref (reply);
  return r;
}

static int
method_list_plugins (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct context *ctx = userdata;
  int r = catalogue_reply (ctx, m, false);

  if (r < 0)
    return sd_bus_error_set_errnof (error, r, "Cannot list plugins: %m");
  return r;
}

static int
method_list_filters (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct context *ctx = userdata;
  int r = catalogue_reply (ctx, m, true);

  if (r < 0)
    return sd_bus_error_set_errnof (error, r, "Cannot list filters: %m");
  return r;
}

static void
reload_tls_reply (struct export *e, json_object *reply, void *opaque)
{
  json_object *ok, *err;

  if (reply && json_object_object_get_ex (reply, "ok", &ok) &&
      !json_object_get_boolean (ok) &&
      json_object_object_get_ex (reply, "error", &err))
    log_warning (e->ctx, "export '%s': reloading TLS credentials: %s",
                 e->def.name, json_object_get_string (err));
}

/* Reload and SIGHUP: forget the module catalogue, read the shared
 * listener's credentials again and make every running TLS worker read
 * its certificates or PSK file again (new handshakes use them,
 * established connections keep theirs).
 */
void
context_reload (struct context *ctx)
{
  catalogue_free (ctx);
  context_reload_tls (ctx);
}

/* ReloadTLS: only the credentials, of the shared listener and of every
 * running worker with TLS of its own.
 */
void
context_reload_tls (struct context *ctx)
{
  router_tls_reload (ctx);
  for (size_t i = 0; i < ctx->exports.len; i++) {
    struct export *e = ctx->exports.ptr[i];
    if (export_worker_has_tls (&e->def) && worker_running (e))
      worker_command (e, "reload-tls", NULL, -1, reload_tls_reply, NULL);
  }
}

static int
method_reload_tls (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct context *ctx = userdata;
  int r;

  r = polkit_authorize (ctx, m, POLKIT_ACTION_MANAGE, true, method_reload_tls,
                        error);
  if (r <= 0)
    return r < 0 ? r : 1;
  context_reload_tls (ctx);
  return sd_bus_reply_method_return (m, NULL);
}

static int
method_reload (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct context *ctx = userdata;
  int r;

  r = polkit_authorize (ctx, m, POLKIT_ACTION_MANAGE, true, method_reload,
                        error);
  if (r <= 0)
    return r < 0 ? r : 1;
  context_reload (ctx);
  return sd_bus_reply_method_return (m, NULL);
}

static int
property_get_version (sd_bus *bus, const char *path, const char *interface,
                      const char *property, sd_bus_message *reply,
                      void *userdata, sd_bus_error *error)
{
  return sd_bus_message_append (reply, "s", PACKAGE_VERSION);
}

static int
property_get_export_count (sd_bus *bus, const char *path, const char *interface,
                           const char *property, sd_bus_message *reply,
                           void *userdata, sd_bus_error *error)
{
  struct context *ctx = userdata;
  return sd_bus_message_append (reply, "u", (uint32_t) ctx->exports.len);
}

static const sd_bus_vtable manager_vtable[] = {
  SD_BUS_VTABLE_START (0),
  SD_BUS_PROPERTY ("Version", "s", property_get_version, 0,
                   SD_BUS_VTABLE_PROPERTY_CONST),
  SD_BUS_PROPERTY ("ExportCount", "u", property_get_export_count, 0,
                   SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
  SD_BUS_PROPERTY ("TLSCertificates", "s", property_get_shared_tls, 0,
                   SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
  SD_BUS_PROPERTY ("TLSPSK", "s", property_get_shared_tls, 0,
                   SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
  SD_BUS_METHOD_WITH_ARGS ("AddExport",
                           SD_BUS_ARGS ("s", name, "s", plugin, "as", filters,
                                        "a(ss)", params, "a{sv}", options),
                           SD_BUS_RESULT ("o", path),
                           method_add_export, SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("RemoveExport", SD_BUS_ARGS ("s", name, "s", mode),
                           SD_BUS_NO_RESULT, method_remove_export,
                           SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("GetExport", SD_BUS_ARGS ("s", name),
                           SD_BUS_RESULT ("o", path), method_get_export,
                           SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("ListExports", SD_BUS_NO_ARGS,
                           SD_BUS_RESULT ("a(ssso)", exports),
                           method_list_exports, SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("ListPlugins", SD_BUS_NO_ARGS,
                           SD_BUS_RESULT ("a(sss)", plugins),
                           method_list_plugins, SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("ListFilters", SD_BUS_NO_ARGS,
                           SD_BUS_RESULT ("a(sss)", filters),
                           method_list_filters, SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("Reload", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                           method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("ReloadTLS", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT,
                           method_reload_tls, SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_METHOD_WITH_ARGS ("SetTLS",
                           SD_BUS_ARGS ("s", tls_certificates, "s", tls_psk),
                           SD_BUS_NO_RESULT, method_set_tls,
                           SD_BUS_VTABLE_UNPRIVILEGED),
  SD_BUS_SIGNAL_WITH_ARGS ("ExportAdded", SD_BUS_ARGS ("s", name, "o", path), 0),
  SD_BUS_SIGNAL_WITH_ARGS ("ExportRemoved", SD_BUS_ARGS ("s", name, "o", path), 0),
  SD_BUS_VTABLE_END
};

int
manager_object_register (struct context *ctx)
{
  int r;

  r = sd_bus_add_object_vtable (ctx->bus, &ctx->manager_slot,
                                NBDKITD_MANAGER_PATH, NBDKITD_MANAGER_IFACE,
                                manager_vtable, ctx);
  if (r < 0)
    return r;
  return sd_bus_add_object_manager (ctx->bus, NULL, NBDKITD_MANAGER_PATH);
}

int
manager_emit_export_count (struct context *ctx)
{
  return sd_bus_emit_properties_changed (ctx->bus, NBDKITD_MANAGER_PATH,
                                         NBDKITD_MANAGER_IFACE, "ExportCount",
                                         NULL);
}
