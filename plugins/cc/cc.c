/* SPDX-License-Identifier: BSD-3-Clause
 * The cc plugin: compiles the C source given as its first parameter
 * (or read from standard input) into a temporary plugin, loads it, and
 * from then on is that plugin: its parameters, its thread model and all
 * its callbacks (forward.c) pass straight through.
 */

#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cc.h"
#include "cleanup.h"
#include "utils.h"

struct nbdkit_plugin sub;
bool sub_loaded;

/* script= as given (for messages), and the file to compile. */
static char *script_name;
static char *source;

/* CC=, CFLAGS=, EXTRA_CFLAGS=, or NULL for the built-in ones. */
static char *cc_program;
static char *cflags;
static char *extra_cflags;

/* The compiled plugin, open while nbdkit runs. */
static void *dl;

/* The compiler nbdkit was built with (from meson) and our flags. */
#define DEFAULT_CC CC_PROGRAM
#define DEFAULT_CFLAGS "-g -O2 -fPIC -shared"

static void
cc_unload (void)
{
  if (sub_loaded && sub.unload)
    sub.unload ();
  if (dl)
    dlclose (dl);
  source_free ();
  free (script_name);
  free (source);
  free (cc_program);
  free (cflags);
  free (extra_cflags);
}

/* -I flags for <nbdkit-plugin.h>: the source tree's (and the build
 * tree's generated nbdkit-version.h) when this is the nbdkit of that
 * build tree, as the server chooses its plugins, else the installed.
 * A script compiled from a copy also gets -iquote for its directory.
 */
static char *
include_flags (void)
{
  char exe[PATH_MAX];
  ssize_t n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
  const char *dir = source_script_dir ();
  CLEANUP_FREE char *src = NULL, *build = NULL, *quote = NULL;
  char *flags;
  int r;

  if (n > 0)
    exe[n] = '\0';
  if (n > 0 && strcmp (exe, BUILDDIR "/server/nbdkit") == 0) {
    src = shell_quote (SRCDIR "/include");
    build = shell_quote (BUILDDIR);
  }
  else
    src = shell_quote (INCLUDEDIR);
  if (dir)
    quote = shell_quote (dir);
  if (src == NULL || (dir && quote == NULL))
    return NULL;
  r = asprintf (&flags, "-I%s%s%s%s%s", src,
                build ? " -I" : "", build ? build : "",
                quote ? " -iquote " : "", quote ? quote : "");
  return r == -1 ? NULL : flags;
}

/* Run CC CFLAGS EXTRA_CFLAGS -I... SOURCE -o OUTPUT through the shell
 * (the flags are split into words as the user would expect).  The
 * compiler's messages go to stderr.
 */
static int
compile (const char *output)
{
  CLEANUP_FREE char *includes = include_flags ();
  CLEANUP_FREE char *q_source = shell_quote (source);
  CLEANUP_FREE char *q_output = shell_quote (output);
  CLEANUP_FREE char *cmd = NULL;
  const char *prog = cc_program ? cc_program : DEFAULT_CC;
  int status;

  if (includes == NULL || q_source == NULL || q_output == NULL ||
      asprintf (&cmd, "%s %s %s %s %s -o %s 1>&2", prog,
                cflags ? cflags : DEFAULT_CFLAGS,
                extra_cflags ? extra_cflags : "",
                includes, q_source, q_output) == -1) {
    nbdkit_error ("compile: %m");
    return -1;
  }
  nbdkit_debug ("compiling: %s", cmd);
  fflush (stdout);
  status = system (cmd);
  if (status == -1) {
    nbdkit_error ("cannot run the compiler: %m");
    return -1;
  }
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  if (WIFEXITED (status))
    nbdkit_error ("%s: compilation failed (%s exited with status %d)",
                  script_name, prog, WEXITSTATUS (status));
  else
    nbdkit_error ("%s: compilation failed (%s was killed by signal %d)",
                  script_name, prog, WTERMSIG (status));
  return -1;
}

