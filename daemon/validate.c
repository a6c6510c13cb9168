/* SPDX-License-Identifier: BSD-3-Clause
 * Checking an export definition by a dry run of nbdkit (the plugin and
 * filters are loaded and configured, get_ready runs, then nbdkit exits),
 * so a typo is a named error with nbdkit's own message.
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
const char *
validate_error_name (const char *msg)
{
  if (strstr (msg, "cannot open plugin") || strstr (msg, "not an nbdkit plugin") ||
      strstr (msg, "error: the plugin '"))
    return NBDKITD_ERROR_NO_SUCH_PLUGIN;
  if (strstr (msg, "cannot open filter") || strstr (msg, "not an nbdkit filter") ||
      strstr (msg, "error: the filter '"))
    return NBDKITD_ERROR_NO_SUCH_FILTER;
  if (strstr (msg, "unknown parameter") || strstr (msg, "usage") ||
      strstr (msg, "--user") || strstr (msg, "--group") ||
      strstr (msg, "unknown user") || strstr (msg, "unknown group"))
    return NBDKITD_ERROR_INVALID_PARAMETER;
  return NBDKITD_ERROR_PLUGIN_FAILED;
}

/* What went wrong, on one line, from nbdkit's output (lines separated
 * by \n): the lines mentioning an error joined by "; " (the plugin's
 * reason comes before nbdkit's summary), else the last line; without the
 * program name.
 */
char *
validate_error_text (const char *output)
{
  /* Each line grows by at most one byte ("\n" becomes "; "). */
  size_t cap = 2 * strlen (output) + 16, len = 0;
  char *out = malloc (cap);
  const char *p = output, *last = NULL;
  size_t last_len = 0;

  if (out == NULL)
    return NULL;
  while (*p) {
    size_t n = strcspn (p, "\n");
    const char *line = p;
    if (n > 8 && strncmp (line, "nbdkit: ", 8) == 0)
      line += 8, n -= 8;
    if (n) {
      last = line;
      last_len = n;
    }
    if (n && memmem (line, n, "error", 5)) {
      len += sprintf (out + len, "%s%.*s", len ? "; " : "", (int) n, line);
    }
    p = line + n;
    if (*p)
      p++;
  }
  if (len == 0 && last)
    len = sprintf (out, "%.*s", (int) last_len, last);
  if (len == 0)
    strcpy (out, "nbdkit failed");
  return out;
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
    d->done (d->opaque, -EINVAL, validate_error_name (msg), msg);
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
