/* SPDX-License-Identifier: BSD-3-Clause
 * The nbdkit-style parts of the command line: PLUGIN [key=value]... with
 * the plugin's magic key, listener addresses, secrets and numbers.
 */

#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/wait.h>

#include "nbdkitctl.h"
#include "cleanup.h"

extern char **environ;

/* The same rule as nbdkit's command line: KEY=VALUE when KEY starts with
 * a letter and holds only letters, digits, '_', '-' and '.'; anything
 * else is a value for the plugin's magic key.
 */
static bool
split_key_value (const char *arg, size_t *key_len)
{
  size_t n = strcspn (arg, "=");
  size_t i;

  if (arg[n] != '=' || n == 0 || !isalpha ((unsigned char) arg[0]))
    return false;
  for (i = 1; i < n; ++i) {
    unsigned char c = arg[i];
    if (!isalnum (c) && c != '_' && c != '-' && c != '.')
      return false;
  }
  *key_len = n;
  return true;
}

/* The nbdkit used to ask a plugin for its magic key: $NBDKIT, else the
 * one installed beside nbdkitd, else the first on $PATH.  The daemon runs
 * on this machine (D-Bus is local), so they see the same plugins.
 */
static const char *
nbdkit_program (void)
{
  const char *env = getenv ("NBDKIT");

  if (env && *env)
    return env;
  if (access (SBINDIR "/nbdkit", X_OK) == 0)
    return SBINDIR "/nbdkit";
  return "nbdkit";
}

/* Read all of FD (at most 64 KiB) into a new string. */
static char *
read_all (int fd)
{
  size_t len = 0, cap = 65536;
  char *buf = malloc (cap + 1);
  ssize_t n;

  if (buf == NULL)
    return NULL;
  while (len < cap && (n = read (fd, buf + len, cap - len)) != 0) {
    if (n < 0) {
      if (errno == EINTR)
        continue;
      free (buf);
      return NULL;
    }
    len += n;
  }
  buf[len] = '\0';
  return buf;
}

/* Run `nbdkit PLUGIN --dump-plugin` and return its magic_config_key in
 * *key (NULL if the plugin has none).
 */
