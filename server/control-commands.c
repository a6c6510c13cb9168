/* SPDX-License-Identifier: BSD-3-Clause
 * The supervisor's commands (nbdkit-worker(7) "COMMANDS"): parse one
 * message, check it, run one handler per command from a table and send
 * exactly one reply.  A bad message gets an error reply and is logged;
 * it never stops the worker.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "internal.h"

#define DEFAULT_STOP_TIMEOUT 30
/* How long a retired worker waits for its clients to leave. */
#define DEFAULT_RETIRE_TIMEOUT 3600

/* After the stop deadline connections are shut down; give their threads
 * this long to notice before the worker exits anyway.
 */
#define FORCED_STOP_GRACE 5

/* A handler fills in REPLY (already {"v","type":"reply","id","ok":true})
 * and returns 0, or returns -1 with *ERROR set (a malloc'd string).
 */
typedef int (*command_handler) (struct json_object *cmd, int *fds,
                                size_t nfds, struct json_object *reply,
                                char **error);

static bool stopping;
static time_t stop_deadline;    /* CLOCK_MONOTONIC seconds, 0 = none */
static bool retiring;           /* retire, not (yet) stop */
static time_t retire_deadline;  /* the same, for retire */
static struct worker_stats last_stats; /* all zero until the first event */

