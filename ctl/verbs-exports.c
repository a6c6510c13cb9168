/* SPDX-License-Identifier: BSD-3-Clause
 * The verbs that define and drive one export: add-export, remove-export,
 * update-export, list-exports, show-export, start/stop/restart, uri.
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbdkitctl.h"
#include "cleanup.h"

/* Property name and label of the show-export block, in display order. */
static const char *const export_labels[] = {
  "Name", "Name",
  "Description", "Description",
  "State", "State",
  "MainPID", "Main PID",
  "Plugin", "Plugin",
  "Filters", "Filters",
  "Parameters", "Parameters",
  "ReadOnly", "Read-only",
  "Persistent", "Persistent",
  "StartPolicy", "Start",
  "Listeners", "Listeners",
  "URIs", "URIs",
  "TLS", "TLS",
  "ActiveConnections", "Connections",
  "TotalConnections", "Total connections",
  "Requests", "Requests",
  "BytesRead", "Bytes read",
  "BytesWritten", "Bytes written",
  "Errors", "Errors",
  "LastError", "Last error",
  NULL,
};

/* Before connecting: the parameters, with the plugin's magic key. */
int
check_add_export (int argc, char **argv)
{
  return parse_plugin_params (argv[2], &argv[3], argc - 3, &config.params);
}

int
verb_add_export (sd_bus *bus, int argc, char **argv)
{
  const char *name = argv[1], *plugin = argv[2];
  struct export_options *o = &config.export;
  sd_bus_message *m = NULL, *reply = NULL;
  const char *path;
  int r;

  if ((r = bus_new_method_call (bus, &m, MANAGER_PATH, MANAGER_IFACE,
                                "AddExport")) < 0)
    goto out;
  if ((r = sd_bus_message_append (m, "ss", name, plugin)) < 0
      || (r = append_strings (m, &o->filters)) < 0
      || (r = append_params (m, &config.params)) < 0
      || (r = append_export_options (m, o, NULL)) < 0) {
    r = error_log (r, "AddExport: cannot build the call: %m");
    goto out;
  }
  polkit_agent_open_if_enabled ();
  bus_error_set_context (name);
  if ((r = bus_call (bus, m, &reply)) < 0)
    goto out;
  if ((r = sd_bus_message_read (reply, "o", &path)) < 0) {
    r = error_log (r, "AddExport: unexpected reply: %m");
    goto out;
  }
  if (config.json) {
    struct json_object *obj = json_object_new_object ();
    json_object_object_add (obj, "name", json_object_new_string (name));
    json_object_object_add (obj, "path", json_object_new_string (path));
    json_print (obj);
    json_object_put (obj);
  }
  if (o->transient)
    r = wait_until_interrupted (bus, name);
 out:
  sd_bus_message_unref (m);
  sd_bus_message_unref (reply);
  return r;
}

int
verb_remove_export (sd_bus *bus, int argc, char **argv)
{
  polkit_agent_open_if_enabled ();
  bus_error_set_context (argv[1]);
  return bus_call_method (bus, MANAGER_PATH, MANAGER_IFACE, "RemoveExport",
                          NULL, "ss", argv[1],
                          config.force ? "hard" : "safe");
}

/* The export's plugin, to learn its magic key. */
static int
export_plugin (sd_bus *bus, const char *path, char **plugin)
{
  sd_bus_error error = SD_BUS_ERROR_NULL;
  int r;

  r = sd_bus_get_property_string (bus, BUS_NAME, path, EXPORT_IFACE,
                                  "Plugin", &error, plugin);
  if (r < 0)
    bus_error_report (r, &error);
  sd_bus_error_free (&error);
  return r;
}

int
verb_update_export (sd_bus *bus, int argc, char **argv)
{
  param_vector params = empty_vector;
  sd_bus_message *m = NULL;
  CLEANUP_FREE char *path = NULL, *plugin = NULL;
  int r;

  if (!config.export_options_given && argc == 2)
    return error_log (-EINVAL, "update-export: nothing to change (give "
                      "export options or key=value parameters)");
  if ((r = export_path (bus, argv[1], &path)) < 0)
    return r;
  if (argc > 2
      && ((r = export_plugin (bus, path, &plugin)) < 0
          || (r = parse_plugin_params (plugin, &argv[2], argc - 2,
                                       &params)) < 0))
    goto out;
  if ((r = bus_new_method_call (bus, &m, path, EXPORT_IFACE, "Update")) < 0)
    goto out;
  if ((r = append_export_options (m, &config.export, &params)) < 0) {
    r = error_log (r, "Update: cannot build the call: %m");
    goto out;
  }
  polkit_agent_open_if_enabled ();
  r = bus_call (bus, m, NULL);
 out:
  param_vector_free_all (&params);
  sd_bus_message_unref (m);
  return r;
}