static int
plugin_magic_key (const char *plugin, char **key)
{
  const char *prog = nbdkit_program ();
  char *argv[] = { (char *) prog, (char *) plugin, "--dump-plugin", NULL };
  posix_spawn_file_actions_t fa;
  CLEANUP_FREE char *out = NULL;
  int pipefd[2], status, r;
  pid_t pid;
  char *p, *end;

  if (pipe2 (pipefd, O_CLOEXEC) == -1)
    return error_log (-errno, "pipe: %m");
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_adddup2 (&fa, pipefd[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen (&fa, STDERR_FILENO, "/dev/null",
                                    O_WRONLY, 0);
  r = posix_spawnp (&pid, prog, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&fa);
  close (pipefd[1]);
  if (r != 0) {
    close (pipefd[0]);
    return error_log (-EINVAL, "plugin %s: cannot run %s to learn its magic "
                      "parameter: %s; write key=value instead", plugin, prog,
                      strerror (r));
  }
  out = read_all (pipefd[0]);
  close (pipefd[0]);
  while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
    ;
  if (out == NULL || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return error_log (-EINVAL, "plugin %s: %s --dump-plugin failed (is the "
                      "plugin installed?); write key=value instead",
                      plugin, prog);

  *key = NULL;
  for (p = out; p && *p; p = end ? end + 1 : NULL) {
    end = strchr (p, '\n');
    if (end)
      *end = '\0';
    if (strncmp (p, "magic_config_key=", 17) == 0 && p[17]) {
      if ((*key = strdup (p + 17)) == NULL)
        return error_log (-ENOMEM, "%m");
      break;
    }
  }
  return 0;
}

static int
params_append (param_vector *params, char *key, char *value)
{
  if (key == NULL || value == NULL
      || param_vector_append (params, (struct param) { key, value }) == -1) {
    free (key);
    free (value);
    return error_log (-ENOMEM, "%m");
  }
  return 0;
}

/* Turn ARGS (what follows PLUGIN) into key/value pairs.  The plugin is
 * only asked for its magic key when an argument is not key=value.
 */
int
parse_plugin_params (const char *plugin, char **args, int nr,
                     param_vector *params)
{
  CLEANUP_FREE char *magic = NULL;
  bool magic_known = false;
  size_t key_len;
  int i, r;

  for (i = 0; i < nr; ++i) {
    const char *a = args[i];

    if (split_key_value (a, &key_len)) {
      r = params_append (params, strndup (a, key_len),
                         strdup (a + key_len + 1));
      if (r < 0)
        return r;
      continue;
    }
    if (!magic_known) {
      if ((r = plugin_magic_key (plugin, &magic)) < 0)
        return r;
      magic_known = true;
    }
    /* As nbdkit does: a plugin with no magic key takes a bare first
     * argument as its script.
     */
    if (magic == NULL && i > 0)
      return error_log (-EINVAL, "plugin %s has no magic parameter: "
                        "expected key=value, not \"%s\"", plugin, a);
    r = params_append (params, strdup (magic ? magic : "script"), strdup (a));
    if (r < 0)
      return r;
  }
  return 0;
}

int
parse_listen (const char *arg, string_vector *listeners)
{
  static const char *const prefixes[] = { "tcp:", "unix:", "vsock:", NULL };
  char *s;
  size_t i;

  if (strcmp (arg, "shared") != 0) {
    for (i = 0; prefixes[i]; ++i)
      if (strncmp (arg, prefixes[i], strlen (prefixes[i])) == 0
          && arg[strlen (prefixes[i])] != '\0')
        break;
    if (prefixes[i] == NULL)
      return error_log (-EINVAL, "--listen: \"%s\" is not tcp:HOST:PORT, "
                        "unix:PATH, vsock:PORT or shared", arg);
  }
  if ((s = strdup (arg)) == NULL || string_vector_append (listeners, s))
    return error_log (-ENOMEM, "%m");
  return 0;
}

/* Ask for a secret on the terminal with echo off; pass it through a pipe
 * so that the daemon reads it like a file.
 */
static int
secret_from_terminal (const char *key)
{
  struct termios old, quiet;
  CLEANUP_FREE char *line = NULL;
  size_t n = 0;
  ssize_t len;
  int pipefd[2];

  fprintf (stderr, "Secret for %s: ", key);
  fflush (stderr);
  if (tcgetattr (STDIN_FILENO, &old) == -1)
    return error_log (-errno, "--secret %s: terminal: %m", key);
  quiet = old;
  quiet.c_lflag &= ~ECHO;
  tcsetattr (STDIN_FILENO, TCSAFLUSH, &quiet);
  len = getline (&line, &n, stdin);
  tcsetattr (STDIN_FILENO, TCSAFLUSH, &old);
  fputc ('\n', stderr);
  if (len < 0)
    return error_log (-EINVAL, "--secret %s: nothing read", key);
  if (len > 0 && line[len - 1] == '\n')
    line[--len] = '\0';
  /* A pipe holds 64 KiB, much more than a secret; write it all and
   * close our end so the reader sees end of file.
   */
  if (pipe2 (pipefd, O_CLOEXEC) == -1)
    return error_log (-errno, "pipe: %m");
  if (write (pipefd[1], line, len) != len) {
    close (pipefd[0]);
    close (pipefd[1]);
    return error_log (-EIO, "--secret %s: cannot buffer the secret", key);
  }
  explicit_bzero (line, len);
  close (pipefd[1]);
  return pipefd[0];
}

/* --secret=KEY=FILE or KEY=-: only the descriptor ever leaves here. */
int
parse_secret (const char *arg, secret_vector *secrets)
{
  const char *eq = strchr (arg, '=');
  size_t key_len;
  char *key;
  int fd;

  config.export_options_given = true;
  if (eq == NULL || !split_key_value (arg, &key_len) || eq[1] == '\0')
    return error_log (-EINVAL, "--secret: expected KEY=FILE or KEY=-, "
                      "not \"%s\"", arg);
  if ((key = strndup (arg, key_len)) == NULL)
    return error_log (-ENOMEM, "%m");
  if (strcmp (eq + 1, "-") != 0)
    fd = open (eq + 1, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  else if (isatty (STDIN_FILENO))
    fd = secret_from_terminal (key);
  else
    fd = fcntl (STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
  if (fd < 0) {
    if (fd == -1)
      error_log (-errno, "--secret %s: %s: %m", key, eq + 1);
    free (key);
    return -EINVAL;
  }
  if (secret_vector_append (secrets, (struct secret) { key, fd }) == -1) {
    close (fd);
    free (key);
    return error_log (-ENOMEM, "%m");
  }
  return 0;
}

int
parse_u32 (const char *what, const char *arg, uint32_t *ret)
{
  unsigned long v;
  char *end;

  errno = 0;
  v = strtoul (arg, &end, 10);
  if (*arg == '\0' || *end != '\0' || errno != 0 || !isdigit (*arg)
      || v > UINT32_MAX)
    return error_log (-EINVAL, "%s: \"%s\" is not a number", what, arg);
  *ret = v;
  return 0;
}

int
check_choice (const char *what, const char *arg, const char *const *choices)
{
  size_t i;

  for (i = 0; choices[i]; ++i)
    if (strcmp (arg, choices[i]) == 0)
      return 0;
  fprintf (stderr, "nbdkitctl: %s: \"%s\" is not one of:", what, arg);
  for (i = 0; choices[i]; ++i)
    fprintf (stderr, " %s", choices[i]);
  fputc ('\n', stderr);
  return -EINVAL;
}

void
param_vector_free_all (param_vector *v)
{
  size_t i;

  for (i = 0; i < v->len; ++i) {
    free (v->ptr[i].key);
    free (v->ptr[i].value);
  }
  param_vector_reset (v);
}

void
export_options_free (struct export_options *o)
{
  size_t i;

  string_vector_free_all (&o->filters);
  string_vector_free_all (&o->listeners);
  string_vector_free_all (&o->tls_allow);
  for (i = 0; i < o->secrets.len; ++i) {
    free (o->secrets.ptr[i].key);
    close (o->secrets.ptr[i].fd);
  }
  secret_vector_reset (&o->secrets);
}
