/* SPDX-License-Identifier: BSD-3-Clause
 * Running a program with posix_spawn (safe in a threaded server), its
 * output collected through a pipe so that a failure can be explained.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "run-command.h"

extern char **environ;

/* At most this much output is kept; the rest is read and dropped. */
#define MAX_OUTPUT (64 * 1024)

/* nbdkit's environment followed by EXTRA (which wins in sh and
 * getenv alike because it replaces any earlier entry of the same name).
 */
static char **
make_environment (char *const extra[])
{
  size_t n = 0, m = 0, i, j = 0;
  char **env;

  while (environ[n])
    n++;
  while (extra && extra[m])
    m++;
  env = calloc (n + m + 1, sizeof *env);
  if (env == NULL)
    return NULL;
  for (i = 0; i < n; ++i) {
    size_t k, len = strcspn (environ[i], "=");
    bool replaced = false;

    for (k = 0; k < m; ++k)
      if (strncmp (extra[k], environ[i], len) == 0 && extra[k][len] == '=')
        replaced = true;
    if (!replaced)
      env[j++] = environ[i];
  }
  for (i = 0; i < m; ++i)
    env[j++] = extra[i];
  return env;
}

static char *
read_all (int fd)
{
  char *buf = malloc (MAX_OUTPUT + 1);
  size_t len = 0;
  char scratch[4096];

  if (buf == NULL)
    return NULL;
  for (;;) {
    ssize_t r;
    if (len < MAX_OUTPUT)
      r = read (fd, buf + len, MAX_OUTPUT - len);
    else
      r = read (fd, scratch, sizeof scratch);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    if (len < MAX_OUTPUT)
      len += r;
  }
  while (len > 0 && buf[len - 1] == '\n')
    len--;
  buf[len] = '\0';
  return buf;
}

static int
spawn (char *const argv[], char *const extra_env[], int out_fd, pid_t *pid)
{
  posix_spawn_file_actions_t actions;
  CLEANUP_FREE char **env = make_environment (extra_env);
  int r;

  if (env == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  posix_spawn_file_actions_init (&actions);
  posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2 (&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2 (&actions, out_fd, 2);
  r = posix_spawnp (pid, argv[0], &actions, NULL, argv, env);
  posix_spawn_file_actions_destroy (&actions);
  if (r != 0) {
    errno = r;
    nbdkit_error ("%s: cannot run: %m", argv[0]);
    return -1;
  }
  return 0;
}

int
run_command (const char *what, char *const argv[], char *const extra_env[],
             bool report, char **output)
{
  int fds[2], status;
  pid_t pid;
  CLEANUP_FREE char *text = NULL;

  if (pipe2 (fds, O_CLOEXEC) == -1) {
    nbdkit_error ("pipe2: %m");
    return -1;
  }
  if (spawn (argv, extra_env, fds[1], &pid) == -1) {
    close (fds[0]);
    close (fds[1]);
    return -1;
  }
  close (fds[1]);
  text = read_all (fds[0]);
  close (fds[0]);
  while (waitpid (pid, &status, 0) == -1) {
    if (errno != EINTR) {
      nbdkit_error ("waitpid: %m");
      return -1;
    }
  }
  if (text && text[0])
    nbdkit_debug ("%s: %s", argv[0], text);
  if (output) {
    *output = text;
    text = NULL;
  }
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  if (report) {
    const char *msg = output ? *output : text;

    if (what == NULL)
      what = argv[0];
    if (WIFEXITED (status))
      nbdkit_error ("%s failed with exit status %d: %s", what,
                    WEXITSTATUS (status), msg ? msg : "");
    else
      nbdkit_error ("%s was killed by signal %d: %s", what,
                    WTERMSIG (status), msg ? msg : "");
  }
  return -1;
}
