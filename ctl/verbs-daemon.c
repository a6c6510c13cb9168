/* SPDX-License-Identifier: BSD-3-Clause
 * The verbs about the daemon as a whole and its clients: status,
 * list-plugins, list-filters, list-connections, disconnect.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "nbdkitctl.h"
#include "cleanup.h"

static const char *const export_states[] = {
  "inactive", "starting", "running", "stopping", "failed", NULL
};

/* The export names, from ListExports, as a JSON array of strings. */
static int
list_export_names (sd_bus *bus, struct json_object **names)
{
  sd_bus_message *reply = NULL;
  const char *name;
  int r;

  r = bus_call_method (bus, MANAGER_PATH, MANAGER_IFACE, "ListExports",
                       &reply, NULL);
  if (r < 0)
    return r;
  *names = json_object_new_array ();
  if ((r = sd_bus_message_enter_container (reply, 'a', "(ssso)")) >= 0)
    while ((r = sd_bus_message_read (reply, "(ssso)", &name, NULL, NULL,
                                     NULL)) > 0)
      json_object_array_add (*names, json_object_new_string (name));
  sd_bus_message_unref (reply);
  if (r < 0) {
    json_object_put (*names);
    return error_log (r, "ListExports: unexpected reply: %m");
  }
  return 0;
}

static void
json_object_increment (struct json_object *obj, const char *key)
{
  struct json_object *v;

  if (json_object_object_get_ex (obj, key, &v))
    json_object_int_inc (v, 1);
  else
    json_object_object_add (obj, key, json_object_new_int64 (1));
}

/* Add export NAME (properties PROPS) to the state counts and to the
 * listener → exports map.
 */
static void
status_add_export (struct json_object *states, struct json_object *listeners,
                   const char *name, struct json_object *props)
{
  struct json_object *state, *addrs, *list;
  size_t i;

  if (json_object_object_get_ex (props, "State", &state))
    json_object_increment (states, json_object_get_string (state));
  if (!json_object_object_get_ex (props, "Listeners", &addrs))
    return;
  for (i = 0; i < json_object_array_length (addrs); ++i) {
    const char *a = json_object_get_string (json_object_array_get_idx (addrs,
                                                                       i));
    if (!json_object_object_get_ex (listeners, a, &list)) {
      list = json_object_new_array ();
      json_object_object_add (listeners, a, list);
    }
    json_object_array_add (list, json_object_new_string (name));
  }
}

static void
print_status (struct json_object *st)
{
  struct json_object *v, *states, *listeners;
  const char *sep = " (";
  size_t i;

  json_object_object_get_ex (st, "states", &states);
  json_object_object_get_ex (st, "listeners", &listeners);
  json_object_object_get_ex (st, "version", &v);
  printf ("  Version: %s\n", json_object_get_string (v));
  json_object_object_get_ex (st, "exports", &v);
  printf ("  Exports: %s", json_object_get_string (v));
  for (i = 0; export_states[i]; ++i)
    if (json_object_object_get_ex (states, export_states[i], &v)) {
      printf ("%s%s %s", sep, json_object_get_string (v), export_states[i]);
      sep = ", ";
    }
  printf ("%s\n", *sep == ',' ? ")" : "");
  printf ("Listeners:");
  if (json_object_object_length (listeners) == 0)
    printf (" -\n");
  sep = " ";
  json_object_object_foreach (listeners, addr, names) {
    printf ("%s%s (", sep, addr);
    for (i = 0; i < json_object_array_length (names); ++i)
      printf ("%s%s", i ? ", " : "",
              export_label (json_object_get_string
                            (json_object_array_get_idx (names, i))));
    printf (")\n");
    sep = "           ";
  }
}

/* status [NAME]: with NAME the same as show-export. */
int
verb_status (sd_bus *bus, int argc, char **argv)
{
  struct json_object *names = NULL, *mgr = NULL, *st, *v;
  struct json_object *states, *listeners;
  sd_bus_message *reply = NULL;
  size_t i;
  int r;

  if (argc == 2)
    return verb_show_export (bus, argc, argv);
  r = bus_call_method (bus, MANAGER_PATH, "org.freedesktop.DBus.Properties",
                       "GetAll", &reply, "s", MANAGER_IFACE);
  if (r < 0)
    return r;
  r = json_from_message (reply, &mgr);
  sd_bus_message_unref (reply);
  if (r < 0)
    return error_log (r, "GetAll: unexpected reply: %m");
  if ((r = list_export_names (bus, &names)) < 0)
    goto out;

  st = json_object_new_object ();
  states = json_object_new_object ();
  listeners = json_object_new_object ();
  json_object_object_add (st, "version",
                          json_object_object_get_ex (mgr, "Version", &v)
                          ? json_object_get (v) : NULL);
  json_object_object_add (st, "exports", json_object_new_int64
                          (json_object_array_length (names)));
  json_object_object_add (st, "states", states);
  json_object_object_add (st, "listeners", listeners);
  for (i = 0; i < json_object_array_length (names); ++i) {
    const char *name = json_object_get_string
      (json_object_array_get_idx (names, i));
    struct json_object *props;

    /* An export removed meanwhile is no error for a summary. */
    if (export_get_properties (bus, name, &props) < 0)
      continue;
    status_add_export (states, listeners, name, props);
    json_object_put (props);
  }
  if (config.json)
    json_print (st);
  else
    print_status (st);
  json_object_put (st);
 out:
  json_object_put (names);
  json_object_put (mgr);
  return r;
}

