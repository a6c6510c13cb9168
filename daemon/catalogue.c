/* SPDX-License-Identifier: BSD-3-Clause
 * ListPlugins and ListFilters: the name, version and description of each
 * installed plugin and filter, found by scanning nbdkit's module
 * directories and asking nbdkit (--help, --version) about each module.
 * The probe runs as child processes watched by the event loop, a few at
 * a time; callers arriving meanwhile wait for the same probe, and the
 * result is kept until Reload.
 */

#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbdkitd.h"
#include "cleanup.h"

/* Child processes at once: enough to hide their start-up latency. */
#define PROBE_PARALLEL 8

struct waiter {
  sd_bus_message *m;
  bool filters;
};
DEFINE_VECTOR_TYPE (waiter_vector, struct waiter)
struct probe_job;
DEFINE_VECTOR_TYPE (job_vector, struct probe_job *)

/* One process: nbdkit --dump-config, or a module's --help or --version. */
struct probe_job {
  struct catalogue_probe *probe;
  struct spawn *spawn;
  size_t module;                /* index into names */
  bool version;                 /* --version, else --help */
  string_vector lines;
};

struct catalogue_probe {
  struct context *ctx;
  waiter_vector waiters;
  job_vector jobs;              /* running */
  bool started;
  bool build_tree;
  char *plugindir, *filterdir;
  string_vector names;          /* plugins first, then filters */
  size_t nplugins;
  string_vector help, version;  /* the output per module */
  size_t next_job;              /* jobs are 2 per module */
  unsigned running;
  bool stale;                   /* Reload came meanwhile: do not cache */
  int error;
};

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

static int
reply_modules (sd_bus_message *m, const module_vector *v)
{
  sd_bus_message *reply = NULL;
  int r;

  r = sd_bus_message_new_method_return (m, &reply);
  if (r >= 0)
    r = sd_bus_message_open_container (reply, 'a', "(sss)");
  for (size_t i = 0; r >= 0 && i < v->len; i++)
    r = sd_bus_message_append (reply, "(sss)", v->ptr[i].name,
                               v->ptr[i].version, v->ptr[i].description);
  if (r >= 0)
    r = sd_bus_message_close_container (reply);
  if (r >= 0)
    r = sd_bus_send (NULL, reply, NULL);
  sd_bus_message_unref (reply);
  return r;
}

static void
job_free (struct probe_job *j)
{
  job_vector *jobs = &j->probe->jobs;

  for (size_t i = 0; i < jobs->len; i++)
    if (jobs->ptr[i] == j) {
      job_vector_remove (jobs, i);
      break;
    }
  spawn_free (j->spawn);
  string_vector_free_all (&j->lines);
  free (j);
}

static void
probe_free (struct catalogue_probe *p)
{
  while (p->jobs.len)
    job_free (p->jobs.ptr[0]);
  job_vector_reset (&p->jobs);
  for (size_t i = 0; i < p->waiters.len; i++)
    sd_bus_message_unref (p->waiters.ptr[i].m);
  waiter_vector_reset (&p->waiters);
  free (p->plugindir);
  free (p->filterdir);
  string_vector_free_all (&p->names);
  string_vector_free_all (&p->help);
  string_vector_free_all (&p->version);
  p->ctx->pending_calls--;
  context_check_idle (p->ctx);
  free (p);
}

/* Module names in DIR (files nbdkit-NAME-TYPE.so, or with BUILD_TREE
 * directories NAME holding them), sorted.
 */
static int
scan_dir (const char *dir, const char *type, bool build_tree,
          string_vector *names)
{
  DIR *d = opendir (dir);
  struct dirent *ent;
  char suffix[32];
  size_t first = names->len;

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
  for (size_t i = first; i < names->len; i++)
    for (size_t j = i + 1; j < names->len; j++)
      if (strcmp (names->ptr[i], names->ptr[j]) > 0) {
        char *t = names->ptr[i];
        names->ptr[i] = names->ptr[j];
        names->ptr[j] = t;
      }
  return 0;
}

/* From --version, "NAME VERSION"; from --help, the line after
 * "TYPE: NAME (...)" and "(PATH)" is the one-line description.
 */
static int
module_parse (const char *name, const char *type, const char *help,
              const char *ver, struct module_info *info)
{
  char head[300];
  const char *p;

  info->name = strdup (name);
  snprintf (head, sizeof head, "\n%s ", name);
  p = strstr (ver, head);
  info->version = p ? strndup (p + strlen (head),
                               strcspn (p + strlen (head), "\n"))
    : strdup ("");
  snprintf (head, sizeof head, "%s: %s", type, name);
  p = strstr (help, head);
  if (p && (p = strchr (p, '\n')) && (p = strchr (p + 1, '\n')))
    info->description = strndup (p + 1, strcspn (p + 1, "\n"));
  else
    info->description = strdup ("");
  return info->name && info->version && info->description ? 0 : -ENOMEM;
}