/* The checks nbdkit makes of any plugin it loads. */
static int
check_registration (const struct nbdkit_plugin *p)
{
  const size_t min_size = offsetof (struct nbdkit_plugin, pread) +
    sizeof p->pread;

  if (p == NULL)
    nbdkit_error ("%s: plugin_init returned NULL", script_name);
  else if (p->_api_version != NBDKIT_API_VERSION)
    nbdkit_error ("%s: the plugin uses NBDKIT_API_VERSION %d, but plugins "
                  "compiled by the cc plugin must use %d", script_name,
                  p->_api_version, NBDKIT_API_VERSION);
  else if (p->_struct_size < min_size || p->_struct_size > sizeof sub)
    nbdkit_error ("%s: the plugin struct has an unexpected size (%zu bytes)",
                  script_name, (size_t) p->_struct_size);
  else if (p->_thread_model < NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS ||
           p->_thread_model > NBDKIT_THREAD_MODEL_PARALLEL)
    nbdkit_error ("%s: the plugin declares an unknown thread model (%d)",
                  script_name, p->_thread_model);
  else if (p->name == NULL || p->name[0] == '\0')
    nbdkit_error ("%s: the plugin has no name", script_name);
  else if (p->get_size == NULL || p->pread == NULL)
    nbdkit_error ("%s: the plugin must have .get_size and .pread callbacks",
                  script_name);
  else
    return 0;
  return -1;
}

/* Compile the source, load the result and call its load callback.  The
 * temporary files are removed at once: the mapping stays valid.
 */
static int
compile_and_load (void)
{
  CLEANUP_FREE char *output = NULL;
  const char *dir = source_tmpdir ();
  struct nbdkit_plugin *(*init) (void);
  const struct nbdkit_plugin *p;
  int r = -1;

  if (dir == NULL)
    return -1;
  if (asprintf (&output, "%s/plugin.so", dir) == -1) {
    nbdkit_error ("asprintf: %m");
    goto out;
  }
  if (compile (output) == -1)
    goto out;
  dl = dlopen (output, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    nbdkit_error ("%s: cannot load the compiled plugin: %s", script_name,
                  dlerror ());
    goto out;
  }
  dlerror ();
  *(void **) &init = dlsym (dl, "plugin_init");
  if (init == NULL) {
    nbdkit_error ("%s: not an nbdkit plugin (no NBDKIT_REGISTER_PLUGIN)",
                  script_name);
    goto out;
  }
  p = init ();
  if (check_registration (p) == -1)
    goto out;
  memcpy (&sub, p, p->_struct_size);
  nbdkit_debug ("loaded plugin %s from %s", sub.name, script_name);
  if (sub.load)
    sub.load ();
  sub_loaded = true;
  r = 0;
 out:
  source_remove_tmpdir ();
  return r;
}

/* CC=, CFLAGS=, EXTRA_CFLAGS= go to the cc plugin itself. */
static char **
compiler_setting (const char *key)
{
  if (strcmp (key, "CC") == 0)
    return &cc_program;
  if (strcmp (key, "CFLAGS") == 0)
    return &cflags;
  if (strcmp (key, "EXTRA_CFLAGS") == 0)
    return &extra_cflags;
  return NULL;
}

