/* SPDX-License-Identifier: BSD-3-Clause
 * Workers: each running export is an nbdkit process started with its
 * listeners and a control socket by socket activation (nbdkit-worker(7)).
 * Its events become the Export object's State, MainPID, LastError and
 * counters; a worker that dies is restarted with backoff and the export
 * is marked failed after 5 quick failures.
 */

#include <config.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "nbdkitd.h"
#include "worker.h"

#define QUICK_FAILURE_USEC (10 * UINT64_C (1000000))
#define MAX_QUICK_FAILURES 5
#define STOP_KILL_USEC (35 * UINT64_C (1000000))
/* A worker that is not ready by then (a plugin hanging in config or
 * get_ready) is killed and counts as a failed start: shorter than a D-Bus
 * caller's default 25 s timeout, so AddExport answers with the reason.
 */
#define READY_TIMEOUT_USEC (20 * UINT64_C (1000000))
#define TAIL_LINES 5

static uint64_t
now_usec (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * UINT64_C (1000000) + ts.tv_nsec / 1000;
}

bool
worker_running (const struct export *e)
{
  return e->worker && e->worker->ready && !e->worker->stop_requested;
}

static void
worker_stderr_line (void *opaque, const char *line)
{
  struct worker *w = opaque;
  struct export *e = w->export;

  log_info (e->ctx, "export '%s': %s", e->def.name, line);
  if (w->tail.len == TAIL_LINES) {
    free (w->tail.ptr[0]);
    string_vector_remove (&w->tail, 0);
  }
  char *copy = strdup (line);
  if (copy && string_vector_append (&w->tail, copy) == -1)
    free (copy);
}

static char *
worker_tail_text (const struct worker *w)
{
  size_t len = 1;
  char *s;

  for (size_t i = 0; i < w->tail.len; i++)
    len += strlen (w->tail.ptr[i]) + 1;
  s = calloc (1, len);
  for (size_t i = 0; s && i < w->tail.len; i++) {
    if (i)
      strcat (s, "\n");
    strcat (s, w->tail.ptr[i]);
  }
  return s;
}

/* Fail every command still waiting for a reply. */
static void
worker_fail_pending (struct worker *w)
{
  while (w->pending) {
    struct worker_cmd *c = w->pending;
    w->pending = c->next;
    c->fn (w->export, NULL, c->opaque);
    free (c);
  }
}

void
worker_free (struct worker *w)
{
  if (w == NULL)
    return;
  worker_fail_pending (w);
  spawn_free (w->spawn);
  sd_event_source_disable_unref (w->control_source);
  sd_event_source_disable_unref (w->kill_timer);
  sd_event_source_disable_unref (w->ready_timer);
  if (w->control_fd >= 0)
    close (w->control_fd);
  string_vector_free_all (&w->tail);
  if (w->export->worker == w)
    w->export->worker = NULL;
  free (w);
}

static int
on_restart_timer (sd_event_source *s, uint64_t usec, void *userdata)
{
  struct export *e = userdata;

  e->restart_timer = sd_event_source_disable_unref (e->restart_timer);
  if (e->worker == NULL && !e->ctx->exiting)
    worker_start (e);
  return 0;
}

/* A worker that was not asked to stop has gone. */
static void
worker_unexpected_exit (struct export *e, const char *why)
{
  uint64_t backoff;

  if (now_usec () - e->last_start_usec < QUICK_FAILURE_USEC)
    e->quick_failures++;
  else
    e->quick_failures = 1;
  if (e->quick_failures >= MAX_QUICK_FAILURES) {
    log_error (e->ctx, "export '%s': worker %s %u times in a row, giving up",
               e->def.name, why, e->quick_failures);
    e->boot_pending = false;
    export_set_state (e, EXPORT_FAILED);
    return;
  }
  backoff = UINT64_C (100000) << (e->quick_failures - 1);
  log_warning (e->ctx, "export '%s': worker %s, restarting in %" PRIu64 " ms",
               e->def.name, why, backoff / 1000);
  export_set_state (e, EXPORT_STARTING);
  sd_event_add_time_relative (e->ctx->event, &e->restart_timer,
                              CLOCK_MONOTONIC, backoff, 0,
                              on_restart_timer, e);
}

