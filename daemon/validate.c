/* SPDX-License-Identifier: BSD-3-Clause
 * Checking an export definition by a dry run of nbdkit (the plugin and
 * filters are loaded and configured, get_ready runs, then nbdkit exits),
 * so a typo is a named error with nbdkit's own message; and the catalogue
 * of installed plugins and filters for ListPlugins and ListFilters.
 */

#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nbdkitd.h"
#include "cleanup.h"

struct dry_run {
  struct context *ctx;
  struct spawn *spawn;
  char *last_error;
  validate_done_fn done;
  void *opaque;
};

static void
dry_run_line (void *opaque, const char *line)
{
  struct dry_run *d = opaque;
  const char *p = line;

  log_debug (d->ctx, "dry run: %s", line);
  if (strstr (line, "error") == NULL && d->last_error)
    return;
  /* "nbdkit: memory: error: ..." reads better without the program name. */
  if (strncmp (p, "nbdkit: ", 8) == 0)
    p += 8;
  free (d->last_error);
  d->last_error = strdup (p);
}

/* Which named error nbdkit's message means. */
static const char *
dry_run_error_name (const char *msg)
{
  if (strstr (msg, "cannot open plugin") || strstr (msg, "not an nbdkit plugin"))
    return NBDKITD_ERROR_NO_SUCH_PLUGIN;
  if (strstr (msg, "cannot open filter") || strstr (msg, "not an nbdkit filter"))
    return NBDKITD_ERROR_NO_SUCH_FILTER;
  if (strstr (msg, "unknown parameter") || strstr (msg, "usage") ||
      strstr (msg, "--user") || strstr (msg, "--group") ||
      strstr (msg, "unknown user") || strstr (msg, "unknown group"))
    return NBDKITD_ERROR_INVALID_PARAMETER;
  return NBDKITD_ERROR_PLUGIN_FAILED;
}

static void
dry_run_exit (void *opaque, const siginfo_t *si)
{
  struct dry_run *d = opaque;
  bool ok = si->si_code == CLD_EXITED && si->si_status == 0;
  const char *msg = d->last_error ? d->last_error : "nbdkit failed";

  d->ctx->pending_calls--;
  if (ok)
    d->done (d->opaque, 0, NULL, NULL);
  else
    d->done (d->opaque, -EINVAL, dry_run_error_name (msg), msg);
  spawn_free (d->spawn);
  free (d->last_error);
  free (d);
}

/* Start the dry run; DONE is called from the event loop with r == 0 or a
 * named error and nbdkit's message.
 */
int
validate_export (struct context *ctx, const struct export_def *def,
                 validate_done_fn done, void *opaque)
{
  static const char *const mode_args[] = { "-U", "-", "--run", "true", NULL };
  int_vector pipes = empty_vector;
  string_vector argv = empty_vector;
  struct spawn_fd fds[32];
  struct dry_run *d;
  int r;

  d = calloc (1, sizeof *d);
  if (d == NULL)
    return -ENOMEM;
  r = nbdkit_argv_build (ctx, def, mode_args, 3, &pipes, &argv);
  if (r < 0) {
    free (d);
    return r;
  }
  if (pipes.len > sizeof fds / sizeof fds[0]) {
    nbdkit_argv_free (&pipes, &argv);
    free (d);
    return -E2BIG;
  }
  for (size_t i = 0; i < pipes.len; i++)
    fds[i] = (struct spawn_fd) { .fd = pipes.ptr[i], .name = NULL };
  d->ctx = ctx;
  d->done = done;
  d->opaque = opaque;
  r = spawn_process (ctx, argv.ptr, fds, pipes.len, dry_run_line,
                     dry_run_exit, d, &d->spawn);
  nbdkit_argv_free (&pipes, &argv);
  if (r < 0) {
    free (d);
    return r;
  }
  ctx->pending_calls++;
  return 0;
}

/* The catalogue. */

static void
modules_free (module_vector *v)
{
  for (size_t i = 0; i < v->len; i++) {
    free (v->ptr[i].name);
    free (v->ptr[i].version);
    free (v->ptr[i].description);
  }
  module_vector_reset (v);
}

void
catalogue_free (struct context *ctx)
{
  modules_free (&ctx->plugins);
  modules_free (&ctx->filters);
  ctx->catalogue_valid = false;
}

/* Module names in DIR (files nbdkit-NAME-TYPE.so, or with BUILD_TREE
 * directories NAME holding them).
 */
static int
scan_dir (const char *dir, const char *type, bool build_tree,
          string_vector *names)
{
  DIR *d = opendir (dir);
  struct dirent *ent;
  char suffix[32];

  if (d == NULL)
    return errno == ENOENT ? 0 : -errno;
  snprintf (suffix, sizeof suffix, "-%s.so", type);
  while ((ent = readdir (d)) != NULL) {
    CLEANUP_FREE char *so = NULL;
    char *name = NULL;
    size_t n = strlen (ent->d_name);

    if (build_tree) {
      if (ent->d_name[0] == '.' ||
          asprintf (&so, "%s/%s/nbdkit-%s%s", dir, ent->d_name, ent->d_name,
                    suffix) == -1 || access (so, R_OK) != 0)
        continue;
      name = strdup (ent->d_name);
    }
    else if (strncmp (ent->d_name, "nbdkit-", 7) == 0 &&
             n > 7 + strlen (suffix) &&
             strcmp (ent->d_name + n - strlen (suffix), suffix) == 0)
      name = strndup (ent->d_name + 7, n - 7 - strlen (suffix));
    else
      continue;
    if (name == NULL || string_vector_append (names, name) == -1) {
      free (name);
      closedir (d);
      return -ENOMEM;
    }
  }
  closedir (d);
  return 0;
}

