/* SPDX-License-Identifier: BSD-3-Clause
 * Export.Update: change the definition of an export.  The new definition
 * is checked by a dry run like AddExport's, stored, and a running worker
 * is restarted with it; listeners that stay are kept open.
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbdkitd.h"

struct update_job {
  struct export *e;
  sd_bus_message *m;
  struct export_def def;
};

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

/* The listeners of the new definition: kept where the address stays. */
static int
update_listeners (struct export *e, const string_vector *addresses,
                  sd_bus_error *error)
{
  listener_vector out = empty_vector;
  int r;

  for (size_t i = 0; i < addresses->len; i++) {
    const char *a = addresses->ptr[i];
    struct listener l = { .fd = -1 };
    size_t j;

    if (strcmp (a, "shared") == 0)
      continue;
    for (j = 0; j < e->listeners.len; j++)
      if (strcmp (e->listeners.ptr[j].address, a) == 0)
        break;
    if (j < e->listeners.len) {
      l = e->listeners.ptr[j];
      listener_vector_remove (&e->listeners, j);
    }
    else {
      r = listener_open (a, &l.fd, error);
      if (r == 0 && (l.address = strdup (a)) == NULL) {
        close (l.fd);
        r = -ENOMEM;
      }
      if (r < 0) {
        /* Give the kept ones back. */
        for (size_t k = 0; k < out.len; k++)
          listener_vector_append (&e->listeners, out.ptr[k]);
        listener_vector_reset (&out);
        return r;
      }
    }
    if (listener_vector_append (&out, l) == -1) {
      listeners_close (&out);
      return -ENOMEM;
    }
  }
  listeners_close (&e->listeners);
  e->listeners = out;
  return 0;
}

static void
update_validated (void *opaque, int err, const char *err_name,
                  const char *message)
{
  struct update_job *job = opaque;
  struct export *e = job->e;
  sd_bus_error error = SD_BUS_ERROR_NULL;
  int r;

  if (err < 0) {
    sd_bus_reply_method_errorf (job->m, err_name, "Export '%s': %s",
                                e->def.name, message);
    update_job_free (job);
    return;
  }
  r = update_listeners (e, &job->def.listeners, &error);
  if (r >= 0)
    r = store_save (e->ctx, &job->def);
  if (r < 0) {
    if (sd_bus_error_is_set (&error))
      sd_bus_reply_method_error (job->m, &error);
    else
      sd_bus_reply_method_errnof (job->m, r, "Export '%s': %m", e->def.name);
    sd_bus_error_free (&error);
    update_job_free (job);
    return;
  }
  export_def_done (&e->def);
  e->def = job->def;
  export_def_init (&job->def);
  job->def.name = strdup (e->def.name);
  e->shared = export_is_shared (&e->def);
  log_info (e->ctx, "export '%s' updated", e->def.name);
  export_emit_all_changed (e);
  if (e->worker)
    worker_restart (e);
  else if (e->def.start == START_ON_DEMAND)
    export_listeners_watch (e, true);
  sd_bus_reply_method_return (job->m, NULL);
  update_job_free (job);
}

int
method_update (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct export *e = userdata;
  struct export_def def;
  int_vector fds = empty_vector;
  string_vector keys = empty_vector;
  bool no_interaction = false;
  struct update_job *job;
  int r;

  r = export_def_copy (&def, &e->def);
  if (r < 0)
    return r;
  r = export_options_parse (m, &def, true, &no_interaction, &fds, &keys, error);
  if (r >= 0)
    r = export_def_check (&def, error);
  if (r >= 0 && fds.len && def.persist)
    r = sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                           "Export '%s': secrets need persist=false",
                           def.name);
  if (r >= 0 && e->broken_file)
    r = sd_bus_error_setf (error, NBDKITD_ERROR_PLUGIN_FAILED,
                           "Export '%s': %s (remove it and add it again)",
                           e->def.name, e->last_error);
  if (r >= 0 && e->updating)
    r = sd_bus_error_setf (error, NBDKITD_ERROR_BUSY,
                           "Export '%s' is being updated already", e->def.name);
  if (r < 0)
    goto out;
  r = polkit_authorize (e->ctx, m, POLKIT_ACTION_MANAGE, !no_interaction,
                        method_update, error);
  if (r <= 0) {
    r = r < 0 ? r : 1;
    goto out;
  }
  r = secrets_read (&def, &fds, &keys, error);
  if (r < 0)
    goto out;
  job = calloc (1, sizeof *job);
  if (job == NULL) {
    r = -ENOMEM;
    goto out;
  }
  job->e = e;
  job->m = sd_bus_message_ref (m);
  job->def = def;
  export_def_init (&def);
  e->updating = true;
  e->ctx->pending_calls++;
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