static void
worker_exit (void *opaque, const siginfo_t *si)
{
  struct worker *w = opaque;
  struct export *e = w->export;
  struct context *ctx = e->ctx;
  bool requested = w->stop_requested, clean = si->si_code == CLD_EXITED &&
    si->si_status == 0;
  char why[64];

  if (w->retired) {
    worker_retired_exit (w, si);
    return;
  }
  if (si->si_code == 0) {
    /* Adopted (nbdkitd --fd-store): not our child, no status. */
    clean = w->stopping_event;
    snprintf (why, sizeof why, "has exited%s", clean ? "" : " unexpectedly");
  }
  else if (si->si_code == CLD_EXITED)
    snprintf (why, sizeof why, "exited with status %d", si->si_status);
  else
    snprintf (why, sizeof why, "was killed by signal %s",
              strsignal (si->si_status));
  log_debug (ctx, "export '%s': worker %d %s", e->def.name, (int) si->si_pid,
             why);
  if (!clean || !w->ready) {
    char *tail = worker_tail_text (w);
    if (tail && *tail && !w->error_event)
      export_set_last_error (e, tail);
    free (tail);
  }
  e->last_main = w->stats;
  e->last_main.active = 0;
  worker_free (w);
  if (e->adding) {
    /* The first worker of an AddExport: its error is the reply. */
    add_export_worker_failed (e, e->last_error);
    context_check_idle (ctx);
    return;
  }
  router_export_gone (e);
  e->info.valid = false;
  export_recount (e);
  if (e->removing) {
    /* With retired workers still serving, the last of them finishes. */
    if (!export_has_workers (e))
      export_remove_finish (e);
    context_update_status (ctx);
    context_check_stopped (ctx);
    return;
  }
  export_emit_changed (e, "MainPID", "ActiveConnections", NULL);
  if (e->restart_pending && !ctx->exiting) {
    e->restart_pending = false;
    export_set_state (e, EXPORT_INACTIVE);
    worker_start (e);
  }
  else if (requested || ctx->exiting) {
    export_set_state (e, clean || requested ? EXPORT_INACTIVE : EXPORT_FAILED);
    if (e->def.start == START_ON_DEMAND && !ctx->exiting)
      export_listeners_watch (e, true);
  }
  else
    worker_unexpected_exit (e, why);
  context_update_status (ctx);
  context_check_stopped (ctx);
  context_check_idle (ctx);
}

static int
on_kill_timer (sd_event_source *s, uint64_t usec, void *userdata)
{
  struct worker *w = userdata;

  log_warning (w->export->ctx, "export '%s': worker did not stop, killing it",
               w->export->def.name);
  kill (spawn_pid (w->spawn), SIGKILL);
  return 0;
}

static int
on_ready_timer (sd_event_source *s, uint64_t usec, void *userdata)
{
  struct worker *w = userdata;
  char msg[128];

  if (w->ready || w->stop_requested)
    return 0;
  snprintf (msg, sizeof msg, "the worker did not become ready within %u "
            "seconds (a plugin or filter hanging at start-up?)",
            (unsigned) (READY_TIMEOUT_USEC / 1000000));
  log_error (w->export->ctx, "export '%s': %s, killing it",
             w->export->def.name, msg);
  export_set_last_error (w->export, msg);
  w->error_event = true;        /* keep this reason, not the stderr tail */
  kill (spawn_pid (w->spawn), SIGKILL);
  return 0;
}

