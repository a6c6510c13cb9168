/* SPDX-License-Identifier: BSD-3-Clause
 * nbdkitd --fd-store: the service manager's file-descriptor store keeps
 * the daemon's listening sockets, each worker's control socket and the
 * read end of its standard error while nbdkitd restarts (sd_notify
 * FDSTORE=1, FDNAME=, FDSTOREREMOVE=1).  Names are short and generated
 * ("nbdkitd-<start time>-<n>"); the JSON map FDSTORE_MAP_FILE in the
 * runtime directory says what each one is (fdstore-adopt.c), so that the
 * next daemon, which gets them back by socket activation, can adopt them.
 *
 * After every round of the event loop fdstore_sync stores descriptors
 * that have no name yet, removes the names of those that are gone and
 * rewrites the map when something changed.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "nbdkitd.h"
#include "fdstore.h"
#include "worker.h"
#include "cleanup.h"

#define NAME_PREFIX "nbdkitd-"

struct received {
  char *name;
  int fd;
  bool claimed;
};
DEFINE_VECTOR_TYPE (received_vector, struct received)

static bool enabled;            /* --fd-store with a service manager */
static bool adopting;           /* received descriptors not yet sorted */
static bool dirty;              /* the map must be written again */
static bool store_failed;       /* logged once */
static char prefix[32];
static unsigned next_number;
static received_vector received; /* from the earlier daemon */
static string_vector stored;     /* every name in the store now */
static int_vector activation;    /* socket units' descriptors */
static json_object *old_map;     /* the earlier daemon's map */
static sd_event_source *post_source;
static char *map_text;           /* the map as last written */

size_t
fdstore_activation_fds (const int **fds)
{
  *fds = activation.ptr;
  return activation.len;
}

bool
fdstore_keeps (const struct export *e)
{
  /* A transient export is not in the state directory, and one being
   * removed is gone once its worker has stopped: the daemon waits for
   * both before it exits.
   */
  return enabled && e->def.persist && e->broken_file == NULL &&
    !e->removing;
}

void
fdstore_dirty (void)
{
  dirty = true;
}

static int
remember (const char *name, int fd)
{
  struct received rv = { .name = strdup (name), .fd = fd };
  char *copy = strdup (name);

  if (rv.name == NULL || copy == NULL ||
      received_vector_append (&received, rv) == -1) {
    free (rv.name);
    free (copy);
    return -ENOMEM;
  }
  if (string_vector_append (&stored, copy) == -1) {
    free (copy);
    return -ENOMEM;
  }
  return 0;
}

/* LISTEN_FDS: our own names are the store's, the others come from
 * socket units (the shared listener of nbdkitd.socket).
 */
static int
take_listen_fds (void)
{
  char **names = NULL;
  int n = sd_listen_fds_with_names (true, &names);
  int r = 0;

  for (int i = 0; i < n; i++) {
    const char *name = names && names[i] ? names[i] : "";
    int fd = SD_LISTEN_FDS_START + i;

    if (enabled && strncmp (name, NAME_PREFIX, strlen (NAME_PREFIX)) == 0) {
      if (r == 0)
        r = remember (name, fd);
    }
    else if (r == 0 && int_vector_append (&activation, fd) == -1)
      r = -ENOMEM;
  }
  for (int i = 0; names && names[i]; i++)
    free (names[i]);
  free (names);
  return n < 0 ? n : r;
}

static void
map_read (struct context *ctx)
{
  CLEANUP_FREE char *path = NULL;

  if (received.len == 0 ||
      asprintf (&path, "%s/%s", ctx->config.runtime_dir,
                FDSTORE_MAP_FILE) == -1)
    return;
  old_map = json_object_from_file (path);
  if (old_map && !json_object_is_type (old_map, json_type_object)) {
    json_object_put (old_map);
    old_map = NULL;
  }
  if (old_map == NULL)
    log_warning (ctx, "%s: cannot be read (%s): the %zu stored descriptors "
                 "are closed", path, json_util_get_last_err (), received.len);
}

static int
on_post (sd_event_source *s, void *userdata)
{
  fdstore_sync (userdata);
  return 0;
}

