/* SPDX-License-Identifier: BSD-3-Clause
 * A worker process and its control socket (worker.c, worker-control.c).
 */

#ifndef NBDKITD_WORKER_H
#define NBDKITD_WORKER_H

#include <signal.h>

#include <json-c/json.h>

#include "nbdkitd.h"

/* Called with the reply, or with NULL if the worker went away first. */
typedef void (*worker_reply_fn) (struct export *e, json_object *reply,
                                 void *opaque);

struct worker_cmd {
  struct worker_cmd *next;
  int64_t id;
  worker_reply_fn fn;
  void *opaque;
};

struct worker {
  struct export *export;
  struct spawn *spawn;
  int control_fd;
  sd_event_source *control_source;
  sd_event_source *kill_timer;
  sd_event_source *ready_timer; /* WORKER_READY_TIMEOUT_USEC until ready */
  bool ready;                   /* the ready event came */
  bool error_event;             /* an error event came */
  bool stop_requested;
  int64_t next_id;
  struct worker_cmd *pending;
  string_vector tail;           /* the last lines of standard error */
  struct export_counters stats; /* this worker's own counters */
  bool retired;                 /* replaced: serves its last clients */
  struct worker *next_retired;  /* in export->retired */
  bool stopping_event;          /* it said "stopping" */
  bool adopted;                 /* started by an earlier nbdkitd */
  char control_name[FDSTORE_NAME_MAX];  /* in the fd store (fdstore.c) */
  char err_name[FDSTORE_NAME_MAX];
};

/* What a worker started by an earlier nbdkitd was (fdstore-adopt.c). */
struct worker_adoption {
  pid_t pid;
  int control_fd;
  int err_fd;                   /* -1: its standard error is not kept */
  const char *control_name;
  const char *err_name;
  bool ready;
  bool retired;
  bool stopping;                /* asked to stop */
  bool said_stopping;           /* its "stopping" event came */
};

/* worker.c */
extern int worker_adopt (struct export *e, const struct worker_adoption *a);

/* worker-control.c */
extern int worker_command (struct export *e, const char *type,
                           json_object *args, int fd,
                           worker_reply_fn fn, void *opaque);
extern int worker_command_to (struct worker *w, const char *type,
                              json_object *args, int fd,
                              worker_reply_fn fn, void *opaque);
#define WORKER_MAX_FDS 32
extern int worker_command_fds (struct worker *w, const char *type,
                               json_object *args, const int *fds, size_t nfds,
                               worker_reply_fn fn, void *opaque);
extern int worker_on_control (sd_event_source *s, int fd, uint32_t revents,
                              void *userdata);
extern void worker_control_drain (struct worker *w);
extern void worker_apply_stats (struct worker *w, json_object *msg);

/* worker-retire.c */
extern void worker_retired_exit (struct worker *w, const siginfo_t *si);
extern void worker_stop_retired (struct export *e, bool graceful);
extern void worker_free_retired (struct export *e);

#endif /* NBDKITD_WORKER_H */
