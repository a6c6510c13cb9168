/* SPDX-License-Identifier: BSD-3-Clause
 * Marshalling the export options (DESIGN.md, "D-Bus API — the contract",
 * the `options` keys) and parameters into AddExport and Update calls.
 */

#include <config.h>

#include <errno.h>
#include <unistd.h>

#include "nbdkitctl.h"

/* a(ss): the parameters, in command-line order. */
int
append_params (sd_bus_message *m, const param_vector *params)
{
  size_t i;
  int r;

  if ((r = sd_bus_message_open_container (m, 'a', "(ss)")) < 0)
    return r;
  for (i = 0; i < params->len; ++i)
    if ((r = sd_bus_message_append (m, "(ss)", params->ptr[i].key,
                                    params->ptr[i].value)) < 0)
      return r;
  return sd_bus_message_close_container (m);
}

/* as */
int
append_strings (sd_bus_message *m, const string_vector *v)
{
  size_t i;
  int r;

  if ((r = sd_bus_message_open_container (m, 'a', "s")) < 0)
    return r;
  for (i = 0; i < v->len; ++i)
    if ((r = sd_bus_message_append_basic (m, 's', v->ptr[i])) < 0)
      return r;
  return sd_bus_message_close_container (m);
}

static int
append_entry_strings (sd_bus_message *m, const char *key,
                      const string_vector *v)
{
  int r;

  if ((r = sd_bus_message_open_container (m, 'e', "sv")) < 0
      || (r = sd_bus_message_append_basic (m, 's', key)) < 0
      || (r = sd_bus_message_open_container (m, 'v', "as")) < 0
      || (r = append_strings (m, v)) < 0
      || (r = sd_bus_message_close_container (m)) < 0)
    return r;
  return sd_bus_message_close_container (m);
}

static int
append_entry_params (sd_bus_message *m, const param_vector *params)
{
  int r;

  if ((r = sd_bus_message_open_container (m, 'e', "sv")) < 0
      || (r = sd_bus_message_append_basic (m, 's', "params")) < 0
      || (r = sd_bus_message_open_container (m, 'v', "a(ss)")) < 0
      || (r = append_params (m, params)) < 0
      || (r = sd_bus_message_close_container (m)) < 0)
    return r;
  return sd_bus_message_close_container (m);
}

/* a{sh}: the parameter keys whose values come from descriptors. */
static int
append_entry_secrets (sd_bus_message *m, const secret_vector *secrets)
{
  size_t i;
  int r;

  if ((r = sd_bus_message_open_container (m, 'e', "sv")) < 0
      || (r = sd_bus_message_append_basic (m, 's', "secrets")) < 0
      || (r = sd_bus_message_open_container (m, 'v', "a{sh}")) < 0
      || (r = sd_bus_message_open_container (m, 'a', "{sh}")) < 0)
    return r;
  for (i = 0; i < secrets->len; ++i)
    if ((r = sd_bus_message_append (m, "{sh}", secrets->ptr[i].key,
                                    secrets->ptr[i].fd)) < 0)
      return r;
  if ((r = sd_bus_message_close_container (m)) < 0
      || (r = sd_bus_message_close_container (m)) < 0)
    return r;
  return sd_bus_message_close_container (m);
}

static int
append_string_option (sd_bus_message *m, const char *key, const char *value)
{
  if (value == NULL)
    return 0;
  return sd_bus_message_append (m, "{sv}", key, "s", value);
}

static int
append_scalar_options (sd_bus_message *m, const struct export_options *o)
{
  int r;

  if ((r = append_string_option (m, "description", o->description)) < 0
      || (r = append_string_option (m, "tls", o->tls)) < 0
      || (r = append_string_option (m, "tls-certificates",
                                    o->tls_certificates)) < 0
      || (r = append_string_option (m, "tls-psk", o->tls_psk)) < 0
      || (r = append_string_option (m, "start", o->start)) < 0
      || (r = append_string_option (m, "user", o->user)) < 0
      || (r = append_string_option (m, "group", o->group)) < 0)
    return r;
  if (o->readonly_set
      && (r = sd_bus_message_append (m, "{sv}", "readonly", "b",
                                     (int) o->readonly)) < 0)
    return r;
  if (o->tls_verify_peer_set
      && (r = sd_bus_message_append (m, "{sv}", "tls-verify-peer", "b",
                                     (int) o->tls_verify_peer)) < 0)
    return r;
  if (o->idle_timeout_set
      && (r = sd_bus_message_append (m, "{sv}", "idle-timeout", "u",
                                     o->idle_timeout)) < 0)
    return r;
  if (o->threads_set
      && (r = sd_bus_message_append (m, "{sv}", "threads", "u",
                                     o->threads)) < 0)
    return r;
  return 0;
}

/* The a{sv} of AddExport (UPDATE_PARAMS == NULL) or Update, holding only
 * what the command line gave, so the daemon's defaults apply otherwise.
 * For Update, filters and params are sent when given.
 */
int
append_export_options (sd_bus_message *m, const struct export_options *o,
                       const param_vector *update_params)
{
  bool interactive;
  int r;

  if ((r = sd_bus_message_open_container (m, 'a', "{sv}")) < 0
      || (r = append_scalar_options (m, o)) < 0)
    return r;
  if (o->listeners_set
      && (r = append_entry_strings (m, "listeners", &o->listeners)) < 0)
    return r;
  if (o->tls_allow_set
      && (r = append_entry_strings (m, "tls-allow", &o->tls_allow)) < 0)
    return r;
  if (o->secrets.len > 0
      && (r = append_entry_secrets (m, &o->secrets)) < 0)
    return r;
  if (update_params == NULL && o->transient
      && (r = sd_bus_message_append (m, "{sv}", "persist", "b", 0)) < 0)
    return r;
  if (update_params && o->filters_set
      && (r = append_entry_strings (m, "filters", &o->filters)) < 0)
    return r;
  if (update_params && update_params->len > 0
      && (r = append_entry_params (m, update_params)) < 0)
    return r;
  interactive = config.ask_password && isatty (STDIN_FILENO);
  if (!interactive
      && (r = sd_bus_message_append (m, "{sv}", "auth.no_user_interaction",
                                     "b", 1)) < 0)
    return r;
  return sd_bus_message_close_container (m);
}