static int
print_export_list (sd_bus_message *reply)
{
  struct json_object *arr = json_object_new_array ();
  struct table *t = table_new ("NAME", "PLUGIN", "STATE", NULL);
  const char *name, *plugin, *state, *path;
  size_t n = 0;
  int r;

  if (arr == NULL || t == NULL) {
    r = error_log (-ENOMEM, "%m");
    goto out;
  }
  if ((r = sd_bus_message_enter_container (reply, 'a', "(ssso)")) < 0)
    goto bad;
  while ((r = sd_bus_message_read (reply, "(ssso)", &name, &plugin, &state,
                                   &path)) > 0) {
    struct json_object *obj = json_object_new_object ();
    json_object_object_add (obj, "name", json_object_new_string (name));
    json_object_object_add (obj, "plugin", json_object_new_string (plugin));
    json_object_object_add (obj, "state", json_object_new_string (state));
    json_object_object_add (obj, "path", json_object_new_string (path));
    json_object_array_add (arr, obj);
    table_add_row (t, *name ? name : "\"\"", plugin, state);
    n++;
  }
  if (r < 0)
    goto bad;
  if (config.json)
    json_print (arr);
  else {
    table_print (t, stdout);
    if (!config.quiet)
      printf ("\n%zu export%s listed.\n", n, n == 1 ? "" : "s");
  }
  r = 0;
  goto out;
 bad:
  r = error_log (r, "ListExports: unexpected reply: %m");
 out:
  json_object_put (arr);
  table_free (t);
  return r;
}

int
verb_list_exports (sd_bus *bus, int argc, char **argv)
{
  sd_bus_message *reply = NULL;
  int r;

  r = bus_call_method (bus, MANAGER_PATH, MANAGER_IFACE, "ListExports",
                       &reply, NULL);
  if (r < 0)
    return r;
  r = print_export_list (reply);
  sd_bus_message_unref (reply);
  return r;
}

/* Every property of export NAME as a JSON object keyed by D-Bus name. */
int
export_get_properties (sd_bus *bus, const char *name,
                       struct json_object **props)
{
  CLEANUP_FREE char *path = NULL;
  sd_bus_message *reply = NULL;
  int r;

  if ((r = export_path (bus, name, &path)) < 0)
    return r;
  r = bus_call_method (bus, path, "org.freedesktop.DBus.Properties",
                       "GetAll", &reply, "s", EXPORT_IFACE);
  if (r < 0)
    return r;
  r = json_from_message (reply, props);
  sd_bus_message_unref (reply);
  if (r < 0)
    return error_log (r, "GetAll: unexpected reply: %m");
  return 0;
}

int
verb_show_export (sd_bus *bus, int argc, char **argv)
{
  struct json_object *props;
  int r;

  if ((r = export_get_properties (bus, argv[1], &props)) < 0)
    return r;
  if (config.json)
    json_print (props);
  else
    print_properties (props, export_labels);
  json_object_put (props);
  return 0;
}

int
verb_start_stop (sd_bus *bus, int argc, char **argv)
{
  CLEANUP_FREE char *path = NULL;
  const char *member;
  int r;

  if (strcmp (argv[0], "start") == 0)
    member = "Start";
  else if (strcmp (argv[0], "stop") == 0)
    member = "Stop";
  else
    member = "Restart";
  if ((r = export_path (bus, argv[1], &path)) < 0)
    return r;
  polkit_agent_open_if_enabled ();
  return bus_call_method (bus, path, EXPORT_IFACE, member, NULL, NULL);
}

int
verb_uri (sd_bus *bus, int argc, char **argv)
{
  CLEANUP_FREE char *path = NULL;
  sd_bus_message *reply = NULL;
  struct json_object *uris = NULL;
  size_t i;
  int r;

  if ((r = export_path (bus, argv[1], &path)) < 0)
    return r;
  r = bus_call_method (bus, path, "org.freedesktop.DBus.Properties", "Get",
                       &reply, "ss", EXPORT_IFACE, "URIs");
  if (r < 0)
    return r;
  r = json_from_message (reply, &uris);
  sd_bus_message_unref (reply);
  if (r < 0 || !json_object_is_type (uris, json_type_array)) {
    json_object_put (uris);
    return error_log (r < 0 ? r : -EBADMSG, "URIs: unexpected reply: %m");
  }
  if (config.json)
    json_print (uris);
  else
    for (i = 0; i < json_object_array_length (uris); ++i)
      puts (json_object_get_string (json_object_array_get_idx (uris, i)));
  json_object_put (uris);
  return 0;
}
