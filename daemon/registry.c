/* SPDX-License-Identifier: BSD-3-Clause
 * The export registry: export definitions and their runtime state in
 * memory, looked up by name or object path.
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbdkitd.h"
#include "fdstore.h"
#include "worker.h"

static const char *const state_names[] = {
  [EXPORT_INACTIVE] = "inactive", [EXPORT_STARTING] = "starting",
  [EXPORT_RUNNING] = "running", [EXPORT_STOPPING] = "stopping",
  [EXPORT_FAILED] = "failed",
};
static const char *const start_names[] = {
  [START_BOOT] = "boot", [START_ON_DEMAND] = "on-demand",
  [START_MANUAL] = "manual",
};
static const char *const tls_names[] = {
  [TLS_MODE_OFF] = "off", [TLS_MODE_ON] = "on", [TLS_MODE_REQUIRE] = "require",
};

const char *
export_state_to_string (enum export_state s)
{
  return state_names[s];
}

const char *
start_policy_to_string (enum start_policy p)
{
  return start_names[p];
}

int
start_policy_from_string (const char *s)
{
  for (size_t i = 0; i < sizeof start_names / sizeof start_names[0]; i++)
    if (strcmp (s, start_names[i]) == 0)
      return i;
  return -EINVAL;
}

const char *
tls_mode_to_string (enum tls_mode m)
{
  return tls_names[m];
}

int
tls_mode_from_string (const char *s)
{
  for (size_t i = 0; i < sizeof tls_names / sizeof tls_names[0]; i++)
    if (strcmp (s, tls_names[i]) == 0)
      return i;
  return -EINVAL;
}

void
export_def_init (struct export_def *def)
{
  memset (def, 0, sizeof *def);
  def->persist = true;
  def->start = START_BOOT;
}

static void
params_free (param_vector *params)
{
  for (size_t i = 0; i < params->len; i++) {
    free (params->ptr[i].key);
    if (params->ptr[i].secret && params->ptr[i].value)
      explicit_bzero (params->ptr[i].value, strlen (params->ptr[i].value));
    free (params->ptr[i].value);
  }
  param_vector_reset (params);
}

void
export_def_done (struct export_def *def)
{
  free (def->name);
  free (def->description);
  free (def->plugin);
  string_vector_free_all (&def->filters);
  params_free (&def->params);
  string_vector_free_all (&def->listeners);
  free (def->tls_certificates);
  free (def->tls_psk);
  string_vector_free_all (&def->tls_allow);
  free (def->user);
  free (def->group);
  memset (def, 0, sizeof *def);
}

static int
strdup_or_null (char **dst, const char *src)
{
  *dst = NULL;
  if (src && (*dst = strdup (src)) == NULL)
    return -ENOMEM;
  return 0;
}

static int
strings_copy (string_vector *dst, const string_vector *src)
{
  for (size_t i = 0; i < src->len; i++) {
    char *s = strdup (src->ptr[i]);
    if (s == NULL || string_vector_append (dst, s) == -1) {
      free (s);
      return -ENOMEM;
    }
  }
  return 0;
}

int
export_def_copy (struct export_def *dst, const struct export_def *src)
{
  *dst = *src;
  dst->filters = (string_vector) empty_vector;
  dst->params = (param_vector) empty_vector;
  dst->listeners = (string_vector) empty_vector;
  dst->tls_allow = (string_vector) empty_vector;
  if (strdup_or_null (&dst->name, src->name) < 0 ||
      strdup_or_null (&dst->description, src->description) < 0 ||
      strdup_or_null (&dst->plugin, src->plugin) < 0 ||
      strdup_or_null (&dst->tls_certificates, src->tls_certificates) < 0 ||
      strdup_or_null (&dst->tls_psk, src->tls_psk) < 0 ||
      strdup_or_null (&dst->user, src->user) < 0 ||
      strdup_or_null (&dst->group, src->group) < 0 ||
      strings_copy (&dst->filters, &src->filters) < 0 ||
      strings_copy (&dst->listeners, &src->listeners) < 0 ||
      strings_copy (&dst->tls_allow, &src->tls_allow) < 0)
    goto nomem;
  for (size_t i = 0; i < src->params.len; i++) {
    struct param p = { .secret = src->params.ptr[i].secret };
    p.key = strdup (src->params.ptr[i].key);
    p.value = strdup (src->params.ptr[i].value);
    if (!p.key || !p.value || param_vector_append (&dst->params, p) == -1) {
      free (p.key);
      free (p.value);
      goto nomem;
    }
  }
  return 0;

 nomem:
  export_def_done (dst);
  return -ENOMEM;
}

/* Export names are NBD export names: UTF-8, at most 4096 bytes, no NUL
 * (D-Bus strings cannot carry one anyway).
 */
int
export_name_validate (const char *name, sd_bus_error *error)
{
  size_t len = strlen (name);

  if (len > EXPORT_NAME_MAX)
    return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                              "Export name is %zu bytes long, the limit is %d",
                              len, EXPORT_NAME_MAX);
  return 0;
}

struct export *
export_registry_find (struct context *ctx, const char *name)
{
  for (size_t i = 0; i < ctx->exports.len; i++)
    if (strcmp (ctx->exports.ptr[i]->def.name, name) == 0)
      return ctx->exports.ptr[i];
  return NULL;
}

struct export *
export_registry_find_path (struct context *ctx, const char *path)
{
  for (size_t i = 0; i < ctx->exports.len; i++)
    if (strcmp (ctx->exports.ptr[i]->path, path) == 0)
      return ctx->exports.ptr[i];
  return NULL;
}