int
worker_start (struct export *e)
{
  struct context *ctx = e->ctx;
  int_vector pipes = empty_vector;
  string_vector argv = empty_vector;
  struct spawn_fd fds[64];
  size_t nfds = 0;
  struct worker *w;
  int sv[2], r;

  if (e->worker || e->broken_file)
    return e->broken_file ? -ENOENT : 0;
  /* Stopping the daemon: no new worker (a shared-port client picking
   * an export then gets an error instead of a worker nobody stops).
   */
  if (ctx->exiting)
    return -ESHUTDOWN;
  if (e->listeners.len + 1 > 32)
    return -E2BIG;
  e->restart_timer = sd_event_source_disable_unref (e->restart_timer);
  w = calloc (1, sizeof *w);
  if (w == NULL)
    return -ENOMEM;
  w->export = e;
  /* A fresh start (not a replacement) starts the counters again. */
  if (e->retired == NULL)
    e->retired_base = e->last_main = (struct export_counters) { 0 };
  w->control_fd = -1;
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
    free (w);
    return -errno;
  }
  for (size_t i = 0; i < e->listeners.len; i++)
    fds[nfds++] = (struct spawn_fd) { e->listeners.ptr[i].fd, "nbd" };
  fds[nfds++] = (struct spawn_fd) { sv[1], "control" };
  r = nbdkit_argv_build (ctx, &e->def, NULL, 3 + nfds, &pipes, &argv);
  if (r == 0 && nfds + pipes.len > sizeof fds / sizeof fds[0])
    r = -E2BIG;
  for (size_t i = 0; r == 0 && i < pipes.len; i++)
    fds[nfds++] = (struct spawn_fd) { pipes.ptr[i], NULL };
  e->worker = w;
  if (r == 0)
    r = spawn_process (ctx, argv.ptr, fds, nfds, worker_stderr_line,
                       worker_exit, w, &w->spawn);
  nbdkit_argv_free (&pipes, &argv);
  close (sv[1]);
  w->control_fd = sv[0];
  if (r == 0)
    r = sd_event_add_io (ctx->event, &w->control_source, w->control_fd,
                         EPOLLIN, worker_on_control, w);
  if (r == 0)
    r = sd_event_add_time_relative (ctx->event, &w->ready_timer,
                                    CLOCK_MONOTONIC, READY_TIMEOUT_USEC, 0,
                                    on_ready_timer, w);
  if (r < 0) {
    log_error (ctx, "export '%s': failed to start a worker: %s", e->def.name,
               strerror (-r));
    worker_free (w);
    export_set_state (e, EXPORT_FAILED);
    return r;
  }
  export_listeners_watch (e, false);
  e->last_start_usec = now_usec ();
  log_info (ctx, "export '%s': worker %d started", e->def.name,
            (int) spawn_pid (w->spawn));
  export_set_state (e, EXPORT_STARTING);
  export_emit_changed (e, "MainPID", NULL);
  context_check_idle (ctx);
  return 0;
}

static uint64_t
realtime_usec (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return ts.tv_sec * UINT64_C (1000000) + ts.tv_nsec / 1000;
}

/* The counters of an adopted worker, as it reports them now. */
static void
adopt_stats_reply (struct export *e, json_object *reply, void *opaque)
{
  if (reply)
    worker_apply_stats (opaque, reply);
}

static void
adopt_set_state (struct worker *w)
{
  struct export *e = w->export;

  if (w->stop_requested)
    export_set_state (e, EXPORT_STOPPING);
  else if (w->ready) {
    export_set_state (e, EXPORT_RUNNING);
    router_export_ready (e);
    export_idle_check (e);
  }
  else {
    export_set_state (e, EXPORT_STARTING);
    sd_event_add_time_relative (e->ctx->event, &w->ready_timer,
                                CLOCK_MONOTONIC, READY_TIMEOUT_USEC, 0,
                                on_ready_timer, w);
  }
}

/* Take over a worker an earlier nbdkitd started (nbdkitd --fd-store):
 * watch its pid through a pidfd, read its control socket and standard
 * error, and ask for its counters.  The descriptors in A are taken
 * (closed on failure).
 */