/* list-plugins and list-filters: a(sss) name, version, description. */
int
verb_list_plugins (sd_bus *bus, int argc, char **argv)
{
  bool filters = strcmp (argv[0], "list-filters") == 0;
  sd_bus_message *reply = NULL;
  struct json_object *arr;
  struct table *t;
  const char *name, *version, *description;
  int r;

  r = bus_call_method (bus, MANAGER_PATH, MANAGER_IFACE,
                       filters ? "ListFilters" : "ListPlugins", &reply, NULL);
  if (r < 0)
    return r;
  arr = json_object_new_array ();
  t = table_new (filters ? "FILTER" : "PLUGIN", "VERSION", "DESCRIPTION",
                 NULL);
  if ((r = sd_bus_message_enter_container (reply, 'a', "(sss)")) >= 0)
    while ((r = sd_bus_message_read (reply, "(sss)", &name, &version,
                                     &description)) > 0) {
      struct json_object *o = json_object_new_object ();
      json_object_object_add (o, "name", json_object_new_string (name));
      json_object_object_add (o, "version", json_object_new_string (version));
      json_object_object_add (o, "description",
                              json_object_new_string (description));
      json_object_array_add (arr, o);
      table_add_row (t, name, version, description);
    }
  if (r < 0)
    error_log (r, "unexpected reply: %m");
  else if (config.json)
    json_print (arr);
  else
    table_print (t, stdout);
  sd_bus_message_unref (reply);
  json_object_put (arr);
  table_free (t);
  return r < 0 ? r : 0;
}

/* Add export NAME's connections to ARR and T. */
static int
collect_connections (sd_bus *bus, const char *name, struct json_object *arr,
                     struct table *t)
{
  CLEANUP_FREE char *path = NULL;
  sd_bus_message *reply = NULL;
  const char *peer, *export_name, *tls;
  uint64_t id, since, rd, wr;
  int r;

  if ((r = export_path (bus, name, &path)) < 0)
    return r;
  r = bus_call_method (bus, path, EXPORT_IFACE, "ListConnections", &reply,
                       NULL);
  if (r < 0)
    return r;
  if ((r = sd_bus_message_enter_container (reply, 'a', "(tsssttt)")) >= 0)
    while ((r = sd_bus_message_read (reply, "(tsssttt)", &id, &peer,
                                     &export_name, &tls, &since, &rd,
                                     &wr)) > 0) {
      struct json_object *o = json_object_new_object ();
      CLEANUP_FREE char *when = NULL;

      when = format_timestamp_usec (since);
      char ids[32], rds[32], wrs[32];

      json_object_object_add (o, "export", json_object_new_string (name));
      json_object_object_add (o, "id", json_object_new_uint64 (id));
      json_object_object_add (o, "peer", json_object_new_string (peer));
      json_object_object_add (o, "export_name",
                              json_object_new_string (export_name));
      json_object_object_add (o, "tls_identity", json_object_new_string (tls));
      json_object_object_add (o, "connected_since_usec",
                              json_object_new_uint64 (since));
      json_object_object_add (o, "bytes_read", json_object_new_uint64 (rd));
      json_object_object_add (o, "bytes_written",
                              json_object_new_uint64 (wr));
      json_object_array_add (arr, o);
      snprintf (ids, sizeof ids, "%" PRIu64, id);
      snprintf (rds, sizeof rds, "%" PRIu64, rd);
      snprintf (wrs, sizeof wrs, "%" PRIu64, wr);
      table_add_row (t, *name ? name : "\"\"", ids, peer, *tls ? tls : "-",
                     when, rds, wrs);
    }
  sd_bus_message_unref (reply);
  if (r < 0)
    return error_log (r, "ListConnections: unexpected reply: %m");
  return 0;
}

int
verb_list_connections (sd_bus *bus, int argc, char **argv)
{
  struct json_object *names = NULL, *arr = json_object_new_array ();
  struct table *t = table_new ("EXPORT", "ID", "PEER", "TLS", "SINCE", "READ",
                               "WRITTEN", NULL);
  size_t i;
  int r;

  if (argc == 2) {
    names = json_object_new_array ();
    json_object_array_add (names, json_object_new_string (argv[1]));
  }
  else if ((r = list_export_names (bus, &names)) < 0)
    goto out;
  for (i = 0; i < json_object_array_length (names); ++i) {
    const char *name = json_object_get_string
      (json_object_array_get_idx (names, i));
    r = collect_connections (bus, name, arr, t);
    /* An export removed since ListExports is skipped; a named one not. */
    if (r < 0 && (argc == 2 || errno_to_exit (r) != EXIT_NOT_FOUND))
      goto out;
  }
  if (config.json)
    json_print (arr);
  else
    table_print (t, stdout);
  r = 0;
 out:
  json_object_put (names);
  json_object_put (arr);
  table_free (t);
  return r;
}

int
check_disconnect (int argc, char **argv)
{
  unsigned long long id;
  char *end;

  errno = 0;
  id = strtoull (argv[2], &end, 10);
  if (*argv[2] < '0' || *argv[2] > '9' || *end || errno)
    return error_log (-EINVAL, "disconnect: \"%s\" is not a connection ID "
                      "(see list-connections)", argv[2]);
  config.connection_id = id;
  return 0;
}

int
verb_disconnect (sd_bus *bus, int argc, char **argv)
{
  CLEANUP_FREE char *path = NULL;
  int r;

  if ((r = export_path (bus, argv[1], &path)) < 0)
    return r;
  polkit_agent_open_if_enabled ();
  return bus_call_method (bus, path, EXPORT_IFACE, "Disconnect", NULL, "tb",
                          config.connection_id, (int) config.force);
}
