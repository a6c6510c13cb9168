/* SPDX-License-Identifier: BSD-3-Clause
 * The iso plugin: at start-up run xorriso (-as mkisofs), genisoimage or
 * mkisofs over one or more directories, write the ISO 9660 image into an
 * unlinked temporary file and serve that file read-only.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "fileio.h"
#include "utils.h"
#include "vector.h"

#ifndef ISO_DEFAULT_PROG
#define ISO_DEFAULT_PROG "xorriso"
#endif

/* dir=: absolute paths of the directories, merged at the ISO root. */
static string_vector dirs = empty_vector;

/* prog=: the program making the image (a name looked up in $PATH). */
static const char *prog = ISO_DEFAULT_PROG;

/* params=: extra arguments, passed through the shell as written. */
static const char *params = NULL;

/* The finished image (unlinked, so it goes away with nbdkit) and its
 * size, both set in get_ready.
 */
static int iso_fd = -1;
static int64_t iso_size;

static void
iso_unload (void)
{
  string_vector_free_all (&dirs);
  if (iso_fd >= 0)
    close (iso_fd);
}

static int
iso_config_dir (const char *value)
{
  struct stat st;
  char *path = realpath (value, NULL);

  if (path == NULL || stat (path, &st) == -1) {
    nbdkit_error ("dir=%s: %m", value);
    free (path);
    return -1;
  }
  if (!S_ISDIR (st.st_mode)) {
    nbdkit_error ("dir=%s: not a directory", value);
    free (path);
    return -1;
  }
  if (string_vector_append (&dirs, path) == -1) {
    nbdkit_error ("realloc: %m");
    free (path);
    return -1;
  }
  return 0;
}

static int
iso_config (const char *key, const char *value)
{
  if (strcmp (key, "dir") == 0)
    return iso_config_dir (value);
  else if (strcmp (key, "prog") == 0) {
    if (*value == '\0') {
      nbdkit_error ("prog='': the program name must not be empty");
      return -1;
    }
    prog = value;
  }
  else if (strcmp (key, "params") == 0)
    params = value;
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

static int
iso_config_complete (void)
{
  if (dirs.len == 0) {
    nbdkit_error ("you must supply the dir=<DIRECTORY> parameter "
                  "after the plugin name on the command line");
    return -1;
  }
  return 0;
}

#define iso_config_help \
  "[dir=]<DIRECTORY>   (required) Directory to put in the ISO (repeatable).\n" \
  "params='<PARAMS>'              Extra parameters for the ISO program.\n" \
  "prog=<ISOPROG>                 The ISO program (default " \
  ISO_DEFAULT_PROG ")."

/* xorriso speaks the mkisofs language only when asked to. */
static bool
prog_is_xorriso (void)
{
  const char *base = strrchr (prog, '/');

  base = base ? base + 1 : prog;
  return strcmp (base, "xorriso") == 0;
}

/* The shell command: PROG [-as mkisofs] -quiet PARAMS 'DIR'...  The
 * image goes to standard output.  PARAMS is deliberately not quoted.
 */
static char *
build_command (void)
{
  char *cmd = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&cmd, &len);
  size_t i;

  if (fp == NULL) {
    nbdkit_error ("open_memstream: %m");
    return NULL;
  }
  fputs (prog, fp);
  if (prog_is_xorriso ())
    fputs (" -as mkisofs", fp);
  fputs (" -quiet", fp);
  if (params)
    fprintf (fp, " %s", params);
  for (i = 0; i < dirs.len; ++i) {
    CLEANUP_FREE char *q = shell_quote (dirs.ptr[i]);
    if (q == NULL) {
      nbdkit_error ("shell_quote: %m");
      fclose (fp);
      free (cmd);
      return NULL;
    }
    fprintf (fp, " %s", q);
  }
  if (fclose (fp) == EOF) {
    nbdkit_error ("open_memstream: %m");
    free (cmd);
    return NULL;
  }
  return cmd;
}

