/* SPDX-License-Identifier: BSD-3-Clause
 * Persistence: one JSON file per export in the state directory, written
 * atomically (temporary file, fsync, rename, fsync of the directory),
 * mode 0600, and read back at start.  A file that cannot be read is moved
 * aside to LABEL.json.broken and shown as a failed export.
 */

#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "nbdkitd.h"
#include "cleanup.h"

#define STORE_VERSION 1
/* Keep file names well below NAME_MAX even for 4096-byte export names. */
#define LABEL_MAX 160

/* The file name of an export (without .json): its object-path label,
 * which is [A-Za-z0-9_] only; long names are cut and given a hash.
 */
char *
store_file_label (const char *name)
{
  CLEANUP_FREE char *path = NULL;
  const char *label;
  char *ret;
  uint64_t h = UINT64_C (14695981039346656037);

  if (sd_bus_path_encode (NBDKITD_EXPORT_PREFIX, name, &path) < 0)
    return NULL;
  label = strrchr (path, '/') + 1;
  if (strlen (label) <= LABEL_MAX)
    return strdup (label);
  for (const char *p = name; *p; p++)
    h = (h ^ (unsigned char) *p) * UINT64_C (1099511628211);
  if (asprintf (&ret, "%.*s-%016" PRIx64, LABEL_MAX - 20, label, h) == -1)
    return NULL;
  return ret;
}

static json_object *
strv_to_json (const string_vector *v)
{
  json_object *a = json_object_new_array ();

  for (size_t i = 0; a && i < v->len; i++)
    json_object_array_add (a, json_object_new_string (v->ptr[i]));
  return a;
}

static json_object *
def_to_json (const struct export_def *def)
{
  json_object *o = json_object_new_object ();
  json_object *params = json_object_new_array ();
  json_object *tls = json_object_new_object ();

  json_object_object_add (o, "v", json_object_new_int (STORE_VERSION));
  json_object_object_add (o, "name", json_object_new_string (def->name));
  if (def->description)
    json_object_object_add (o, "description",
                            json_object_new_string (def->description));
  json_object_object_add (o, "plugin", json_object_new_string (def->plugin));
  json_object_object_add (o, "filters", strv_to_json (&def->filters));
  for (size_t i = 0; i < def->params.len; i++) {
    json_object *kv;
    if (def->params.ptr[i].secret)     /* never written: see options.c */
      continue;
    kv = json_object_new_array ();
    json_object_array_add (kv, json_object_new_string (def->params.ptr[i].key));
    json_object_array_add (kv, json_object_new_string (def->params.ptr[i].value));
    json_object_array_add (params, kv);
  }
  json_object_object_add (o, "params", params);
  json_object_object_add (o, "readonly", json_object_new_boolean (def->readonly));
  json_object_object_add (o, "listeners", strv_to_json (&def->listeners));
  json_object_object_add (tls, "mode",
                          json_object_new_string (tls_mode_to_string (def->tls)));
  if (def->tls_certificates)
    json_object_object_add (tls, "certificates",
                            json_object_new_string (def->tls_certificates));
  if (def->tls_psk)
    json_object_object_add (tls, "psk", json_object_new_string (def->tls_psk));
  json_object_object_add (tls, "verify-peer",
                          json_object_new_boolean (def->tls_verify_peer));
  if (def->tls_allow.len)
    json_object_object_add (tls, "allow", strv_to_json (&def->tls_allow));
  json_object_object_add (o, "tls", tls);
  json_object_object_add (o, "threads", json_object_new_int64 (def->threads));
  if (def->user)
    json_object_object_add (o, "user", json_object_new_string (def->user));
  if (def->group)
    json_object_object_add (o, "group", json_object_new_string (def->group));
  json_object_object_add (o, "start", json_object_new_string
                          (start_policy_to_string (def->start)));
  json_object_object_add (o, "idle-timeout",
                          json_object_new_int64 (def->idle_timeout));
  return o;
}

static int
fsync_dir (const char *dir)
{
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = 0;

  if (fd == -1)
    return -errno;
  if (fsync (fd) == -1)
    r = -errno;
  close (fd);
  return r;
}

