/* SPDX-License-Identifier: BSD-3-Clause
 * The sh plugin: every callback runs one executable, the script, with
 * the method name and its arguments (nbdkit-sh-plugin(1)).  The script
 * comes from script=PATH (the magic key), or from standard input with
 * script=-, and may name its own magic key for the bare parameters
 * that follow.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "internal.h"

/* The script: an absolute path (nbdkit may chdir), or the copy of
 * standard input in $tmpdir.  NULL until script= is seen.
 */
static char *script;

/* The script's #! line names nbdkit (#!/usr/sbin/nbdkit sh): executing
 * it would start another nbdkit, so /bin/sh runs it instead.
 */
static bool script_is_nbdkit_shebang;

/* The key the script's magic_config_key method names, which bare
 * parameters after the script are given to, or NULL.
 */
static char *magic_key;

const char *
script_for (const char *method, bool *via_shell)
{
  *via_shell = script_is_nbdkit_shebang;
  return script;
}

/* Whether a script implements a method is only known by running it. */
bool
script_defines (const char *method)
{
  return false;
}

const char *
script_label (void)
{
  return script;
}

/* script=-: copy standard input into $tmpdir as an executable; without
 * a #! line it runs under /bin/sh.
 */
static char *
read_script_from_stdin (void)
{
  const char *dir = script_tmpdir ();
  char *path, buf[65536];
  ssize_t n;
  int fd;

  if (!nbdkit_stdio_safe ()) {
    nbdkit_error ("script=-: standard input is in use by the client (-s), "
                  "the script cannot be read from it");
    return NULL;
  }
  if (dir == NULL)
    return NULL;
  if (asprintf (&path, "%s/inline-script.sh", dir) == -1) {
    nbdkit_error ("asprintf: %m");
    return NULL;
  }
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
  if (fd == -1) {
    nbdkit_error ("open: %s: %m", path);
    free (path);
    return NULL;
  }
  while ((n = read (STDIN_FILENO, buf, sizeof buf)) != 0) {
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1 || write (fd, buf, n) != n) {
      nbdkit_error ("script=-: copying standard input to %s: %m", path);
      close (fd);
      free (path);
      return NULL;
    }
  }
  if (close (fd) == -1) {
    nbdkit_error ("close: %s: %m", path);
    free (path);
    return NULL;
  }
  return path;
}

/* Whether the script starts "#!INTERPRETER" where INTERPRETER is this
 * nbdkit, or any program called nbdkit.
 */
static bool
has_nbdkit_shebang (const char *path)
{
  CLEANUP_FREE char *line = NULL, *self = NULL, *interpreter = NULL;
  size_t size = 0;
  const char *base;
  FILE *fp;
  char *p;

  fp = fopen (path, "re");
  if (fp == NULL)
    return false;               /* running it will say why */
  if (getline (&line, &size, fp) == -1 || strncmp (line, "#!", 2) != 0) {
    fclose (fp);
    return false;
  }
  fclose (fp);
  p = line + 2 + strspn (line + 2, " \t");
  p[strcspn (p, " \t\r\n")] = '\0';
  base = strrchr (p, '/') ? strrchr (p, '/') + 1 : p;
  if (strcmp (base, "nbdkit") == 0)
    return true;
  self = realpath ("/proc/self/exe", NULL);
  interpreter = realpath (p, NULL);
  return self && interpreter && strcmp (self, interpreter) == 0;
}

/* The script's own key for bare parameters, if it names one. */
static int
sh_ask_magic_config_key (void)
{
  const char *argv[] = { NULL, "magic_config_key", NULL };
  byte_buffer out = empty_vector;
  enum script_status r;
  const char *word;

  r = method_call (argv, NULL, 0, &out, SCRIPT_OUTPUT_MAX);
  if (r == SCRIPT_OK) {
    if (byte_buffer_append (&out, '\0') == -1)
      goto nomem;
    word = out.ptr + strspn (out.ptr, " \t\r\n");
    if (*word &&
        (magic_key = strndup (word, strcspn (word, " \t\r\n"))) == NULL)
      goto nomem;
  }
  byte_buffer_reset (&out);
  return r == SCRIPT_ERROR ? -1 : 0;

 nomem:
  nbdkit_error ("magic_config_key: %m");
  byte_buffer_reset (&out);
  return -1;
}

/* script=: remember it, then run its load and magic_config_key. */
static int
sh_config_script (const char *value)
{
  const char *argv[] = { NULL, "load", NULL };

  if (strcmp (value, "-") == 0)
    script = read_script_from_stdin ();
  else
    script = nbdkit_realpath (value);
  if (script == NULL)
    return -1;
  script_is_nbdkit_shebang = has_nbdkit_shebang (script);
  if (method_call (argv, NULL, 0, NULL, SCRIPT_OUTPUT_MAX) == SCRIPT_ERROR)
    return -1;
  return sh_ask_magic_config_key ();
}

static int
sh_config (const char *key, const char *value)
{
  if (script == NULL) {
    if (strcmp (key, "script") != 0) {
      nbdkit_error ("the first parameter must be script=/path/to/script");
      return -1;
    }
    return sh_config_script (value);
  }
  /* A later bare parameter (or script=) goes to the script's magic key. */
  if (strcmp (key, "script") == 0) {
    if (magic_key == NULL) {
      nbdkit_error ("%s: expecting key=value on the command line but got: "
                    "%s", script, value);
      return -1;
    }
    key = magic_key;
  }
  return method_config (key, value);
}

static int
sh_config_complete (void)
{
  if (script == NULL) {
    nbdkit_error ("missing script parameter: nbdkit sh /path/to/script");
    return -1;
  }
  return method_config_complete ();
}

#define sh_config_help \
  "script=<FILENAME>     (required) The shell script to run.\n" \
  "[other arguments may be used by the plugin that you load]"

static void
sh_unload (void)
{
  method_unload ();
  free (script);
  script = NULL;
  free (magic_key);
  magic_key = NULL;
}

/* The script chooses (thread_model method); this is the loosest. */
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static struct nbdkit_plugin plugin = {
  .name               = "sh",
  .longname           = "nbdkit shell script plugin",
  .version            = PACKAGE_VERSION,
  .description        = "A plugin written as a script or any executable",
  .unload             = sh_unload,
  .config             = sh_config,
  .config_complete    = sh_config_complete,
  .config_help        = sh_config_help,
  .magic_config_key   = "script",
  SCRIPT_PLUGIN_CALLBACKS,
};

NBDKIT_REGISTER_PLUGIN (plugin)