/* Before the shared listeners are opened and the exports restored. */
int
fdstore_init (struct context *ctx)
{
  struct timespec ts;
  int r;

  enabled = ctx->config.fd_store;
  if (enabled && getenv ("NOTIFY_SOCKET") == NULL) {
    log_warning (ctx, "--fd-store: no service manager (NOTIFY_SOCKET is not "
                 "set): the workers stop with the daemon");
    enabled = ctx->config.fd_store = false;
  }
  r = take_listen_fds ();
  if (r < 0 || !enabled)
    return r;
  clock_gettime (CLOCK_REALTIME, &ts);
  snprintf (prefix, sizeof prefix, NAME_PREFIX "%" PRIx64 "-",
            (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
  adopting = true;
  map_read (ctx);
  log_info (ctx, "fd store: %zu descriptor(s) from the previous nbdkitd",
            received.len);
  return sd_event_add_post (ctx->event, &post_source, on_post, ctx);
}

/* Take the received descriptor NAME (-1 if there is none). */
int
fdstore_claim (const char *name)
{
  for (size_t i = 0; name && i < received.len; i++)
    if (!received.ptr[i].claimed && strcmp (received.ptr[i].name, name) == 0) {
      received.ptr[i].claimed = true;
      return received.ptr[i].fd;
    }
  return -1;
}

static const char *
get_string (json_object *o, const char *key)
{
  json_object *v;

  return json_object_object_get_ex (o, key, &v) &&
    json_object_is_type (v, json_type_string) ? json_object_get_string (v)
    : NULL;
}

/* The earlier daemon's shared listener for --listen=LISTEN. */
int
fdstore_claim_shared (const char *listen, char *name)
{
  json_object *shared;
  size_t n;

  if (old_map == NULL ||
      !json_object_object_get_ex (old_map, "shared", &shared) ||
      !json_object_is_type (shared, json_type_array))
    return -1;
  n = json_object_array_length (shared);
  for (size_t i = 0; i < n; i++) {
    json_object *o = json_object_array_get_idx (shared, i);
    const char *l = get_string (o, "listen"), *fdname = get_string (o, "fd");
    int fd;

    if (l == NULL || fdname == NULL || strcmp (l, listen) != 0 ||
        (fd = fdstore_claim (fdname)) < 0)
      continue;
    snprintf (name, FDSTORE_NAME_MAX, "%s", fdname);
    return fd;
  }
  return -1;
}

/* The earlier daemon's entry for export NAME, or NULL. */
json_object *
fdstore_map_export (const char *name)
{
  json_object *exports;
  size_t n;

  if (old_map == NULL ||
      !json_object_object_get_ex (old_map, "exports", &exports) ||
      !json_object_is_type (exports, json_type_array))
    return NULL;
  n = json_object_array_length (exports);
  for (size_t i = 0; i < n; i++) {
    json_object *o = json_object_array_get_idx (exports, i);
    const char *e = get_string (o, "name");
    if (e && strcmp (e, name) == 0)
      return o;
  }
  return NULL;
}

/* Hand FD to the store under a new name.  Returns true if it did. */
static bool
store_fd (struct context *ctx, int fd, char *name)
{
  char msg[FDSTORE_NAME_MAX + 32], *copy;
  int r;

  if (store_failed)
    return false;
  snprintf (name, FDSTORE_NAME_MAX, "%s%u", prefix, ++next_number);
  snprintf (msg, sizeof msg, "FDSTORE=1\nFDNAME=%s", name);
  r = sd_pid_notify_with_fds (0, false, msg, &fd, 1);
  copy = r > 0 ? strdup (name) : NULL;
  if (copy == NULL || string_vector_append (&stored, copy) == -1) {
    log_warning (ctx, "Failed to put a descriptor in the service manager's "
                 "fd store: %s; a restart will not keep every worker",
                 r < 0 ? strerror (-r) : r == 0 ? "no NOTIFY_SOCKET"
                 : strerror (ENOMEM));
    free (copy);
    if (r > 0)
      sd_notifyf (false, "FDSTOREREMOVE=1\nFDNAME=%s", name);
    store_failed = true;
    name[0] = '\0';
    return false;
  }
  return true;
}

struct visit {
  struct context *ctx;
  size_t referenced;            /* named descriptors in use */
  bool added;
  string_vector *seen;          /* their names (not owned), or NULL */
};

static void
visit_fd (struct visit *v, int fd, char *name)
{
  if (fd < 0 || strcmp (name, FDSTORE_NOT_OURS) == 0)
    return;
  if (name[0] == '\0' && v->seen == NULL)
    v->added |= store_fd (v->ctx, fd, name);
  if (name[0] == '\0')
    return;
  v->referenced++;
  if (v->seen)
    string_vector_append (v->seen, name);
}

static void
visit_worker (struct visit *v, struct worker *w)
{
  visit_fd (v, w->control_fd, w->control_name);
  if (w->spawn)
    visit_fd (v, spawn_err_fd (w->spawn), w->err_name);
}

static void
visit_all (struct context *ctx, struct visit *v)
{
  for (size_t i = 0; i < ctx->shared.len; i++)
    visit_fd (v, ctx->shared.ptr[i].fd, ctx->shared.ptr[i].fdname);
  for (size_t i = 0; i < ctx->exports.len; i++) {
    struct export *e = ctx->exports.ptr[i];

    if (!fdstore_keeps (e))
      continue;
    for (size_t j = 0; j < e->listeners.len; j++)
      visit_fd (v, e->listeners.ptr[j].fd, e->listeners.ptr[j].fdname);
    if (e->worker)
      visit_worker (v, e->worker);
    for (struct worker *w = e->retired; w; w = w->next_retired)
      visit_worker (v, w);
  }
}

/* Remove from the store every name no longer in use. */
static void
remove_gone (struct context *ctx)
{
  string_vector seen = empty_vector;
  struct visit v = { .ctx = ctx, .seen = &seen };

  visit_all (ctx, &v);
  for (size_t i = 0; i < stored.len; ) {
    bool used = false;

    for (size_t j = 0; !used && j < seen.len; j++)
      used = strcmp (seen.ptr[j], stored.ptr[i]) == 0;
    if (used) {
      i++;
      continue;
    }
    log_debug (ctx, "fd store: removing %s", stored.ptr[i]);
    sd_notifyf (false, "FDSTOREREMOVE=1\nFDNAME=%s", stored.ptr[i]);
    free (stored.ptr[i]);
    string_vector_remove (&stored, i);
  }
  string_vector_reset (&seen);
}

static void
map_write (struct context *ctx)
{
  CLEANUP_FREE char *path = NULL, *tmp = NULL;
  json_object *map = fdstore_map_build (ctx);
  const char *text;
  FILE *fp;

  dirty = false;
  text = map ? json_object_to_json_string_ext (map, JSON_C_TO_STRING_PLAIN)
    : NULL;
  if (text == NULL || (map_text && strcmp (map_text, text) == 0)) {
    json_object_put (map);
    return;
  }
  if (asprintf (&path, "%s/%s", ctx->config.runtime_dir,
                FDSTORE_MAP_FILE) == -1 ||
      asprintf (&tmp, "%s.tmp", path) == -1) {
    json_object_put (map);
    return;
  }
  fp = fopen (tmp, "we");
  if (fp == NULL || fputs (text, fp) == EOF || fclose (fp) == EOF ||
      rename (tmp, path) == -1)
    log_warning (ctx, "%s: %m", path);
  else {
    free (map_text);
    map_text = strdup (text);
  }
  json_object_put (map);
}

/* Store what is new, forget what is gone, write the map if needed. */
void
fdstore_sync (struct context *ctx)
{
  struct visit v = { .ctx = ctx };

  if (!enabled || adopting)
    return;
  visit_all (ctx, &v);
  if (v.referenced != stored.len) {
    remove_gone (ctx);
    v.added = true;
  }
  if (v.added || dirty)
    map_write (ctx);
}

/* After adoption: what no export took is closed and removed (a worker
 * whose control socket closes this way stops gracefully).
 */
void
fdstore_discard_unclaimed (struct context *ctx)
{
  for (size_t i = 0; i < received.len; i++) {
    if (!received.ptr[i].claimed) {
      log_info (ctx, "fd store: %s is not used any more, closing it",
                received.ptr[i].name);
      close (received.ptr[i].fd);
    }
    free (received.ptr[i].name);
  }
  received_vector_reset (&received);
  json_object_put (old_map);
  old_map = NULL;
  adopting = false;
  dirty = true;
  fdstore_sync (ctx);
}

void
fdstore_free (void)
{
  for (size_t i = 0; i < received.len; i++) {
    if (!received.ptr[i].claimed)
      close (received.ptr[i].fd);
    free (received.ptr[i].name);
  }
  received_vector_reset (&received);
  string_vector_free_all (&stored);
  int_vector_reset (&activation);
  json_object_put (old_map);
  old_map = NULL;
  post_source = sd_event_source_disable_unref (post_source);
  free (map_text);
  map_text = NULL;
}
