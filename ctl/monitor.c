/* SPDX-License-Identifier: BSD-3-Clause
 * Waiting on the bus: `monitor` prints the daemon's signals as events
 * until interrupted, and a transient add-export keeps its bus connection
 * (the export's lifetime) until interrupted or the export goes away.
 */

#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "nbdkitctl.h"
#include "cleanup.h"

#define NAME_OWNER_MATCH                                        \
  "type='signal',sender='org.freedesktop.DBus',"                \
  "path='/org/freedesktop/DBus',interface='org.freedesktop.DBus'," \
  "member='NameOwnerChanged',arg0='" BUS_NAME "'"

#define EXPORT_PROPERTIES_MATCH                                 \
  "type='signal',interface='org.freedesktop.DBus.Properties',"  \
  "member='PropertiesChanged',path_namespace='" EXPORT_PREFIX "'"

/* One event: a line for people, or one JSON object per line. */
static void
print_event (const char *event, const char *name, const char *path,
             struct json_object *props, struct json_object *invalidated)
{
  if (config.json) {
    struct json_object *o = json_object_new_object ();
    json_object_object_add (o, "event", json_object_new_string (event));
    if (name)
      json_object_object_add (o, "export", json_object_new_string (name));
    if (path)
      json_object_object_add (o, "path", json_object_new_string (path));
    if (props)
      json_object_object_add (o, "properties", json_object_get (props));
    if (invalidated && json_object_array_length (invalidated) > 0)
      json_object_object_add (o, "invalidated",
                              json_object_get (invalidated));
    puts (json_object_to_json_string_ext (o, JSON_C_TO_STRING_PLAIN
                                          | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put (o);
  }
  else {
    printf ("%-8s", event);
    if (name)
      printf (" %s", export_label (name));
    if (props) {
      json_object_object_foreach (props, key, val)
        printf (" %s=%s", key, json_object_get_string (val));
    }
    if (invalidated)
      for (size_t i = 0; i < json_object_array_length (invalidated); ++i)
        printf (" %s=?",
                json_object_get_string (json_object_array_get_idx
                                        (invalidated, i)));
    putchar ('\n');
  }
  fflush (stdout);
}

static int
on_export_added_removed (sd_bus_message *m, void *userdata,
                         sd_bus_error *error)
{
  const char *name, *path;

  if (sd_bus_message_read (m, "so", &name, &path) < 0)
    return 0;
  print_event (sd_bus_message_is_signal (m, NULL, "ExportAdded")
               ? "added" : "removed", name, path, NULL, NULL);
  return 0;
}

static int
on_properties_changed (sd_bus_message *m, void *userdata,
                       sd_bus_error *error)
{
  const char *path = sd_bus_message_get_path (m), *iface;
  struct json_object *props = NULL, *invalidated = NULL;
  CLEANUP_FREE char *name = NULL;

  if (sd_bus_path_decode (path, EXPORT_PREFIX, &name) <= 0
      || sd_bus_message_read (m, "s", &iface) < 0
      || strcmp (iface, EXPORT_IFACE) != 0)
    return 0;
  if (json_from_message (m, &props) == 0
      && json_from_message (m, &invalidated) == 0)
    print_event ("changed", name, path, props, invalidated);
  json_object_put (props);
  json_object_put (invalidated);
  return 0;
}

static int
on_name_owner_changed (sd_bus_message *m, void *userdata,
                       sd_bus_error *error)
{
  sd_event *event = userdata;
  const char *name, *old_owner, *new_owner;

  if (sd_bus_message_read (m, "sss", &name, &old_owner, &new_owner) < 0)
    return 0;
  if (event) {                  /* waiting for a transient export */
    if (*new_owner == '\0') {
      error_log (-ECONNRESET, "nbdkitd went away");
      sd_event_exit (event, -ECONNRESET);
    }
    return 0;
  }
  print_event (*new_owner ? "daemon-started" : "daemon-stopped", NULL, NULL,
               NULL, NULL);
  return 0;
}

static int
on_signal (sd_event_source *s, const struct signalfd_siginfo *si,
           void *userdata)
{
  sd_event_exit (sd_event_source_get_event (s), 0);
  return 0;
}

/* An event loop for BUS that ends at SIGINT or SIGTERM. */
static int
event_loop_new (sd_bus *bus, sd_event **event)
{
  sigset_t mask;
  int r;

  sigemptyset (&mask);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGTERM);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  if ((r = sd_event_default (event)) < 0
      || (r = sd_event_add_signal (*event, NULL, SIGINT, on_signal,
                                   NULL)) < 0
      || (r = sd_event_add_signal (*event, NULL, SIGTERM, on_signal,
                                   NULL)) < 0
      || (r = sd_bus_attach_event (bus, *event, SD_EVENT_PRIORITY_NORMAL)) < 0)
    return error_log (r, "cannot set up the event loop: %m");
  return 0;
}

int
verb_monitor (sd_bus *bus, int argc, char **argv)
{
  sd_event *event = NULL;
  int r;

  if ((r = event_loop_new (bus, &event)) < 0)
    goto out;
  if ((r = sd_bus_match_signal (bus, NULL, NULL, MANAGER_PATH,
                                MANAGER_IFACE, "ExportAdded",
                                on_export_added_removed, NULL)) < 0
      || (r = sd_bus_match_signal (bus, NULL, NULL, MANAGER_PATH,
                                   MANAGER_IFACE, "ExportRemoved",
                                   on_export_added_removed, NULL)) < 0
      || (r = sd_bus_add_match (bus, NULL, EXPORT_PROPERTIES_MATCH,
                                on_properties_changed, NULL)) < 0
      || (r = sd_bus_add_match (bus, NULL, NAME_OWNER_MATCH,
                                on_name_owner_changed, NULL)) < 0) {
    r = error_log (r, "cannot subscribe to nbdkitd's signals: %m");
    goto out;
  }
  if (!config.quiet)
    fprintf (stderr, "Monitoring nbdkitd on the %s bus; Ctrl-C stops.\n",
             config.user_bus ? "session" : "system");
  r = sd_event_loop (event);
 out:
  sd_event_unref (event);
  return r;
}

static int
on_export_removed (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  const char *wanted = userdata, *name, *path;
  sd_event *event = sd_bus_get_event (sd_bus_message_get_bus (m));

  if (sd_bus_message_read (m, "so", &name, &path) >= 0
      && strcmp (name, wanted) == 0) {
    if (!config.quiet)
      fprintf (stderr, "Export %s was removed.\n", export_label (name));
    sd_event_exit (event, 0);
  }
  return 0;
}

/* A transient export lives as long as our bus connection: hold it until
 * interrupted or until the export or the daemon goes away.
 */
int
wait_until_interrupted (sd_bus *bus, const char *name)
{
  sd_event *event = NULL;
  int r;

  if ((r = event_loop_new (bus, &event)) < 0)
    goto out;
  if ((r = sd_bus_match_signal (bus, NULL, NULL, MANAGER_PATH,
                                MANAGER_IFACE, "ExportRemoved",
                                on_export_removed, (void *) name)) < 0
      || (r = sd_bus_add_match (bus, NULL, NAME_OWNER_MATCH,
                                on_name_owner_changed, event)) < 0) {
    r = error_log (r, "cannot subscribe to nbdkitd's signals: %m");
    goto out;
  }
  if (!config.quiet)
    fprintf (stderr, "Transient export %s is served until nbdkitctl exits "
             "(Ctrl-C).\n", export_label (name));
  fflush (stdout);
  r = sd_event_loop (event);
 out:
  sd_event_unref (event);
  return r;
}
