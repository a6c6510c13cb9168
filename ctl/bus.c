/* SPDX-License-Identifier: BSD-3-Clause
 * Calling nbdkitd: building method calls, sending them, and turning a
 * failed call into one reported error (errors.c).
 */

#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nbdkitctl.h"
#include "cleanup.h"

int
bus_new_method_call (sd_bus *bus, sd_bus_message **m, const char *path,
                     const char *iface, const char *member)
{
  int r = sd_bus_message_new_method_call (bus, m, BUS_NAME, path, iface,
                                          member);
  if (r < 0)
    return error_log (r, "%s: cannot create the call: %m", member);
  return 0;
}

/* Send M and wait for the reply.  A person answering a polkit prompt
 * needs longer than sd-bus's default 25 seconds, and so does the first
 * ListPlugins/ListFilters of a daemon, which asks nbdkit about every
 * installed module (slow on a loaded machine).
 */
int
bus_call (sd_bus *bus, sd_bus_message *m, sd_bus_message **reply)
{
  sd_bus_error error = SD_BUS_ERROR_NULL;
  int allow = sd_bus_get_allow_interactive_authorization (bus);
  uint64_t timeout = (allow > 0 ? 300 : 120) * 1000000ULL;
  int r;

  r = sd_bus_call (bus, m, timeout, &error, reply);
  if (r < 0)
    bus_error_report (r, &error);
  sd_bus_error_free (&error);
  return r;
}

/* Call MEMBER with arguments of signature TYPES (may be NULL). */
int
bus_call_method (sd_bus *bus, const char *path, const char *iface,
                 const char *member, sd_bus_message **reply,
                 const char *types, ...)
{
  sd_bus_message *m = NULL;
  va_list ap;
  int r;

  if ((r = bus_new_method_call (bus, &m, path, iface, member)) < 0)
    return r;
  if (types) {
    va_start (ap, types);
    r = sd_bus_message_appendv (m, types, ap);
    va_end (ap);
    if (r < 0) {
      sd_bus_message_unref (m);
      return error_log (r, "%s: cannot build the call: %m", member);
    }
  }
  r = bus_call (bus, m, reply);
  sd_bus_message_unref (m);
  return r;
}

/* The object path of export NAME, from the daemon (GetExport). */
int
export_path (sd_bus *bus, const char *name, char **path)
{
  sd_bus_message *reply = NULL;
  const char *p;
  int r;

  bus_error_set_context (name);
  r = bus_call_method (bus, MANAGER_PATH, MANAGER_IFACE, "GetExport",
                       &reply, "s", name);
  if (r < 0)
    return r;
  r = sd_bus_message_read (reply, "o", &p);
  if (r < 0) {
    sd_bus_message_unref (reply);
    return error_log (r, "GetExport: unexpected reply: %m");
  }
  *path = strdup (p);
  sd_bus_message_unref (reply);
  return *path ? 0 : error_log (-ENOMEM, "%m");
}
