/* SPDX-License-Identifier: BSD-3-Clause
 * Export.Update: change the definition of an export.  Nothing changes
 * until the whole new definition has been checked (a dry run when the
 * worker's command line changes), its new listeners are open and it is
 * stored; then it replaces the old one at once.  A running worker is
 * replaced only when its command line changed: a new worker takes the
 * new clients while the old one serves its own until they leave
 * (worker-retire.c); when only the export's listeners changed the worker
 * is given the new set and keeps running.  An Update that changes
 * nothing does nothing, not even PropertiesChanged.
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbdkitd.h"
#include "worker.h"

struct update_job {
  struct export *e;
  sd_bus_message *m;
  struct export_def def;
  unsigned changes;             /* DEF_CHANGE_* */
};

static void
listeners_reply (struct export *e, json_object *reply, void *opaque)
{
  json_object *ok;

  if (reply && json_object_object_get_ex (reply, "ok", &ok) &&
      json_object_get_boolean (ok))
    return;
  /* The worker is gone or refused: a new one gets the listeners. */
  log_warning (e->ctx, "export '%s': the worker did not take its new "
               "listeners (%s), replacing it", e->def.name,
               reply ? json_object_to_json_string (reply) : "no reply");
  if (e->worker && !e->removing)
    worker_replace (e);
}

/* Only the export's own listeners changed: give the running worker the
 * new set ("listeners", nbdkit-worker(7)) instead of replacing it.
 */
static void
worker_set_listeners (struct export *e)
{
  int fds[WORKER_MAX_FDS];
  size_t n = 0;

  /* A TLS export's worker takes TLS options only with listeners of its
   * own (command.c): let a new worker start with the right ones.
   */
  if (!worker_running (e) || e->listeners.len > WORKER_MAX_FDS ||
      e->def.tls != TLS_MODE_OFF) {
    worker_replace (e);
    return;
  }
  for (size_t i = 0; i < e->listeners.len; i++)
    fds[n++] = e->listeners.ptr[i].fd;
  if (worker_command_fds (e->worker, "listeners", NULL, fds, n,
                          listeners_reply, NULL) < 0)
    worker_replace (e);
  else
    log_info (e->ctx, "export '%s': the worker now listens on the new "
              "listeners", e->def.name);
}

static void
update_job_free (struct update_job *job)
{
  struct context *ctx = job->e->ctx;

  job->e->updating = false;
  export_def_done (&job->def);
  sd_bus_message_unref (job->m);
  free (job);
  ctx->pending_calls--;
  context_check_idle (ctx);
}

static bool
listener_in (const listener_vector *v, int fd)
{
  for (size_t i = 0; i < v->len; i++)
    if (v->ptr[i].fd == fd)
      return true;
  return false;
}

/* Close the listeners of FROM that are not in KEEP; reset FROM. */
static void
listeners_close_except (listener_vector *from, const listener_vector *keep)
{
  listener_vector gone = empty_vector;

  for (size_t i = 0; i < from->len; i++)
    if (!listener_in (keep, from->ptr[i].fd) &&
        listener_vector_append (&gone, from->ptr[i]) == -1) {
      /* Cannot fail for lack of room in practice; close it directly. */
      sd_event_source_disable_unref (from->ptr[i].watch);
      close (from->ptr[i].fd);
      free (from->ptr[i].address);
    }
  listeners_close (&gone);
  listener_vector_reset (from);
}

/* The listeners of the new definition in OUT: E's own where the address
 * stays, newly opened ones for new addresses.  E is not changed.
 */
static int
update_listeners_open (struct export *e, const string_vector *addresses,
                       listener_vector *out, sd_bus_error *error)
{
  int r = 0;

  for (size_t i = 0; r == 0 && i < addresses->len; i++) {
    const char *a = addresses->ptr[i];
    struct listener l = { .fd = -1 };
    size_t j;

    if (strcmp (a, "shared") == 0)
      continue;
    for (j = 0; j < e->listeners.len; j++)
      if (strcmp (e->listeners.ptr[j].address, a) == 0)
        break;
    if (j < e->listeners.len)
      l = e->listeners.ptr[j];
    else {
      r = listener_open (a, &l.fd, error);
      if (r == 0 && (l.address = strdup (a)) == NULL) {
        close (l.fd);
        r = -ENOMEM;
      }
      if (r < 0)
        break;
    }
    if (listener_vector_append (out, l) == -1) {
      if (j == e->listeners.len) {
        close (l.fd);
        free (l.address);
      }
      r = -ENOMEM;
    }
  }
  if (r < 0)
    listeners_close_except (out, &e->listeners);
  return r;
}

/* PropertiesChanged for what differs between OLD and E's definition. */
static void
update_emit (struct export *e, const struct export_def *old)
{
  unsigned changes = export_def_compare (old, &e->def);
  const char *names[12];
  size_t n = 0;

  if ((old->description == NULL) != (e->def.description == NULL) ||
      (old->description && strcmp (old->description, e->def.description)))
    names[n++] = "Description";
  if (changes & DEF_CHANGE_COMMAND)
    names[n++] = "Plugin", names[n++] = "Filters", names[n++] = "Parameters",
      names[n++] = "ReadOnly", names[n++] = "TLS";
  if (changes & (DEF_CHANGE_LISTENERS | DEF_CHANGE_COMMAND))
    names[n++] = "Listeners", names[n++] = "URIs";
  if (old->start != e->def.start)
    names[n++] = "StartPolicy";
  names[n] = NULL;
  if (n > 0)
    sd_bus_emit_properties_changed_strv (e->ctx->bus, e->path,
                                         NBDKITD_EXPORT_IFACE, (char **) names);
}

