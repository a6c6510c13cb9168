/* SPDX-License-Identifier: BSD-3-Clause
 * Replacing a worker without dropping its clients (Update): the running
 * worker is told to "retire" (nbdkit-worker(7)): it stops accepting and
 * exits when its last client has gone, or after RETIRE_TIMEOUT_SEC when
 * it stops the rest gracefully.  A new worker with the new definition
 * starts at once on the same listening sockets and takes every new
 * client.  Retired workers stay on the export's list until they exit;
 * their counters keep counting in the export's properties.
 */

#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "nbdkitd.h"
#include "worker.h"

/* How long a retired worker may keep serving clients (documented in
 * org.nbdkit.Daemon1(5), Update).
 */
#define RETIRE_TIMEOUT_SEC 3600

static void
add_counters (struct export_counters *to, const struct export_counters *from)
{
  to->active += from->active;
  to->total += from->total;
  to->requests += from->requests;
  to->bytes_read += from->bytes_read;
  to->bytes_written += from->bytes_written;
  to->errors += from->errors;
}

/* The properties count the current worker (or the last one, once it has
 * gone), every retired worker still serving, and the retired workers
 * that have exited since the current one started.
 */
void
export_recount (struct export *e)
{
  struct export_counters c = e->retired_base;

  add_counters (&c, e->worker ? &e->worker->stats : &e->last_main);
  for (struct worker *w = e->retired; w; w = w->next_retired)
    add_counters (&c, &w->stats);
  e->counters = c;
}

bool
export_has_workers (const struct export *e)
{
  return e->worker != NULL || e->retired != NULL;
}

static void
retire_reply (struct export *e, json_object *reply, void *opaque)
{
  json_object *ok;

  if (reply && (!json_object_object_get_ex (reply, "ok", &ok) ||
                !json_object_get_boolean (ok)))
    log_warning (e->ctx, "export '%s': a retired worker refused to retire: "
                 "%s", e->def.name, json_object_to_json_string (reply));
}

/* Start a worker with E's (new) definition and retire the running one.
 * Without a ready worker to keep serving, this is a plain restart.
 */
int
worker_replace (struct export *e)
{
  struct worker *w = e->worker;
  json_object *cmd;

  if (!worker_running (e) || e->removing || e->ctx->exiting)
    return worker_restart (e);
  cmd = json_object_new_object ();
  json_object_object_add (cmd, "timeout",
                          json_object_new_int (RETIRE_TIMEOUT_SEC));
  if (worker_command_to (w, "retire", cmd, -1, retire_reply, NULL) < 0)
    return worker_restart (e);
  log_info (e->ctx, "export '%s': replacing worker %d, which keeps serving "
            "its %u client(s) until they leave", e->def.name,
            (int) spawn_pid (w->spawn), w->stats.active);
  w->retired = true;
  w->next_retired = e->retired;
  e->retired = w;
  e->worker = NULL;
  /* The new definition may change what INFO answers: wait for ready. */
  e->info.valid = false;
  return worker_start (e);
}

/* A retired worker W has exited. */
void
worker_retired_exit (struct worker *w, const siginfo_t *si)
{
  struct export *e = w->export;
  struct context *ctx = e->ctx;

  worker_control_drain (w);
  if ((si->si_code == CLD_EXITED && si->si_status == 0) ||
      (si->si_code == 0 && w->stopping_event))   /* adopted: no status */
    log_info (ctx, "export '%s': retired worker %d has exited",
              e->def.name, (int) si->si_pid);
  else if (si->si_code == 0)
    log_warning (ctx, "export '%s': retired worker %d has gone",
                 e->def.name, (int) si->si_pid);
  else
    log_warning (ctx, "export '%s': retired worker %d %s %d", e->def.name,
                 (int) si->si_pid, si->si_code == CLD_EXITED
                 ? "exited with status" : "was killed by signal",
                 si->si_status);
  for (struct worker **pp = &e->retired; *pp; pp = &(*pp)->next_retired)
    if (*pp == w) {
      *pp = w->next_retired;
      break;
    }
  w->stats.active = 0;
  add_counters (&e->retired_base, &w->stats);
  worker_free (w);
  export_recount (e);
  export_emit_changed (e, "ActiveConnections", NULL);
  export_idle_check (e);
  if (e->removing && !export_has_workers (e)) {
    export_remove_finish (e);
    context_update_status (ctx);
  }
  context_check_stopped (ctx);
  context_check_idle (ctx);
}

static void
stop_reply (struct export *e, json_object *reply, void *opaque)
{
  /* Nothing to do: the worker's exit follows. */
}

/* Stop the retired workers of E as worker_stop stops the current one. */
void
worker_stop_retired (struct export *e, bool graceful)
{
  for (struct worker *w = e->retired; w; w = w->next_retired) {
    json_object *cmd;

    if (w->stop_requested)
      continue;
    w->stop_requested = true;
    cmd = json_object_new_object ();
    json_object_object_add (cmd, "graceful",
                            json_object_new_boolean (graceful));
    json_object_object_add (cmd, "timeout", json_object_new_int (30));
    if (worker_command_to (w, "stop", cmd, -1, stop_reply, NULL) < 0)
      kill (spawn_pid (w->spawn), graceful ? SIGTERM : SIGKILL);
  }
}

/* E is being freed: its retired workers are killed with it. */
void
worker_free_retired (struct export *e)
{
  while (e->retired) {
    struct worker *w = e->retired;
    e->retired = w->next_retired;
    worker_free (w);
  }
}