/* Run CMD under /bin/sh with standard output on OUT_FD, standard input
 * from /dev/null, standard error shared with nbdkit so that the
 * program's own messages are seen, and default signal handling.
 * Returns the wait status or -1.
 */
static int
run_command (const char *cmd, int out_fd)
{
  pid_t pid;
  int status;

  nbdkit_debug ("iso: running: %s", cmd);
  fflush (NULL);
  pid = fork ();
  if (pid == -1) {
    nbdkit_error ("fork: %m");
    return -1;
  }
  if (pid == 0) {
    int null_fd = open ("/dev/null", O_RDONLY);
    sigset_t mask;

    /* nbdkit ignores SIGPIPE and SIGHUP; the program should not. */
    signal (SIGPIPE, SIG_DFL);
    signal (SIGHUP, SIG_DFL);
    sigemptyset (&mask);
    sigprocmask (SIG_SETMASK, &mask, NULL);
    if (null_fd == -1 || dup2 (null_fd, STDIN_FILENO) == -1 ||
        dup2 (out_fd, STDOUT_FILENO) == -1)
      _exit (126);
    execl ("/bin/sh", "sh", "-c", cmd, (char *) NULL);
    _exit (127);
  }
  while (waitpid (pid, &status, 0) == -1) {
    if (errno != EINTR) {
      nbdkit_error ("waitpid: %m");
      return -1;
    }
  }
  return status;
}

static int
iso_get_ready (void)
{
  CLEANUP_FREE char *cmd = build_command ();
  const char *tmpdir;
  struct stat st;
  int status;

  if (cmd == NULL)
    return -1;
  iso_fd = make_unlinked_tmpfile ("nbdkit-iso", &tmpdir);
  if (iso_fd == -1) {
    nbdkit_error ("cannot create a temporary file in %s: %m", tmpdir);
    return -1;
  }
  status = run_command (cmd, iso_fd);
  if (status == -1)
    return -1;
  if (WIFEXITED (status) && WEXITSTATUS (status) != 0) {
    nbdkit_error ("%s: command failed with exit code %d",
                  prog, WEXITSTATUS (status));
    return -1;
  }
  if (WIFSIGNALED (status)) {
    nbdkit_error ("%s: command was killed by signal %d",
                  prog, WTERMSIG (status));
    return -1;
  }
  if (fstat (iso_fd, &st) == -1) {
    nbdkit_error ("fstat: %m");
    return -1;
  }
  if (st.st_size == 0) {
    nbdkit_error ("%s: command succeeded but wrote no ISO image "
                  "to standard output", prog);
    return -1;
  }
  iso_size = st.st_size;
  return 0;
}

static void *
iso_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
iso_get_size (void *handle)
{
  return iso_size;
}

/* The image never changes, so every connection sees the same data. */
static int
iso_can_multi_conn (void *handle)
{
  return 1;
}

static int
iso_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

static int
iso_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
           uint32_t flags)
{
  if (full_pread (iso_fd, buf, count, offset) == -1) {
    nbdkit_error ("pread: %m");
    return -1;
  }
  return 0;
}

/* Ask the kernel to read the range of the temporary file ahead. */
static int
iso_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  int r = posix_fadvise (iso_fd, offset, count, POSIX_FADV_WILLNEED);

  if (r != 0) {
    errno = r;
    nbdkit_error ("posix_fadvise: %m");
    return -1;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "iso",
  .longname           = "nbdkit iso plugin",
  .version            = PACKAGE_VERSION,
  .description        = "An ISO 9660 image made from directories",
  .unload             = iso_unload,
  .config             = iso_config,
  .config_complete    = iso_config_complete,
  .config_help        = iso_config_help,
  .magic_config_key   = "dir",
  .get_ready          = iso_get_ready,
  .open               = iso_open,
  .get_size           = iso_get_size,
  .can_multi_conn     = iso_can_multi_conn,
  .can_cache          = iso_can_cache,
  .pread              = iso_pread,
  .cache              = iso_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