bool
export_name_pending (struct context *ctx, const char *name)
{
  for (size_t i = 0; i < ctx->pending_names.len; i++)
    if (strcmp (ctx->pending_names.ptr[i], name) == 0)
      return true;
  return false;
}

bool
export_is_shared (const struct export_def *def)
{
  if (def->listeners.len == 0)
    return true;
  for (size_t i = 0; i < def->listeners.len; i++)
    if (strcmp (def->listeners.ptr[i], "shared") == 0)
      return true;
  return false;
}

/* Take ownership of DEF (it is emptied) and create the export's runtime
 * state, not yet in the registry.  Listeners are opened by the caller.
 */
int
export_new (struct context *ctx, struct export_def *def, struct export **ret)
{
  struct export *e;
  int r;

  e = calloc (1, sizeof *e);
  if (e == NULL)
    return -ENOMEM;
  r = sd_bus_path_encode (NBDKITD_EXPORT_PREFIX, def->name, &e->path);
  if (r < 0) {
    free (e);
    return r;
  }
  e->ctx = ctx;
  e->def = *def;
  export_def_init (def);
  e->shared = export_is_shared (&e->def);
  e->state = EXPORT_INACTIVE;
  *ret = e;
  return 0;
}

int
export_registry_insert (struct context *ctx, struct export *e)
{
  return export_vector_append (&ctx->exports, e) == -1 ? -ENOMEM : 0;
}

/* export_new and export_registry_insert. */
int
export_registry_add (struct context *ctx, struct export_def *def,
                     struct export **ret)
{
  struct export *e;
  int r;

  r = export_new (ctx, def, &e);
  if (r < 0)
    return r;
  r = export_registry_insert (ctx, e);
  if (r < 0) {
    export_def_swap (def, &e->def);
    export_free (e);
    return r;
  }
  *ret = e;
  return 0;
}

/* Forget E (in the registry or not) and free it, its worker included. */
void
export_registry_remove (struct context *ctx, struct export *e)
{
  for (size_t i = 0; i < ctx->exports.len; i++)
    if (ctx->exports.ptr[i] == e) {
      export_vector_remove (&ctx->exports, i);
      break;
    }
  export_free (e);
}

void
export_free (struct export *e)
{
  router_export_gone (e);
  if (e->worker)
    worker_free (e->worker);
  worker_free_retired (e);
  export_listeners_close (e);
  listener_vector_reset (&e->listeners);
  sd_event_source_disable_unref (e->restart_timer);
  sd_event_source_disable_unref (e->idle_timer);
  sd_event_source_disable_unref (e->counters_timer);
  sd_bus_track_unref (e->track);
  sd_bus_message_unref (e->remove_call);
  export_def_done (&e->def);
  free (e->info.description);
  free (e->path);
  free (e->broken_file);
  free (e->last_error);
  free (e);
}

static bool
str_eq (const char *a, const char *b)
{
  return a == b || (a && b && strcmp (a, b) == 0);
}

static bool
strv_eq (const string_vector *a, const string_vector *b)
{
  if (a->len != b->len)
    return false;
  for (size_t i = 0; i < a->len; i++)
    if (strcmp (a->ptr[i], b->ptr[i]) != 0)
      return false;
  return true;
}

static bool
params_eq (const param_vector *a, const param_vector *b)
{
  if (a->len != b->len)
    return false;
  for (size_t i = 0; i < a->len; i++)
    if (a->ptr[i].secret != b->ptr[i].secret ||
        strcmp (a->ptr[i].key, b->ptr[i].key) != 0 ||
        strcmp (a->ptr[i].value, b->ptr[i].value) != 0)
      return false;
  return true;
}

/* Which parts of two definitions of one export differ (DEF_CHANGE_*). */
unsigned
export_def_compare (const struct export_def *a, const struct export_def *b)
{
  unsigned changes = 0;

  if (!str_eq (a->plugin, b->plugin) || !strv_eq (&a->filters, &b->filters) ||
      !params_eq (&a->params, &b->params) || a->readonly != b->readonly ||
      a->tls != b->tls || !str_eq (a->tls_certificates, b->tls_certificates) ||
      !str_eq (a->tls_psk, b->tls_psk) ||
      a->tls_verify_peer != b->tls_verify_peer || a->threads != b->threads ||
      !str_eq (a->user, b->user) || !str_eq (a->group, b->group))
    changes |= DEF_CHANGE_COMMAND;
  if (!strv_eq (&a->listeners, &b->listeners))
    changes |= DEF_CHANGE_LISTENERS;
  if (!str_eq (a->description, b->description) || a->start != b->start ||
      a->idle_timeout != b->idle_timeout || a->persist != b->persist ||
      !strv_eq (&a->tls_allow, &b->tls_allow))
    changes |= DEF_CHANGE_OTHER;
  return changes;
}

void
export_def_swap (struct export_def *a, struct export_def *b)
{
  struct export_def t = *a;
  *a = *b;
  *b = t;
}

void
export_set_state (struct export *e, enum export_state s)
{
  if (e->state == s)
    return;
  log_debug (e->ctx, "export '%s': %s -> %s", e->def.name,
             export_state_to_string (e->state), export_state_to_string (s));
  e->state = s;
  fdstore_dirty ();             /* the map has the workers' states */
  export_emit_changed (e, "State", NULL);
  context_update_status (e->ctx);
}

void
export_set_last_error (struct export *e, const char *msg)
{
  char *s = strdup (msg ? msg : "");

  if (s == NULL)
    return;
  free (e->last_error);
  e->last_error = s;
  export_emit_changed (e, "LastError", NULL);
}