static int
cc_config (const char *key, const char *value)
{
  char **setting = compiler_setting (key);

  if (script_name == NULL) {
    if (strcmp (key, "script") != 0) {
      nbdkit_error ("the first parameter must be the C file or \"-\" "
                    "(got %s=%s)", key, value);
      return -1;
    }
    script_name = strdup (value);
    if (script_name == NULL) {
      nbdkit_error ("strdup: %m");
      return -1;
    }
    return source_prepare (value, &source);
  }
  if (setting && sub_loaded) {
    nbdkit_error ("%s=%s: compiler settings must come before the "
                  "plugin's own parameters", key, value);
    return -1;
  }
  if (setting) {
    free (*setting);
    *setting = strdup (value);
    if (*setting == NULL) {
      nbdkit_error ("strdup: %m");
      return -1;
    }
    return 0;
  }

  /* Anything else belongs to the compiled plugin. */
  if (!sub_loaded && compile_and_load () == -1)
    return -1;
  /* A further bare parameter is for the compiled plugin's magic key. */
  if (strcmp (key, "script") == 0 && sub.magic_config_key)
    key = sub.magic_config_key;
  if (sub.config == NULL) {
    nbdkit_error ("%s: the plugin takes no parameters (got %s=%s)",
                  script_name, key, value);
    return -1;
  }
  return sub.config (key, value);
}

static int
cc_config_complete (void)
{
  if (script_name == NULL) {
    nbdkit_error ("no C program name (or \"-\") given: "
                  "use nbdkit cc FILE.c or nbdkit cc - < FILE.c");
    return -1;
  }
  if (!sub_loaded && compile_and_load () == -1)
    return -1;
  return sub.config_complete ? sub.config_complete () : 0;
}

#define cc_config_help \
  "[script=]<FILENAME>   (required) The C source file, or - for stdin.\n" \
  "CC=<CC>               C compiler.\n" \
  "CFLAGS=<CFLAGS>       C compiler flags (replacing the built-in ones).\n" \
  "EXTRA_CFLAGS=<CFLAGS> Extra C compiler flags.\n" \
  "[other parameters are passed to the compiled plugin]"

static void
cc_dump_plugin (void)
{
  printf ("CC=%s\n", DEFAULT_CC);
  printf ("CFLAGS=%s\n", DEFAULT_CFLAGS);
  if (sub_loaded && sub.dump_plugin)
    sub.dump_plugin ();
}

/* The cc plugin itself allows anything; the compiled plugin decides. */
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int
cc_thread_model (void)
{
  int model, r;

  if (!sub_loaded)              /* only seen by --dump-plugin */
    return NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS;
  model = sub._thread_model;
  if (sub.thread_model) {
    r = sub.thread_model ();
    if (r == -1)
      return -1;
    if (r < model)
      model = r;
  }
  return model;
}

static struct nbdkit_plugin plugin = {
  .name               = "cc",
  .longname           = "nbdkit C compiler plugin",
  .version            = PACKAGE_VERSION,
  .description        = "Compiles and runs a plugin written in C",
  .unload             = cc_unload,
  .config             = cc_config,
  .config_complete    = cc_config_complete,
  .config_help        = cc_config_help,
  .magic_config_key   = "script",
  .dump_plugin        = cc_dump_plugin,
  .thread_model       = cc_thread_model,
  .get_ready          = forward_get_ready,
  .after_fork         = forward_after_fork,
  .cleanup            = forward_cleanup,
  .preconnect         = forward_preconnect,
  .list_exports       = forward_list_exports,
  .default_export     = forward_default_export,
  .open               = forward_open,
  .close              = forward_close,
  .export_description = forward_export_description,
  .get_size           = forward_get_size,
  .block_size         = forward_block_size,
  .can_write          = forward_can_write,
  .can_flush          = forward_can_flush,
  .is_rotational      = forward_is_rotational,
  .can_trim           = forward_can_trim,
  .can_zero           = forward_can_zero,
  .can_fast_zero      = forward_can_fast_zero,
  .can_fua            = forward_can_fua,
  .can_multi_conn     = forward_can_multi_conn,
  .can_extents        = forward_can_extents,
  .can_cache          = forward_can_cache,
  .pread              = forward_pread,
  .pwrite             = forward_pwrite,
  .flush              = forward_flush,
  .trim               = forward_trim,
  .zero               = forward_zero,
  .extents            = forward_extents,
  .cache              = forward_cache,
};

NBDKIT_REGISTER_PLUGIN (plugin)