static int
compare_strings (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* From nbdkit --help output: the line after "TYPE: NAME (...)" and
 * "(PATH)" is the one-line description; from --version, "NAME VERSION".
 */
static int
module_describe (struct context *ctx, const char *type, const char *name,
                 struct module_info *info)
{
  CLEANUP_FREE char *help = NULL, *ver = NULL, *filter_opt = NULL;
  char *argv[5];
  char head[300];
  const char *p;
  int status, r;

  argv[0] = ctx->config.nbdkit;
  if (strcmp (type, "filter") == 0) {
    if (asprintf (&filter_opt, "--filter=%s", name) == -1)
      return -ENOMEM;
    argv[1] = filter_opt;
    argv[2] = (char *) "null";
  }
  else {
    argv[1] = (char *) name;
    argv[2] = NULL;
  }
  argv[3] = NULL;
  argv[strcmp (type, "filter") == 0 ? 3 : 2] = (char *) "--help";
  argv[4] = NULL;
  r = spawn_capture (ctx, argv, &help, &status);
  if (r < 0)
    return r;
  argv[strcmp (type, "filter") == 0 ? 3 : 2] = (char *) "--version";
  r = spawn_capture (ctx, argv, &ver, &status);
  if (r < 0)
    return r;
  info->name = strdup (name);
  snprintf (head, sizeof head, "\n%s %s", name, "");
  p = strstr (ver, head);
  info->version = p ? strndup (p + strlen (head), strcspn (p + strlen (head), "\n"))
    : strdup ("");
  snprintf (head, sizeof head, "%s: %s", type, name);
  p = strstr (help, head);
  if (p && (p = strchr (p, '\n')) && (p = strchr (p + 1, '\n')))
    info->description = strndup (p + 1, strcspn (p + 1, "\n"));
  else
    info->description = strdup ("");
  if (!info->name || !info->version || !info->description)
    return -ENOMEM;
  return 0;
}

static int
catalogue_dirs (struct context *ctx, char **plugindir, char **filterdir,
                bool *build_tree)
{
  CLEANUP_FREE char *out = NULL;
  char *argv[] = { ctx->config.nbdkit, (char *) "--dump-config", NULL };
  const char *p;
  int status, r;

  *build_tree = strcmp (ctx->config.nbdkit, BUILDDIR "/server/nbdkit") == 0;
  if (*build_tree) {
    *plugindir = strdup (BUILDDIR "/plugins");
    *filterdir = strdup (BUILDDIR "/filters");
    return *plugindir && *filterdir ? 0 : -ENOMEM;
  }
  r = spawn_capture (ctx, argv, &out, &status);
  if (r < 0)
    return r;
  p = strstr (out, "plugindir=");
  *plugindir = p ? strndup (p + 10, strcspn (p + 10, "\n")) : strdup (PLUGINDIR);
  p = strstr (out, "filterdir=");
  *filterdir = p ? strndup (p + 10, strcspn (p + 10, "\n")) : strdup (FILTERDIR);
  return *plugindir && *filterdir ? 0 : -ENOMEM;
}

static int
catalogue_type (struct context *ctx, const char *dir, const char *type,
                bool build_tree, module_vector *v)
{
  string_vector names = empty_vector;
  int r;

  r = scan_dir (dir, type, build_tree, &names);
  if (r == 0 && names.len)
    qsort (names.ptr, names.len, sizeof names.ptr[0], compare_strings);
  for (size_t i = 0; r == 0 && i < names.len; i++) {
    struct module_info info = { 0 };
    r = module_describe (ctx, type, names.ptr[i], &info);
    if (r == 0 && module_vector_append (v, info) == 0)
      continue;
    free (info.name);
    free (info.version);
    free (info.description);
    if (r == 0)
      r = -ENOMEM;
  }
  string_vector_free_all (&names);
  return r;
}

/* Fill the catalogue (cached until Reload). */
int
catalogue_load (struct context *ctx)
{
  CLEANUP_FREE char *plugindir = NULL, *filterdir = NULL;
  bool build_tree;
  int r;

  if (ctx->catalogue_valid)
    return 0;
  catalogue_free (ctx);
  r = catalogue_dirs (ctx, &plugindir, &filterdir, &build_tree);
  if (r == 0)
    r = catalogue_type (ctx, plugindir, "plugin", build_tree, &ctx->plugins);
  if (r == 0)
    r = catalogue_type (ctx, filterdir, "filter", build_tree, &ctx->filters);
  if (r < 0) {
    catalogue_free (ctx);
    return r;
  }
  ctx->catalogue_valid = true;
  return 0;
}
