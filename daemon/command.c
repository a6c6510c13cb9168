/* SPDX-License-Identifier: BSD-3-Clause
 * The nbdkit command line of an export.  A secret parameter becomes
 * key=-FD with FD the read end of a pipe holding the value, so a secret
 * is never on a command line, in an environment or in a file.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbdkitd.h"

static int
add (string_vector *argv, const char *fs, ...)
  __attribute__ ((format (printf, 2, 3)));

static int
add (string_vector *argv, const char *fs, ...)
{
  va_list args;
  char *s;
  int r;

  va_start (args, fs);
  r = vasprintf (&s, fs, args);
  va_end (args);
  if (r == -1)
    return -ENOMEM;
  if (string_vector_append (argv, s) == -1) {
    free (s);
    return -ENOMEM;
  }
  return 0;
}

/* A pipe already holding VALUE; returns the read end. */
static int
secret_pipe (const char *value)
{
  int fds[2];
  size_t len = strlen (value);

  if (pipe2 (fds, O_CLOEXEC) == -1)
    return -errno;
  /* The value is shorter than SECRET_MAX, which fits in a pipe buffer. */
  if (write (fds[1], value, len) != (ssize_t) len) {
    int r = -errno;
    close (fds[0]);
    close (fds[1]);
    return r ? r : -EIO;
  }
  close (fds[1]);
  return fds[0];
}

/* The worker's own listeners take its TLS settings; clients of the
 * shared listener reach it already through the daemon's TLS (a relay,
 * nbdkit-worker(7) "hand-over"), so a shared-only export needs none.
 */
static bool
has_own_listener (const struct export_def *def)
{
  for (size_t i = 0; i < def->listeners.len; i++)
    if (strcmp (def->listeners.ptr[i], "shared") != 0)
      return true;
  return false;
}

/* Whether the worker itself speaks TLS (and can reload-tls). */
bool
export_worker_has_tls (const struct export_def *def)
{
  return def->tls != TLS_MODE_OFF && has_own_listener (def);
}

static int
add_options (string_vector *argv, const struct export_def *def)
{
  bool tls = export_worker_has_tls (def);
  int r = 0;

  if (def->readonly)
    r = add (argv, "-r");
  if (r == 0 && def->threads)
    r = add (argv, "--threads=%u", def->threads);
  if (r == 0 && def->user)
    r = add (argv, "--user=%s", def->user);
  if (r == 0 && def->group)
    r = add (argv, "--group=%s", def->group);
  if (r == 0 && tls)
    r = add (argv, "--tls=%s", tls_mode_to_string (def->tls));
  if (r == 0 && tls && def->tls_certificates)
    r = add (argv, "--tls-certificates=%s", def->tls_certificates);
  if (r == 0 && tls && def->tls_psk)
    r = add (argv, "--tls-psk=%s", def->tls_psk);
  if (r == 0 && tls && def->tls_verify_peer)
    r = add (argv, "--tls-verify-peer");
  for (size_t i = 0; r == 0 && i < def->filters.len; i++)
    r = add (argv, "--filter=%s", def->filters.ptr[i]);
  return r;
}

/* ARGV (NULL-terminated): nbdkit, --exit-with-parent (not for workers
 * with --fd-store), MODE_ARGS, the
 * export's options, plugin and parameters.  Secret pipes are appended to
 * SECRET_PIPES and will be FIRST_EXTRA_FD, FIRST_EXTRA_FD + 1, ... in the
 * child.
 */
int
nbdkit_argv_build (struct context *ctx, const struct export_def *def,
                   const char *const *mode_args, int first_extra_fd,
                   int_vector *secret_pipes, string_vector *argv)
{
  int r;

  r = add (argv, "%s", ctx->config.nbdkit);
  /* With --fd-store a worker outlives a restart of the daemon: its
   * lifetime is its control socket's (nbdkit-worker(7) "LIFETIME").
   */
  if (r == 0 && (!ctx->config.fd_store || mode_args))
    r = add (argv, "--exit-with-parent");
  for (size_t i = 0; r == 0 && mode_args && mode_args[i]; i++)
    r = add (argv, "%s", mode_args[i]);
  if (r == 0)
    r = add_options (argv, def);
  if (r == 0)
    r = add (argv, "%s", def->plugin);
  for (size_t i = 0; r == 0 && i < def->params.len; i++) {
    const struct param *p = &def->params.ptr[i];
    if (!p->secret) {
      r = add (argv, "%s=%s", p->key, p->value);
      continue;
    }
    int fd = secret_pipe (p->value);
    if (fd < 0)
      r = fd;
    else if (int_vector_append (secret_pipes, fd) == -1) {
      close (fd);
      r = -ENOMEM;
    }
    else
      r = add (argv, "%s=-%zu", p->key,
               first_extra_fd + secret_pipes->len - 1);
  }
  if (r == 0 && string_vector_append (argv, NULL) == -1)
    r = -ENOMEM;
  if (r < 0)
    nbdkit_argv_free (secret_pipes, argv);
  return r;
}

void
nbdkit_argv_free (int_vector *secret_pipes, string_vector *argv)
{
  for (size_t i = 0; i < secret_pipes->len; i++)
    close (secret_pipes->ptr[i]);
  int_vector_reset (secret_pipes);
  string_vector_free_all (argv);
}