static time_t
now_monotonic (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

/* An optional field of type TYPE.  Returns 0 if absent, 1 if present
 * (*VALUE set), -1 if it has another type (*ERROR set).
 */
static int
get_field (struct json_object *cmd, const char *key, json_type type,
           struct json_object **value, char **error)
{
  if (!json_object_object_get_ex (cmd, key, value))
    return 0;
  if (!json_object_is_type (*value, type)) {
    *error = control_error_text ("field '%s' must be %s", key,
                         json_type_to_name (type));
    return -1;
  }
  return 1;
}

static int
cmd_stats (struct json_object *cmd, int *fds, size_t nfds,
           struct json_object *reply, char **error)
{
  control_json_add_stats (reply);
  return 0;
}

static void
list_one (struct connection *conn, void *array)
{
  json_object_array_add (array, control_json_connection (conn, true));
}

static int
cmd_list_connections (struct json_object *cmd, int *fds, size_t nfds,
                      struct json_object *reply, char **error)
{
  struct json_object *array = json_object_new_array ();

  connection_for_each_opened (list_one, array);
  json_object_object_add (reply, "connections", array);
  return 0;
}

static int
cmd_disconnect (struct json_object *cmd, int *fds, size_t nfds,
                struct json_object *reply, char **error)
{
  struct json_object *id, *force;
  bool f = false;
  int r;

  r = get_field (cmd, "connection", json_type_int, &id, error);
  if (r == 0)
    *error = control_error_text ("field 'connection' is missing");
  if (r <= 0)
    return -1;
  r = get_field (cmd, "force", json_type_boolean, &force, error);
  if (r == -1)
    return -1;
  if (r == 1)
    f = json_object_get_boolean (force);
  if (connection_disconnect_by_id (json_object_get_int64 (id), f) == -1) {
    *error = control_error_text ("no connection %" PRIi64,
                         json_object_get_int64 (id));
    return -1;
  }
  return 0;
}

/* Stop accepting, send stopping, and let (or make) every client go; the
 * worker quits when the last one has gone (connections.c).
 */
void
control_stop (bool graceful, unsigned timeout, const char *reason)
{
  /* A stop overrides a retire; anything else is already under way. */
  if (stopping && !retiring)
    return;
  stopping = true;
  retiring = false;
  retire_deadline = 0;
  control_stopping (reason);
  stop_accepting ();
  control_set_draining ();
  if (graceful) {
    stop_deadline = now_monotonic () + timeout;
    connection_disconnect_all (false, CLOSE_BY_STOP);
  }
  else {
    stop_deadline = now_monotonic () + FORCED_STOP_GRACE;
    connection_disconnect_all (true, CLOSE_BY_STOP);
  }
  if (connection_threads_running () == 0)
    set_quit ();
}

/* Read the optional "timeout" field (seconds, 0 to MAX) into *TIMEOUT. */
static int
get_timeout (struct json_object *cmd, int64_t max, int64_t *timeout,
             char **error)
{
  struct json_object *v;
  int r = get_field (cmd, "timeout", json_type_int, &v, error);

  if (r == 1) {
    *timeout = json_object_get_int64 (v);
    if (*timeout < 0 || *timeout > max) {
      *error = control_error_text ("field 'timeout' must be between 0 and "
                                   "%" PRIi64, max);
      return -1;
    }
  }
  return r == -1 ? -1 : 0;
}

static int
cmd_stop (struct json_object *cmd, int *fds, size_t nfds,
          struct json_object *reply, char **error)
{
  struct json_object *v;
  bool graceful = true;
  int64_t timeout = DEFAULT_STOP_TIMEOUT;
  int r;

  if ((r = get_field (cmd, "graceful", json_type_boolean, &v, error)) == -1)
    return -1;
  if (r == 1)
    graceful = json_object_get_boolean (v);
  if (get_timeout (cmd, 86400, &timeout, error) == -1)
    return -1;
  control_stop (graceful, timeout, "stop");
  return 0;
}

/* retire: a replacement worker now serves the export.  Stop accepting
 * and exit once the last client has gone, leaving the clients alone
 * until then; after TIMEOUT seconds stop the rest as a graceful stop
 * would.
 */
static int
cmd_retire (struct json_object *cmd, int *fds, size_t nfds,
            struct json_object *reply, char **error)
{
  int64_t timeout = DEFAULT_RETIRE_TIMEOUT;

  if (get_timeout (cmd, 30 * 86400, &timeout, error) == -1)
    return -1;
  if (stopping) {
    *error = control_error_text ("the worker is stopping");
    return -1;
  }
  stopping = retiring = true;
  control_stopping ("retire");
  stop_accepting ();
  control_set_draining ();
  retire_deadline = now_monotonic () + timeout;
  if (connection_threads_running () == 0)
    set_quit ();
  return 0;
}

/* listeners: the export's listening sockets are now the descriptors
 * attached (SCM_RIGHTS), which replace the current ones.
 */
static int
cmd_listeners (struct json_object *cmd, int *fds, size_t nfds,
               struct json_object *reply, char **error)
{
  const char *why;

  if (stopping) {
    *error = control_error_text ("the worker is stopping");
    return -1;
  }
  if (replace_listeners (fds, nfds, &why) == -1) {
    *error = control_error_text ("listeners: %s", why);
    return -1;
  }
  return 0;
}

static int
cmd_reload_tls (struct json_object *cmd, int *fds, size_t nfds,
                struct json_object *reply, char **error)
{
  char text[1024];

  if (config.tls == TLS_OFF) {
    *error = control_error_text ("TLS is not enabled on this worker");
    return -1;
  }
  log_capture_errors (text, sizeof text);
  if (tls_reload () == -1) {
    log_capture_errors (NULL, 0);
    *error = control_error_text ("reload-tls: %s", text[0] ? text : "failed");
    return -1;
  }
  log_capture_errors (NULL, 0);
  return 0;
}

static int
cmd_hand_over (struct json_object *cmd, int *fds, size_t nfds,
               struct json_object *reply, char **error)
{
  int fd;

  if (nfds != 1) {
    *error = control_error_text ("hand-over needs exactly one descriptor "
                         "(SCM_RIGHTS), got %zu", nfds);
    return -1;
  }
  if (stopping) {
    *error = control_error_text ("the worker is stopping");
    return -1;
  }
  fd = fds[0];
  fds[0] = -1;                  /* control_hand_over owns it now */
  return control_hand_over (cmd, fd, reply, error);
}

static const struct {
  const char *type;
  command_handler handler;
} commands[] = {
  { "stats", cmd_stats },
  { "list-connections", cmd_list_connections },
  { "disconnect", cmd_disconnect },
  { "stop", cmd_stop },
  { "retire", cmd_retire },
  { "listeners", cmd_listeners },
  { "reload-tls", cmd_reload_tls },
  { "hand-over", cmd_hand_over },
};

static struct json_object *
parse_message (const char *buf, size_t len, bool truncated, char **error)
{
  char *text;
  struct json_object *cmd;
  enum json_tokener_error err;

  if (truncated) {
    *error = control_error_text ("message is larger than %d bytes", 65536);
    return NULL;
  }
  if (len == 0 || memchr (buf, '\0', len)) {
    *error = control_error_text ("message is empty or contains a NUL byte");
    return NULL;
  }
  text = strndup (buf, len);
  if (text == NULL) {
    *error = control_error_text ("strndup: %s", strerror (errno));
    return NULL;
  }
  cmd = json_tokener_parse_verbose (text, &err);
  free (text);
  if (cmd == NULL) {
    *error = control_error_text ("message is not valid JSON: %s",
                         json_tokener_error_desc (err));
    return NULL;
  }
  if (!json_object_is_type (cmd, json_type_object)) {
    *error = control_error_text ("message is not a JSON object");
    json_object_put (cmd);
    return NULL;
  }
  return cmd;
}

/* Check the header and run the command. */
static int
dispatch (struct json_object *cmd, int *fds, size_t nfds,
          struct json_object *reply, char **error)
{
  struct json_object *v, *type;
  const char *t;

  if (get_field (cmd, "v", json_type_int, &v, error) <= 0 ||
      json_object_get_int64 (v) != 1) {
    if (*error == NULL)
      *error = control_error_text ("unsupported protocol version (expected \"v\":1)");
    return -1;
  }
  if (get_field (cmd, "type", json_type_string, &type, error) <= 0) {
    if (*error == NULL)
      *error = control_error_text ("field 'type' is missing");
    return -1;
  }
  t = json_object_get_string (type);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; ++i)
    if (strcmp (commands[i].type, t) == 0)
      return commands[i].handler (cmd, fds, nfds, reply, error);
  *error = control_error_text ("unknown command '%s'", t);
  return -1;
}