/* Every process has finished: build the lists, reply to every caller,
 * cache unless a Reload came meanwhile.
 */
static void
probe_finish (struct catalogue_probe *p)
{
  struct context *ctx = p->ctx;
  module_vector plugins = empty_vector, filters = empty_vector;
  int r = p->error;

  for (size_t i = 0; r == 0 && i < p->names.len; i++) {
    bool filter = i >= p->nplugins;
    struct module_info info = { 0 };
    r = module_parse (p->names.ptr[i], filter ? "filter" : "plugin",
                      p->help.ptr[i] ? p->help.ptr[i] : "",
                      p->version.ptr[i] ? p->version.ptr[i] : "", &info);
    if (r == 0 &&
        module_vector_append (filter ? &filters : &plugins, info) == -1)
      r = -ENOMEM;
    if (r < 0) {
      free (info.name);
      free (info.version);
      free (info.description);
    }
  }
  for (size_t i = 0; i < p->waiters.len; i++) {
    struct waiter *w = &p->waiters.ptr[i];
    if (r < 0)
      sd_bus_reply_method_errnof (w->m, r, "Cannot list %s: %m",
                                  w->filters ? "filters" : "plugins");
    else
      reply_modules (w->m, w->filters ? &filters : &plugins);
  }
  ctx->catalogue_probe = NULL;
  if (r == 0 && !p->stale) {
    ctx->plugins = plugins;
    ctx->filters = filters;
    ctx->catalogue_valid = true;
  }
  else {
    modules_free (&plugins);
    modules_free (&filters);
  }
  probe_free (p);
}

static void probe_next (struct catalogue_probe *p);

static void
job_line (void *opaque, const char *line)
{
  struct probe_job *j = opaque;
  char *copy = strdup (line);

  if (copy == NULL || string_vector_append (&j->lines, copy) == -1) {
    free (copy);
    j->probe->error = -ENOMEM;
  }
}

/* All the lines of a job as one text, each line preceded by "\n". */
static char *
job_text (const struct probe_job *j)
{
  size_t len = 1;
  char *s, *q;

  for (size_t i = 0; i < j->lines.len; i++)
    len += strlen (j->lines.ptr[i]) + 1;
  s = q = malloc (len);
  for (size_t i = 0; s && i < j->lines.len; i++)
    q += sprintf (q, "\n%s", j->lines.ptr[i]);
  if (s)
    *q = '\0';
  return s;
}

static void
job_exit (void *opaque, const siginfo_t *si)
{
  struct probe_job *j = opaque;
  struct catalogue_probe *p = j->probe;
  char *text = job_text (j);

  if (text == NULL)
    p->error = -ENOMEM;
  else if (j->version)
    p->version.ptr[j->module] = text;
  else
    p->help.ptr[j->module] = text;
  job_free (j);
  p->running--;
  probe_next (p);
}

/* nbdkit [--filter=NAME null | NAME] --help|--version */
static int
job_start (struct catalogue_probe *p, size_t module, bool version)
{
  const char *name = p->names.ptr[module];
  CLEANUP_FREE char *filter_opt = NULL;
  char *argv[5];
  size_t n = 0;
  struct probe_job *j;
  int r;

  argv[n++] = p->ctx->config.nbdkit;
  if (module >= p->nplugins) {
    if (asprintf (&filter_opt, "--filter=%s", name) == -1)
      return -ENOMEM;
    argv[n++] = filter_opt;
    argv[n++] = (char *) "null";
  }
  else
    argv[n++] = (char *) name;
  argv[n++] = (char *) (version ? "--version" : "--help");
  argv[n] = NULL;
  j = calloc (1, sizeof *j);
  if (j == NULL)
    return -ENOMEM;
  j->probe = p;
  j->module = module;
  j->version = version;
  if (job_vector_append (&p->jobs, j) == -1) {
    free (j);
    return -ENOMEM;
  }
  r = spawn_process (p->ctx, argv, NULL, 0, job_line, job_exit, j, &j->spawn);
  if (r < 0) {
    job_free (j);
    return r;
  }
  p->running++;
  return 0;
}

/* Start jobs up to PROBE_PARALLEL; finish when none is left. */
static void
probe_next (struct catalogue_probe *p)
{
  while (p->error == 0 && p->running < PROBE_PARALLEL &&
         p->next_job < 2 * p->names.len) {
    size_t job = p->next_job++;
    int r = job_start (p, job / 2, job % 2);
    if (r < 0)
      p->error = r;
  }
  if (p->running == 0 && (p->error || p->next_job == 2 * p->names.len))
    probe_finish (p);
}