int
worker_adopt (struct export *e, const struct worker_adoption *a)
{
  struct worker *w = NULL;
  int r;

  if (!a->retired && e->worker)
    r = -EEXIST;
  else if ((w = calloc (1, sizeof *w)) == NULL)
    r = -ENOMEM;
  else
    r = spawn_adopt (e->ctx, a->pid, a->err_fd, worker_stderr_line,
                     worker_exit, w, &w->spawn);
  if (r < 0) {
    free (w);
    close (a->control_fd);
    if (a->err_fd >= 0)
      close (a->err_fd);
    return r;
  }
  w->export = e;
  w->control_fd = a->control_fd;
  /* Replies to the earlier daemon's commands may still be queued: ids
   * from the clock never meet them.
   */
  w->next_id = realtime_usec ();
  w->adopted = true;
  w->ready = a->ready;
  w->stop_requested = a->stopping;
  w->stopping_event = a->said_stopping;
  w->retired = a->retired;
  snprintf (w->control_name, sizeof w->control_name, "%s", a->control_name);
  snprintf (w->err_name, sizeof w->err_name, "%s",
            a->err_fd >= 0 ? a->err_name : "");
  r = sd_event_add_io (e->ctx->event, &w->control_source, w->control_fd,
                       EPOLLIN, worker_on_control, w);
  if (r < 0) {
    spawn_detach (w->spawn);
    worker_free (w);            /* closes the descriptors */
    return r;
  }
  if (a->retired) {
    w->next_retired = e->retired;
    e->retired = w;
  }
  else {
    e->worker = w;
    e->last_start_usec = now_usec ();
    adopt_set_state (w);
  }
  worker_command_to (w, "stats", NULL, -1, adopt_stats_reply, w);
  log_info (e->ctx, "export '%s': %sworker %d adopted", e->def.name,
            a->retired ? "retired " : "", (int) a->pid);
  export_emit_changed (e, "MainPID", NULL);
  return 0;
}

static void
stop_reply (struct export *e, json_object *reply, void *opaque)
{
  /* Nothing to do: the exit of the worker finishes the stop. */
}

int
worker_stop (struct export *e, bool graceful)
{
  struct worker *w = e->worker;
  json_object *cmd;
  int r;

  worker_stop_retired (e, graceful);
  if (w == NULL || w->stop_requested)
    return 0;
  w->stop_requested = true;
  sd_event_source_disable_unref (e->idle_timer);
  e->idle_timer = NULL;
  export_set_state (e, EXPORT_STOPPING);
  cmd = json_object_new_object ();
  json_object_object_add (cmd, "graceful", json_object_new_boolean (graceful));
  json_object_object_add (cmd, "timeout", json_object_new_int (30));
  r = worker_command (e, "stop", cmd, -1, stop_reply, NULL);
  if (r < 0 || !w->ready)
    kill (spawn_pid (w->spawn), graceful ? SIGTERM : SIGKILL);
  sd_event_add_time_relative (e->ctx->event, &w->kill_timer, CLOCK_MONOTONIC,
                              STOP_KILL_USEC, 0, on_kill_timer, w);
  return 0;
}

/* Start E as its policy says: boot now, on-demand at the first client. */
int
export_start_by_policy (struct export *e)
{
  if (e->broken_file)
    return 0;
  switch (e->def.start) {
  case START_BOOT:
    e->boot_pending = true;
    return worker_start (e);
  case START_ON_DEMAND:
    return export_listeners_watch (e, true);
  case START_MANUAL:
    return 0;
  }
  return 0;
}

/* Stop and start again (the listeners stay open in between). */
int
worker_restart (struct export *e)
{
  if (e->worker == NULL) {
    e->quick_failures = 0;
    return worker_start (e);
  }
  e->restart_pending = true;
  return worker_stop (e, true);
}

static int
on_idle_timer (sd_event_source *s, uint64_t usec, void *userdata)
{
  struct export *e = userdata;

  log_info (e->ctx, "export '%s': no client for %u s, stopping the worker",
            e->def.name, e->def.idle_timeout);
  e->idle_timer = sd_event_source_disable_unref (e->idle_timer);
  worker_stop (e, true);
  return 0;
}

/* On-demand exports stop idle-timeout seconds after the last client. */
void
export_idle_check (struct export *e)
{
  bool idle = e->def.start == START_ON_DEMAND && e->def.idle_timeout > 0 &&
    worker_running (e) && e->counters.active == 0 &&
    !router_has_pending (e);

  if (!idle) {
    e->idle_timer = sd_event_source_disable_unref (e->idle_timer);
    return;
  }
  if (e->idle_timer)
    return;
  sd_event_add_time_relative (e->ctx->event, &e->idle_timer, CLOCK_MONOTONIC,
                              e->def.idle_timeout * UINT64_C (1000000), 0,
                              on_idle_timer, e);
}