/* One message from the supervisor (control.c): reply exactly once. */
void
control_handle_message (const char *buf, size_t len, bool truncated,
                        int *fds, size_t nfds)
{
  struct json_object *cmd, *id, *reply;
  char *error = NULL;
  int64_t idv = 0;
  int r = -1;

  cmd = parse_message (buf, len, truncated, &error);
  if (cmd && json_object_object_get_ex (cmd, "id", &id)) {
    if (json_object_is_type (id, json_type_int))
      idv = json_object_get_int64 (id);
    else
      error = control_error_text ("field 'id' must be an integer");
  }
  reply = control_message ("reply");
  json_object_object_add (reply, "id", json_object_new_int64 (idv));
  json_object_object_add (reply, "ok", json_object_new_boolean (1));

  /* Replies come before the events their command causes. */
  control_reserve_reply ();
  if (cmd && error == NULL)
    r = dispatch (cmd, fds, nfds, reply, &error);
  if (r == -1) {
    nbdkit_error ("control: %s", error ? error : "out of memory");
    json_object_object_add (reply, "ok", json_object_new_boolean (0));
    json_object_object_add (reply, "error",
                            json_object_new_string (error ? error
                                                    : "out of memory"));
  }
  control_send_reply (reply);
  free (error);
  json_object_put (cmd);
}

/* Once a second: the stats event if anything changed, and the end of a
 * graceful stop.
 */
void
control_tick (void)
{
  struct worker_stats st;

  connection_stats (&st);
  if (memcmp (&st, &last_stats, sizeof st) != 0) {
    struct json_object *msg = control_message ("stats");
    if (msg) {
      control_json_add_stats (msg);
      control_send (msg);
    }
    last_stats = st;
  }

  if (retire_deadline && now_monotonic () >= retire_deadline) {
    debug ("control: retire timeout: stopping the remaining clients");
    control_stop (true, DEFAULT_STOP_TIMEOUT, "retire-timeout");
  }
  if (stopping && stop_deadline && now_monotonic () >= stop_deadline) {
    debug ("control: stop timeout: shutting down the remaining clients");
    connection_disconnect_all (true, CLOSE_BY_STOP);
    stop_deadline = 0;
    set_quit ();
  }
}
