/* SPDX-License-Identifier: BSD-3-Clause
 * The eval plugin: the sh plugin's methods given as shell fragments on
 * the command line (get_size='echo 64M'), each written to $tmpdir/METHOD
 * and run there exactly as a sh script method (nbdkit-eval-plugin(1)).
 * The running of methods is the sh plugin's (plugins/sh).
 */

#include <config.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "internal.h"
#include "utils.h"

/* The methods a parameter may define.  There is no load: a fragment
 * cannot exist before the command line is read.
 */
static const char *const method_names[] = {
  "after_fork", "block_size", "cache", "can_cache", "can_extents",
  "can_fast_zero", "can_flush", "can_fua", "can_multi_conn", "can_trim",
  "can_write", "can_zero", "close", "config", "config_complete",
  "default_export", "dump_plugin", "export_description", "extents",
  "flush", "get_ready", "get_size", "is_rotational", "list_exports",
  "open", "pread", "preconnect", "pwrite", "thread_model", "trim",
  "unload", "zero",
};

/* The file written for each method given, indexed like method_names. */
static char *scripts[ARRAY_SIZE (method_names)];

/* missing=: runs in place of every method not given.  Without it such
 * a method is missing without running anything (as "exit 2" would be).
 */
static char *missing_script;

static int
method_index (const char *method)
{
  for (size_t i = 0; i < ARRAY_SIZE (method_names); ++i)
    if (strcmp (method, method_names[i]) == 0)
      return i;
  return -1;
}

/* A fragment without #! (the usual case) runs under /bin/sh. */
const char *
script_for (const char *method, bool *via_shell)
{
  int i = method_index (method);

  *via_shell = false;
  return i >= 0 && scripts[i] ? scripts[i] : missing_script;
}

bool
script_defines (const char *method)
{
  int i = method_index (method);

  return i >= 0 && scripts[i] != NULL;
}

/* The fragments' file names ($tmpdir/pread) say nothing more than the
 * method name already does.
 */
const char *
script_label (void)
{
  return NULL;
}

/* Write FRAGMENT to $tmpdir/NAME as it is, so line numbers in the
 * shell's messages are the fragment's.
 */
static char *
write_fragment (const char *name, const char *fragment)
{
  const char *dir = script_tmpdir ();
  char *path;
  FILE *fp;
  int fd;

  if (dir == NULL)
    return NULL;
  if (asprintf (&path, "%s/%s", dir, name) == -1) {
    nbdkit_error ("asprintf: %m");
    return NULL;
  }
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
  fp = fd == -1 ? NULL : fdopen (fd, "w");
  if (fp == NULL) {
    nbdkit_error ("%s: %m", path);
    if (fd >= 0)
      close (fd);
    free (path);
    return NULL;
  }
  fprintf (fp, "%s\n", fragment);
  if (fclose (fp) == EOF) {
    nbdkit_error ("%s: %m", path);
    free (path);
    return NULL;
  }
  return path;
}

static int
eval_config (const char *key, const char *value)
{
  char **slot;
  int i;

  if (strcmp (key, "missing") == 0)
    slot = &missing_script;
  else if ((i = method_index (key)) >= 0)
    slot = &scripts[i];
  else
    /* Any other key is for the config fragment, as things stand now. */
    return method_config (key, value);

  if (*slot) {
    nbdkit_error ("method %s defined more than once on the command line",
                  key);
    return -1;
  }
  *slot = write_fragment (key, value);
  return *slot ? 0 : -1;
}

#define eval_config_help \
  "<method>='SCRIPT'      Shell script fragments answering methods, any of:\n" \
  "                       after_fork= block_size= cache= can_cache=\n" \
  "                       can_extents= can_fast_zero= can_flush= can_fua=\n" \
  "                       can_multi_conn= can_trim= can_write= can_zero=\n" \
  "                       close= config= config_complete= default_export=\n" \
  "                       dump_plugin= export_description= extents= flush=\n" \
  "                       get_ready= get_size= is_rotational=\n" \
  "                       list_exports= open= pread= preconnect= pwrite=\n" \
  "                       thread_model= trim= unload= zero=\n" \
  "missing='SCRIPT'       Runs for every method not given (default: exit 2)."

static void
eval_unload (void)
{
  method_unload ();
  for (size_t i = 0; i < ARRAY_SIZE (scripts); ++i) {
    free (scripts[i]);
    scripts[i] = NULL;
  }
  free (missing_script);
  missing_script = NULL;
}

/* The fragments choose (thread_model=); this is the loosest. */
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static struct nbdkit_plugin plugin = {
  .name               = "eval",
  .longname           = "nbdkit eval plugin",
  .version            = PACKAGE_VERSION,
  .description        = "A plugin written as shell fragments on the "
                        "command line",
  .unload             = eval_unload,
  .config             = eval_config,
  .config_complete    = method_config_complete,
  .config_help        = eval_config_help,
  SCRIPT_PLUGIN_CALLBACKS,
};

NBDKIT_REGISTER_PLUGIN (plugin)