int
write_atomically (const char *dir, const char *file, const char *text)
{
  CLEANUP_FREE char *tmp = NULL, *dst = NULL;
  size_t len = strlen (text), off = 0;
  int fd, r = 0;

  if (asprintf (&tmp, "%s/.%s.XXXXXX", dir, file) == -1 ||
      asprintf (&dst, "%s/%s", dir, file) == -1)
    return -ENOMEM;
  fd = mkostemp (tmp, O_CLOEXEC);   /* mkostemp creates files mode 0600 */
  if (fd == -1)
    return -errno;
  while (off < len) {
    ssize_t n = write (fd, text + off, len - off);
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1) {
      r = -errno;
      break;
    }
    off += n;
  }
  if (r == 0 && fsync (fd) == -1)
    r = -errno;
  if (close (fd) == -1 && r == 0)
    r = -errno;
  if (r == 0 && rename (tmp, dst) == -1)
    r = -errno;
  if (r < 0) {
    unlink (tmp);
    return r;
  }
  return fsync_dir (dir);
}

int
store_save (struct context *ctx, const struct export_def *def)
{
  CLEANUP_FREE char *label = NULL, *file = NULL;
  json_object *o;
  int r;

  if (!def->persist)
    return 0;
  label = store_file_label (def->name);
  if (label == NULL || asprintf (&file, "%s.json", label) == -1)
    return -ENOMEM;
  o = def_to_json (def);
  if (o == NULL)
    return -ENOMEM;
  r = write_atomically (ctx->config.state_dir, file,
                        json_object_to_json_string_ext (o, JSON_C_TO_STRING_PRETTY));
  json_object_put (o);
  if (r < 0)
    log_error (ctx, "Failed to write %s/%s: %s", ctx->config.state_dir, file,
               strerror (-r));
  return r;
}

int
store_delete (struct context *ctx, const char *name)
{
  CLEANUP_FREE char *label = store_file_label (name);
  CLEANUP_FREE char *file = NULL, *broken = NULL;

  if (label == NULL ||
      asprintf (&file, "%s/%s.json", ctx->config.state_dir, label) == -1 ||
      asprintf (&broken, "%s/%s.json.broken", ctx->config.state_dir, label) == -1)
    return -ENOMEM;
  if (unlink (file) == -1 && errno != ENOENT)
    return -errno;
  if (unlink (broken) == -1 && errno != ENOENT)
    return -errno;
  return fsync_dir (ctx->config.state_dir);
}

/* Reading back. */

static int
json_get_string (json_object *o, const char *key, bool required, char **dst)
{
  json_object *v;

  if (!json_object_object_get_ex (o, key, &v))
    return required ? -EBADMSG : 0;
  if (!json_object_is_type (v, json_type_string))
    return -EBADMSG;
  *dst = strdup (json_object_get_string (v));
  return *dst ? 0 : -ENOMEM;
}

static int
json_get_strv (json_object *o, const char *key, string_vector *dst)
{
  json_object *a;

  if (!json_object_object_get_ex (o, key, &a))
    return 0;
  if (!json_object_is_type (a, json_type_array))
    return -EBADMSG;
  for (size_t i = 0; i < json_object_array_length (a); i++) {
    json_object *s = json_object_array_get_idx (a, i);
    char *copy;
    if (!json_object_is_type (s, json_type_string))
      return -EBADMSG;
    copy = strdup (json_object_get_string (s));
    if (copy == NULL || string_vector_append (dst, copy) == -1) {
      free (copy);
      return -ENOMEM;
    }
  }
  return 0;
}

