/* SPDX-License-Identifier: BSD-3-Clause
 * D-Bus errors as nbdkitctl reports them: one line naming the export,
 * parameter or value, and an exit code per error class (nbdkitctl(1),
 * "EXIT STATUS").  The daemon's named errors come from daemon/errors.h.
 */

#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "nbdkitctl.h"
#include "errors.h"
#include "utils.h"

/* The export the current call is about, for messages; NULL if none. */
static const char *context_export;
/* Set by bus_error_report, read by errno_to_exit. */
static enum ctl_exit error_class;

void
bus_error_set_context (const char *export_name)
{
  context_export = export_name;
}

struct named_class {
  const char *name;
  enum ctl_exit class;
};

/* Standard errors we classify; the daemon's own come from its map. */
static const struct named_class standard_errors[] = {
  { SD_BUS_ERROR_ACCESS_DENIED, EXIT_DENIED },
  { SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED, EXIT_DENIED },
  { SD_BUS_ERROR_AUTH_FAILED, EXIT_DENIED },
  { SD_BUS_ERROR_SERVICE_UNKNOWN, EXIT_UNREACHABLE },
  { SD_BUS_ERROR_NAME_HAS_NO_OWNER, EXIT_UNREACHABLE },
  { SD_BUS_ERROR_NO_REPLY, EXIT_UNREACHABLE },
  { SD_BUS_ERROR_NO_SERVER, EXIT_UNREACHABLE },
  { SD_BUS_ERROR_TIMEOUT, EXIT_UNREACHABLE },
  { "org.freedesktop.DBus.Error.TimedOut", EXIT_UNREACHABLE },
  { SD_BUS_ERROR_DISCONNECTED, EXIT_UNREACHABLE },
  { "org.freedesktop.DBus.Error.Spawn.ChildExited", EXIT_UNREACHABLE },
  { "org.freedesktop.DBus.Error.Spawn.ExecFailed", EXIT_UNREACHABLE },
  { SD_BUS_ERROR_INVALID_ARGS, EXIT_INVALID },
  { SD_BUS_ERROR_INVALID_SIGNATURE, EXIT_INVALID },
};

static enum ctl_exit
class_of_daemon_errno (int e)
{
  switch (e) {
  case ENOENT: case ENOPKG: case ELIBACC: return EXIT_NOT_FOUND;
  case EEXIST: case EADDRINUSE: return EXIT_EXISTS;
  case EINVAL: return EXIT_INVALID;
  case EIO: return EXIT_WORKER_FAILED;
  case EBUSY: return EXIT_BUSY;
  default: return EXIT_GENERIC;
  }
}

/* Errors sd-bus makes up locally (no reply, connection lost) carry an
 * errno but may have a generic name: classify those by errno.
 */
static enum ctl_exit
class_of_errno (int r)
{
  switch (-r) {
  case ETIMEDOUT: case ECONNRESET: case ENOTCONN: case ECONNREFUSED:
  case EHOSTUNREACH: case EHOSTDOWN:
    return EXIT_UNREACHABLE;
  default:
    return EXIT_GENERIC;
  }
}

static enum ctl_exit
class_of_error (const sd_bus_error *error, int r)
{
  size_t i;
  int e;

  if (!sd_bus_error_is_set (error))
    return class_of_errno (r);
  if ((e = nbdkitd_error_to_errno (error->name)) != 0)
    return class_of_daemon_errno (e);
  for (i = 0; i < ARRAY_SIZE (standard_errors); ++i)
    if (strcmp (standard_errors[i].name, error->name) == 0)
      return standard_errors[i].class;
  return class_of_errno (r);
}

/* Whether the daemon's message already names the export (quoted). */
static bool
message_names_export (const char *msg, const char *name)
{
  char q1[256], q2[256];

  if (strlen (name) > sizeof q1 - 3)
    return true;
  snprintf (q1, sizeof q1, "'%s'", name);
  snprintf (q2, sizeof q2, "\"%s\"", name);
  return strstr (msg, q1) || strstr (msg, q2);
}

/* Print ERROR (the reply to a failed call, which returned R) as one line
 * and remember its class for the exit code.  Returns R.
 */
int
bus_error_report (int r, const sd_bus_error *error)
{
  const char *msg = error && error->message ? error->message : strerror (-r);
  const char *ctx = context_export ? export_label (context_export) : NULL;

  error_class = class_of_error (error, r);
  if (ctx && sd_bus_error_has_name (error, NBDKITD_ERROR_NO_SUCH_EXPORT))
    error_log (r, "export %s does not exist", ctx);
  else if (ctx && sd_bus_error_has_name (error, NBDKITD_ERROR_EXPORT_EXISTS))
    error_log (r, "export %s already exists", ctx);
  else if (error_class == EXIT_DENIED)
    error_log (r, "access denied: %s", msg);
  else if (error_class == EXIT_UNREACHABLE)
    error_log (r, "nbdkitd is not running or not reachable on the %s bus: %s",
               config.user_bus ? "session" : "system", msg);
  else if (ctx && !message_names_export (msg, context_export))
    /* The daemon's message names the parameter or value; add the
     * export it is about.
     */
    error_log (r, "export %s: %s", ctx, msg);
  else
    error_log (r, "%s", msg);
  return r;
}

enum ctl_exit
errno_to_exit (int r)
{
  if (error_class != EXIT_OK)
    return error_class;
  switch (-r) {
  case EINVAL: return EXIT_INVALID;
  case ENOTCONN: return EXIT_UNREACHABLE;
  default: return EXIT_GENERIC;
  }
}