/* The module directories are known: list the modules, run the jobs. */
static void
probe_scan (struct catalogue_probe *p)
{
  int r = scan_dir (p->plugindir, "plugin", p->build_tree, &p->names);

  p->nplugins = p->names.len;
  if (r == 0)
    r = scan_dir (p->filterdir, "filter", p->build_tree, &p->names);
  for (size_t i = 0; r == 0 && i < p->names.len; i++)
    if (string_vector_append (&p->help, NULL) == -1 ||
        string_vector_append (&p->version, NULL) == -1)
      r = -ENOMEM;
  if (r < 0)
    p->error = r;
  probe_next (p);
}

static char *
config_value (const string_vector *lines, const char *key, const char *dflt)
{
  size_t n = strlen (key);

  for (size_t i = 0; i < lines->len; i++)
    if (strncmp (lines->ptr[i], key, n) == 0 && lines->ptr[i][n] == '=')
      return strdup (lines->ptr[i] + n + 1);
  return strdup (dflt);
}

static void
dump_config_exit (void *opaque, const siginfo_t *si)
{
  struct probe_job *j = opaque;
  struct catalogue_probe *p = j->probe;

  p->plugindir = config_value (&j->lines, "plugindir", PLUGINDIR);
  p->filterdir = config_value (&j->lines, "filterdir", FILTERDIR);
  if (!p->plugindir || !p->filterdir)
    p->error = -ENOMEM;
  job_free (j);
  probe_scan (p);
}

/* Where the modules are: the build tree's directories when nbdkitd runs
 * its own nbdkit from there, else what nbdkit --dump-config says.
 */
static int
probe_start (struct catalogue_probe *p)
{
  char *argv[] = { p->ctx->config.nbdkit, (char *) "--dump-config", NULL };
  struct probe_job *j;
  int r;

  p->build_tree = strcmp (p->ctx->config.nbdkit,
                          BUILDDIR "/server/nbdkit") == 0;
  if (p->build_tree) {
    p->plugindir = strdup (BUILDDIR "/plugins");
    p->filterdir = strdup (BUILDDIR "/filters");
    if (!p->plugindir || !p->filterdir)
      return -ENOMEM;
    probe_scan (p);
    return 0;
  }
  j = calloc (1, sizeof *j);
  if (j == NULL)
    return -ENOMEM;
  j->probe = p;
  if (job_vector_append (&p->jobs, j) == -1) {
    free (j);
    return -ENOMEM;
  }
  r = spawn_process (p->ctx, argv, NULL, 0, job_line, dump_config_exit, j,
                     &j->spawn);
  if (r < 0)
    job_free (j);
  return r;
}

/* Reply to ListPlugins (FILTERS false) or ListFilters: now from the
 * cache, or when the probe has finished.  Returns 1 or a negative errno.
 */
int
catalogue_reply (struct context *ctx, sd_bus_message *m, bool filters)
{
  struct catalogue_probe *p = ctx->catalogue_probe;
  struct waiter w = { .m = m, .filters = filters };
  int r;

  if (ctx->catalogue_valid) {
    r = reply_modules (m, filters ? &ctx->filters : &ctx->plugins);
    return r < 0 ? r : 1;
  }
  if (p == NULL) {
    p = calloc (1, sizeof *p);
    if (p == NULL)
      return -ENOMEM;
    p->ctx = ctx;
    ctx->pending_calls++;
    ctx->catalogue_probe = p;
  }
  if (waiter_vector_append (&p->waiters, w) == -1)
    return -ENOMEM;
  sd_bus_message_ref (m);
  if (!p->started) {
    p->started = true;
    r = probe_start (p);
    if (r < 0) {
      /* Nothing started: the callers get the error. */
      for (size_t i = 0; i < p->waiters.len; i++)
        if (p->waiters.ptr[i].m != m)
          sd_bus_reply_method_errno (p->waiters.ptr[i].m, r, NULL);
      ctx->catalogue_probe = NULL;
      probe_free (p);
      return r;
    }
  }
  return 1;
}

/* At exit: stop a probe (its callers get no reply). */
void
catalogue_done (struct context *ctx)
{
  catalogue_free (ctx);
  if (ctx->catalogue_probe)
    probe_free (ctx->catalogue_probe);
  ctx->catalogue_probe = NULL;
}

/* Reload: forget the cache; a probe running now is not cached. */
void
catalogue_free (struct context *ctx)
{
  modules_free (&ctx->plugins);
  modules_free (&ctx->filters);
  ctx->catalogue_valid = false;
  if (ctx->catalogue_probe)
    ctx->catalogue_probe->stale = true;
}
