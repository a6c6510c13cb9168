/* SPDX-License-Identifier: BSD-3-Clause
 * The control socket of a worker (nbdkit-worker(7)): commands with ids
 * and their replies, and the events (ready, error, connection-opened,
 * connection-closed, stats, stopping) that become Export properties.
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nbdkitd.h"
#include "fdstore.h"
#include "worker.h"

#define CONTROL_MSG_MAX 65536

/* Send {"v":1,"type":TYPE,"id":N, ARGS...} with FD (or -1) attached.
 * ARGS (may be NULL) is consumed.
 */
int
worker_command (struct export *e, const char *type, json_object *args,
                int fd, worker_reply_fn fn, void *opaque)
{
  if (e->worker == NULL) {
    json_object_put (args);
    return -ESRCH;
  }
  return worker_command_to (e->worker, type, args, fd, fn, opaque);
}

/* The same, to one worker W (the current one or a retired one). */
int
worker_command_to (struct worker *w, const char *type, json_object *args,
                   int fd, worker_reply_fn fn, void *opaque)
{
  return worker_command_fds (w, type, args, &fd, fd >= 0 ? 1 : 0, fn,
                             opaque);
}

/* The same with NFDS descriptors (at most WORKER_MAX_FDS) attached. */
int
worker_command_fds (struct worker *w, const char *type, json_object *args,
                    const int *fds, size_t nfds, worker_reply_fn fn,
                    void *opaque)
{
  json_object *msg = args ? args : json_object_new_object ();
  struct worker_cmd *c;
  const char *text;
  struct iovec iov;
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
  union {
    char buf[CMSG_SPACE (WORKER_MAX_FDS * sizeof (int))];
    struct cmsghdr align;
  } u;
  int r = 0;

  if (w->control_fd < 0 || nfds > WORKER_MAX_FDS) {
    json_object_put (msg);
    return w->control_fd < 0 ? -ESRCH : -E2BIG;
  }
  c = calloc (1, sizeof *c);
  if (c == NULL || msg == NULL) {
    free (c);
    json_object_put (msg);
    return -ENOMEM;
  }
  c->id = ++w->next_id;
  c->fn = fn;
  c->opaque = opaque;
  json_object_object_add (msg, "v", json_object_new_int (1));
  json_object_object_add (msg, "type", json_object_new_string (type));
  json_object_object_add (msg, "id", json_object_new_int64 (c->id));
  text = json_object_to_json_string_ext (msg, JSON_C_TO_STRING_PLAIN);
  iov.iov_base = (void *) text;
  iov.iov_len = strlen (text);
  if (nfds > 0) {
    struct cmsghdr *cm;

    memset (&u, 0, sizeof u);
    mh.msg_control = u.buf;
    mh.msg_controllen = CMSG_SPACE (nfds * sizeof (int));
    cm = CMSG_FIRSTHDR (&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN (nfds * sizeof (int));
    memcpy (CMSG_DATA (cm), fds, nfds * sizeof (int));
  }
  if (sendmsg (w->control_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == -1)
    r = -errno;
  json_object_put (msg);
  if (r < 0) {
    free (c);
    return r;
  }
  c->next = w->pending;
  w->pending = c;
  return 0;
}

static int64_t
get_int (json_object *o, const char *key)
{
  json_object *v;
  return json_object_object_get_ex (o, key, &v) ? json_object_get_int64 (v) : 0;
}

static bool
get_bool (json_object *o, const char *key)
{
  json_object *v;
  return json_object_object_get_ex (o, key, &v) && json_object_get_boolean (v);
}

static const char *
get_string (json_object *o, const char *key)
{
  json_object *v;
  return json_object_object_get_ex (o, key, &v) &&
    json_object_is_type (v, json_type_string) ? json_object_get_string (v) : NULL;
}

static void
on_ready (struct export *e, json_object *msg)
{
  json_object *ex = NULL, *bs = NULL;
  const char *desc;

  e->worker->ready = true;
  e->worker->ready_timer = sd_event_source_disable_unref (e->worker->ready_timer);
  free (e->info.description);
  e->info = (struct export_info) { .valid = true };
  if (json_object_object_get_ex (msg, "export", &ex)) {
    e->info.size = get_int (ex, "size");
    e->info.eflags = get_int (ex, "eflags");
    desc = get_string (ex, "description");
    e->info.description = desc ? strdup (desc) : NULL;
    if (json_object_object_get_ex (ex, "block_size", &bs)) {
      e->info.min_block = get_int (bs, "minimum");
      e->info.pref_block = get_int (bs, "preferred");
      e->info.max_block = get_int (bs, "maximum");
    }
  }
  e->boot_pending = false;
  if (e->worker->stop_requested)
    return;
  export_set_state (e, EXPORT_RUNNING);
  if (e->adding) {
    /* AddExport's reply; E may be gone when it returns. */
    add_export_worker_ready (e);
    return;
  }
  router_export_ready (e);
  export_idle_check (e);
}

/* A stats event, or the reply to the stats command. */
void
worker_apply_stats (struct worker *w, json_object *msg)
{
  json_object *req;
  uint64_t requests = 0;

  w->stats.active = get_int (msg, "connections_active");
  w->stats.total = get_int (msg, "connections_total");
  w->stats.bytes_read = get_int (msg, "bytes_read");
  w->stats.bytes_written = get_int (msg, "bytes_written");
  w->stats.errors = get_int (msg, "errors");
  if (json_object_object_get_ex (msg, "requests", &req) &&
      json_object_is_type (req, json_type_object)) {
    json_object_object_foreach (req, key, val) {
      (void) key;
      requests += json_object_get_int64 (val);
    }
  }
  w->stats.requests = requests;
  export_recount (w->export);
  export_counters_changed (w->export);
}

static void
on_reply (struct worker *w, json_object *msg)
{
  struct export *e = w->export;
  int64_t id = get_int (msg, "id");

  for (struct worker_cmd **pp = &w->pending; *pp; pp = &(*pp)->next) {
    struct worker_cmd *c = *pp;
    if (c->id != id)
      continue;
    *pp = c->next;
    c->fn (e, msg, c->opaque);
    free (c);
    return;
  }
  log_debug (e->ctx, "export '%s': reply to unknown command %" PRId64,
             e->def.name, id);
}

/* A connection came or went on W. */
static void
on_connection (struct worker *w, bool opened)
{
  struct export *e = w->export;

  if (opened) {
    w->stats.active++;
    w->stats.total++;
  }
  else if (w->stats.active)
    w->stats.active--;
  export_recount (e);
  export_emit_changed (e, "ActiveConnections", NULL);
  export_idle_check (e);
}

static void
worker_event (struct worker *w, json_object *msg)
{
  struct export *e = w->export;
  const char *type = get_string (msg, "type");

  if (type == NULL || get_int (msg, "v") != 1) {
    log_warning (e->ctx, "export '%s': malformed control message, ignoring",
                 e->def.name);
    return;
  }
  if (strcmp (type, "stopping") == 0) {
    w->stopping_event = true;
    fdstore_dirty ();           /* in the map: its exit is expected */
  }
  if (strcmp (type, "reply") == 0)
    on_reply (w, msg);
  else if (strcmp (type, "connection-opened") == 0)
    on_connection (w, true);
  else if (strcmp (type, "connection-closed") == 0)
    on_connection (w, false);
  else if (strcmp (type, "stats") == 0)
    worker_apply_stats (w, msg);
  else if (w->retired)
    /* The export's state is the current worker's business. */
    log_debug (e->ctx, "export '%s': retired worker: %s", e->def.name, type);
  else if (strcmp (type, "ready") == 0)
    on_ready (e, msg);
  else if (strcmp (type, "error") == 0) {
    w->error_event = true;
    export_set_last_error (e, get_string (msg, "message"));
  }
  else if (strcmp (type, "stopping") == 0) {
    if (e->state != EXPORT_FAILED)
      export_set_state (e, EXPORT_STOPPING);
  }
  else
    log_debug (e->ctx, "export '%s': unknown event '%s'", e->def.name, type);
  (void) get_bool;
}

int
worker_on_control (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  struct worker *w = userdata;
  struct export *e = w->export;
  char *buf;
  ssize_t n;

  buf = malloc (CONTROL_MSG_MAX + 1);
  if (buf == NULL)
    return 0;
  n = recv (fd, buf, CONTROL_MSG_MAX + 1, MSG_DONTWAIT);
  if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
    free (buf);
    return 0;
  }
  if (n <= 0) {
    /* The worker closed its end: its exit follows. */
    free (buf);
    w->control_source = sd_event_source_disable_unref (w->control_source);
    return 0;
  }
  if (n > CONTROL_MSG_MAX)
    log_warning (e->ctx, "export '%s': oversized control message, ignoring",
                 e->def.name);
  else {
    json_object *msg;
    buf[n] = '\0';
    msg = json_tokener_parse (buf);
    if (msg && json_object_is_type (msg, json_type_object))
      worker_event (w, msg);
    else
      log_warning (e->ctx, "export '%s': control message is not JSON, ignoring",
                   e->def.name);
    json_object_put (msg);
  }
  free (buf);
  return 0;
}

/* W has exited: take the messages it sent last (its final counters)
 * before its control socket is closed.
 */
void
worker_control_drain (struct worker *w)
{
  for (int i = 0; i < 64 && w->control_source; i++) {
    char c;

    if (recv (w->control_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
      break;
    worker_on_control (w->control_source, w->control_fd, EPOLLIN, w);
  }
}