static int
json_get_params (json_object *o, param_vector *dst)
{
  json_object *a;

  if (!json_object_object_get_ex (o, "params", &a))
    return 0;
  if (!json_object_is_type (a, json_type_array))
    return -EBADMSG;
  for (size_t i = 0; i < json_object_array_length (a); i++) {
    json_object *kv = json_object_array_get_idx (a, i), *k, *v;
    struct param p = { 0 };
    if (!json_object_is_type (kv, json_type_array) ||
        json_object_array_length (kv) != 2)
      return -EBADMSG;
    k = json_object_array_get_idx (kv, 0);
    v = json_object_array_get_idx (kv, 1);
    if (!json_object_is_type (k, json_type_string) ||
        !json_object_is_type (v, json_type_string))
      return -EBADMSG;
    p.key = strdup (json_object_get_string (k));
    p.value = strdup (json_object_get_string (v));
    if (!p.key || !p.value || param_vector_append (dst, p) == -1) {
      free (p.key);
      free (p.value);
      return -ENOMEM;
    }
  }
  return 0;
}

static int
json_get_bool (json_object *o, const char *key, bool *dst)
{
  json_object *v;

  if (!json_object_object_get_ex (o, key, &v))
    return 0;
  if (!json_object_is_type (v, json_type_boolean))
    return -EBADMSG;
  *dst = json_object_get_boolean (v);
  return 0;
}

static int
json_get_u32 (json_object *o, const char *key, uint32_t *dst)
{
  json_object *v;
  int64_t i;

  if (!json_object_object_get_ex (o, key, &v))
    return 0;
  if (!json_object_is_type (v, json_type_int))
    return -EBADMSG;
  i = json_object_get_int64 (v);
  if (i < 0 || i > UINT32_MAX)
    return -EBADMSG;
  *dst = i;
  return 0;
}

static int
json_get_enum (json_object *o, const char *key, int (*parse) (const char *),
               int *dst)
{
  CLEANUP_FREE char *s = NULL;
  int r = json_get_string (o, key, false, &s);

  if (r < 0 || s == NULL)
    return r;
  r = parse (s);
  if (r < 0)
    return -EBADMSG;
  *dst = r;
  return 0;
}

static int
def_from_json (json_object *o, struct export_def *def)
{
  json_object *v, *tls;
  int mode = TLS_MODE_OFF, start = START_BOOT;
  int r;

  if (!json_object_is_type (o, json_type_object) ||
      !json_object_object_get_ex (o, "v", &v) ||
      json_object_get_int (v) != STORE_VERSION)
    return -EBADMSG;
  if ((r = json_get_string (o, "name", true, &def->name)) < 0 ||
      (r = json_get_string (o, "description", false, &def->description)) < 0 ||
      (r = json_get_string (o, "plugin", true, &def->plugin)) < 0 ||
      (r = json_get_strv (o, "filters", &def->filters)) < 0 ||
      (r = json_get_params (o, &def->params)) < 0 ||
      (r = json_get_bool (o, "readonly", &def->readonly)) < 0 ||
      (r = json_get_strv (o, "listeners", &def->listeners)) < 0 ||
      (r = json_get_u32 (o, "threads", &def->threads)) < 0 ||
      (r = json_get_string (o, "user", false, &def->user)) < 0 ||
      (r = json_get_string (o, "group", false, &def->group)) < 0 ||
      (r = json_get_enum (o, "start", start_policy_from_string, &start)) < 0 ||
      (r = json_get_u32 (o, "idle-timeout", &def->idle_timeout)) < 0)
    return r;
  def->start = start;
  if (json_object_object_get_ex (o, "tls", &tls)) {
    if ((r = json_get_enum (tls, "mode", tls_mode_from_string, &mode)) < 0 ||
        (r = json_get_string (tls, "certificates", false,
                              &def->tls_certificates)) < 0 ||
        (r = json_get_string (tls, "psk", false, &def->tls_psk)) < 0 ||
        (r = json_get_bool (tls, "verify-peer", &def->tls_verify_peer)) < 0 ||
        (r = json_get_strv (tls, "allow", &def->tls_allow)) < 0)
      return r;
    def->tls = mode;
  }
  def->persist = true;
  return 0;
}

/* Show a definition that could not be read as a failed export, named by
 * its file label (decoded when possible).
 */