/* Checked: open the new listeners, store, then swap the definitions. */
static void
update_commit (struct update_job *job)
{
  struct export *e = job->e;
  listener_vector listeners = empty_vector;
  sd_bus_error error = SD_BUS_ERROR_NULL;
  int r;

  r = update_listeners_open (e, &job->def.listeners, &listeners, &error);
  if (r >= 0 && (r = store_save (e->ctx, &job->def)) < 0)
    listeners_close_except (&listeners, &e->listeners);
  if (r < 0) {
    if (sd_bus_error_is_set (&error))
      sd_bus_reply_method_error (job->m, &error);
    else
      sd_bus_reply_method_errnof (job->m, r, "Export '%s': %m", e->def.name);
    sd_bus_error_free (&error);
    return;
  }
  /* Nothing can fail from here on. */
  listeners_close_except (&e->listeners, &listeners);
  e->listeners = listeners;
  export_def_swap (&e->def, &job->def);
  e->shared = export_is_shared (&e->def);
  log_info (e->ctx, "export '%s' updated", e->def.name);
  update_emit (e, &job->def);
  if (e->worker && (job->changes & DEF_CHANGE_COMMAND))
    worker_replace (e);
  else if (e->worker && (job->changes & DEF_CHANGE_LISTENERS))
    worker_set_listeners (e);
  else if (e->worker == NULL)
    export_listeners_watch (e, e->def.start == START_ON_DEMAND);
  export_idle_check (e);
  sd_bus_reply_method_return (job->m, NULL);
}

static void
update_validated (void *opaque, int err, const char *err_name,
                  const char *message)
{
  struct update_job *job = opaque;

  if (err < 0)
    sd_bus_reply_method_errorf (job->m, err_name, "Export '%s': %s",
                                job->e->def.name, message);
  else
    update_commit (job);
  update_job_free (job);
}

/* Read and check the new definition into DEF. */
static int
update_read (struct export *e, sd_bus_message *m, struct export_def *def,
             bool *no_interaction, int_vector *fds, string_vector *keys,
             sd_bus_error *error)
{
  int r;

  r = export_def_copy (def, &e->def);
  if (r < 0)
    return r;
  r = export_options_parse (m, def, true, no_interaction, fds, keys, error);
  if (r >= 0)
    r = export_def_check (def, error);
  if (r >= 0 && fds->len && def->persist)
    r = sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                           "Export '%s': secrets need persist=false",
                           def->name);
  if (r >= 0 && e->broken_file)
    r = sd_bus_error_setf (error, NBDKITD_ERROR_PLUGIN_FAILED,
                           "Export '%s': %s (remove it and add it again)",
                           e->def.name, e->last_error);
  if (r >= 0 && e->updating)
    r = sd_bus_error_setf (error, NBDKITD_ERROR_BUSY,
                           "Export '%s' is being updated already", e->def.name);
  if (r >= 0 && e->removing)
    r = sd_bus_error_setf (error, NBDKITD_ERROR_BUSY,
                           "Export '%s' is being removed", e->def.name);
  return r;
}

int
method_update (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  struct export_def def = { 0 };
  int_vector fds = empty_vector;
  string_vector keys = empty_vector;
  bool no_interaction = false;
  struct update_job *job;
  unsigned changes;
  int r;

  /* Read, validate. */
  r = update_read (e, m, &def, &no_interaction, &fds, &keys, error);
  if (r < 0)
    goto out;
  /* Nothing changes: nothing to authorize, restart or announce. */
  changes = export_def_compare (&e->def, &def);
  if (changes == 0 && fds.len == 0) {
    r = sd_bus_reply_method_return (m, NULL);
    goto out;
  }
  /* Authorize. */
  r = polkit_authorize (e->ctx, m, POLKIT_ACTION_MANAGE, !no_interaction,
                        method_update, error);
  if (r <= 0) {
    r = r < 0 ? r : 1;
    goto out;
  }
  /* Act: the new secrets, then check (if the command line changed),
   * store and swap.
   */
  r = secrets_read (&def, &fds, &keys, error);
  if (r < 0)
    goto out;
  changes = export_def_compare (&e->def, &def);
  if (changes == 0) {
    r = sd_bus_reply_method_return (m, NULL);
    goto out;
  }
  job = calloc (1, sizeof *job);
  if (job == NULL) {
    r = -ENOMEM;
    goto out;
  }
  job->e = e;
  job->m = sd_bus_message_ref (m);
  job->def = def;
  job->changes = changes;
  export_def_init (&def);
  e->updating = true;
  e->ctx->pending_calls++;
  if (!(changes & DEF_CHANGE_COMMAND)) {
    update_validated (job, 0, NULL, NULL);
    r = 1;
    goto out;
  }
  r = validate_export (e->ctx, &job->def, update_validated, job);
  if (r < 0) {
    sd_bus_error_set_errnof (error, r, "Export '%s': cannot run nbdkit: %m",
                             e->def.name);
    update_job_free (job);
    goto out;
  }
  r = 1;
 out:
  export_def_done (&def);
  int_vector_reset (&fds);
  string_vector_free_all (&keys);
  return r;
}