static int
add_broken (struct context *ctx, const char *label, const char *file,
            const char *why)
{
  CLEANUP_FREE char *path = NULL, *msg = NULL;
  struct export_def def;
  struct export *e;
  int r;

  export_def_init (&def);
  if (asprintf (&path, "%s/%s", NBDKITD_EXPORT_PREFIX, label) == -1)
    return -ENOMEM;
  if (sd_bus_path_decode (path, NBDKITD_EXPORT_PREFIX, &def.name) <= 0)
    def.name = strdup (label);
  def.plugin = strdup ("");
  if (!def.name || !def.plugin) {
    export_def_done (&def);
    return -ENOMEM;
  }
  if (export_registry_find (ctx, def.name)) {
    export_def_done (&def);
    return 0;
  }
  def.start = START_MANUAL;
  r = export_registry_add (ctx, &def, &e);
  if (r < 0) {
    export_def_done (&def);
    return r;
  }
  e->broken_file = strdup (file);
  e->state = EXPORT_FAILED;
  if (asprintf (&msg, "The definition %s cannot be read: %s", file, why) >= 0)
    e->last_error = msg, msg = NULL;
  return 0;
}

static int
load_one (struct context *ctx, int dirfd, const char *file)
{
  CLEANUP_FREE char *label = strndup (file, strlen (file) - 5);
  CLEANUP_FREE char *broken = NULL;
  json_object *o;
  struct export_def def;
  struct export *e;
  int r;

  if (label == NULL)
    return -ENOMEM;
  export_def_init (&def);
  o = json_object_from_fd (openat (dirfd, file, O_RDONLY | O_CLOEXEC));
  r = o ? def_from_json (o, &def) : -EBADMSG;
  json_object_put (o);
  if (r == 0 && (export_registry_find (ctx, def.name) ||
                 export_name_validate (def.name, NULL) < 0))
    r = -EBADMSG;
  if (r == -ENOMEM) {
    export_def_done (&def);
    return r;
  }
  if (r < 0) {
    export_def_done (&def);
    if (asprintf (&broken, "%s.broken", file) == -1)
      return -ENOMEM;
    log_error (ctx, "Failed to read export definition %s/%s, moving it to %s",
               ctx->config.state_dir, file, broken);
    if (renameat (dirfd, file, dirfd, broken) == -1)
      log_error (ctx, "Failed to rename %s: %m, ignoring", file);
    return add_broken (ctx, label, broken, "not a valid definition");
  }
  r = export_registry_add (ctx, &def, &e);
  if (r < 0) {
    export_def_done (&def);
    return r;
  }
  return 0;
}

static bool
has_suffix (const char *s, const char *suffix)
{
  size_t n = strlen (s), m = strlen (suffix);
  return n > m && strcmp (s + n - m, suffix) == 0;
}

/* Read every definition; broken files seen before are listed as failed. */
int
store_load_all (struct context *ctx)
{
  DIR *dir;
  struct dirent *d;
  string_vector broken = empty_vector;
  int r = 0;

  dir = opendir (ctx->config.state_dir);
  if (dir == NULL)
    return -errno;
  while ((d = readdir (dir)) != NULL && r >= 0) {
    if (d->d_name[0] == '.') {
      /* A temporary file left by a crash in write_atomically. */
      if (strstr (d->d_name, ".json.") &&
          unlinkat (dirfd (dir), d->d_name, 0) == -1)
        log_warning (ctx, "Failed to remove %s: %m, ignoring", d->d_name);
      continue;
    }
    if (has_suffix (d->d_name, ".json"))
      r = load_one (ctx, dirfd (dir), d->d_name);
    else if (has_suffix (d->d_name, ".json.broken")) {
      char *s = strdup (d->d_name);
      if (s == NULL || string_vector_append (&broken, s) == -1) {
        free (s);
        r = -ENOMEM;
      }
    }
  }
  for (size_t i = 0; r >= 0 && i < broken.len; i++) {
    CLEANUP_FREE char *label = strndup (broken.ptr[i],
                                        strlen (broken.ptr[i]) - 12);
    r = label ? add_broken (ctx, label, broken.ptr[i],
                            "not a valid definition") : -ENOMEM;
  }
  string_vector_free_all (&broken);
  closedir (dir);
  return r;
}
