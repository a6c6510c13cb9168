/* SPDX-License-Identifier: BSD-3-Clause
 * Running child processes: nbdkit workers and dry runs get their file
 * descriptors by socket activation (LISTEN_FDS, LISTEN_PID,
 * LISTEN_FDNAMES), their standard error is read line by line, and their
 * exit is reported through the event loop.  Also the nbdkit command line
 * of an export, with secrets passed through pipes.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nbdkitd.h"
#include "cleanup.h"

#define LINE_MAX_LEN 4096

struct spawn {
  struct context *ctx;
  pid_t pid;
  int err_fd;
  int pidfd;                    /* adopted (not our child): -1 otherwise */
  sd_event_source *child_source;
  sd_event_source *err_source;
  spawn_line_fn on_line;
  spawn_exit_fn on_exit;
  void *opaque;
  char buf[LINE_MAX_LEN];
  size_t len;
};

pid_t
spawn_pid (const struct spawn *s)
{
  return s->pid;
}

/* Hand complete lines to the callback; cut overlong ones. */
static void
spawn_flush_lines (struct spawn *s, bool all)
{
  char *nl;

  while ((nl = memchr (s->buf, '\n', s->len)) != NULL ||
         s->len == sizeof s->buf || (all && s->len > 0)) {
    size_t n = nl ? (size_t) (nl - s->buf) : s->len;
    char line[LINE_MAX_LEN + 1];
    memcpy (line, s->buf, n);
    line[n] = '\0';
    if (nl)
      n++;
    memmove (s->buf, s->buf + n, s->len - n);
    s->len -= n;
    if (s->on_line)
      s->on_line (s->opaque, line);
  }
}

/* Read what is there without blocking.  Returns 0 at end of file. */
static int
spawn_read_err (struct spawn *s)
{
  for (;;) {
    ssize_t n = read (s->err_fd, s->buf + s->len, sizeof s->buf - s->len);
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1)
      return errno == EAGAIN ? 1 : -errno;
    if (n == 0)
      return 0;
    s->len += n;
    spawn_flush_lines (s, false);
  }
}

static int
on_err_readable (sd_event_source *source, int fd, uint32_t revents,
                 void *userdata)
{
  struct spawn *s = userdata;

  if (spawn_read_err (s) <= 0) {
    spawn_flush_lines (s, true);
    s->err_source = sd_event_source_disable_unref (s->err_source);
  }
  return 0;
}

static int
on_child_exit (sd_event_source *source, const siginfo_t *si, void *userdata)
{
  struct spawn *s = userdata;

  /* Everything the child wrote is in the pipe now (unless it passed the
   * pipe on to a process still running): read it before reporting.
   */
  if (s->err_source) {
    spawn_read_err (s);
    spawn_flush_lines (s, true);
  }
  s->pid = 0;
  s->child_source = sd_event_source_disable_unref (s->child_source);
  s->on_exit (s->opaque, si);
  return 0;
}

/* In the child: move FDS to 3, 4, ... and describe the named ones as
 * socket activation.  Never returns.
 */
static void __attribute__ ((noreturn))
spawn_child (char **argv, const struct spawn_fd *fds, size_t nfds, int err_w)
{
  size_t nnamed = 0, i;
  char names[4096] = "", num[32];
  sigset_t mask;
  int null_fd;

  sigemptyset (&mask);
  sigprocmask (SIG_SETMASK, &mask, NULL);
  null_fd = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd == -1 || dup2 (null_fd, 0) == -1 || dup2 (err_w, 1) == -1 ||
      dup2 (err_w, 2) == -1)
    _exit (127);
  /* First out of the way (above every target), then into place. */
  int high[64];
  if (nfds > 64)
    _exit (127);
  for (i = 0; i < nfds; i++) {
    high[i] = fcntl (fds[i].fd, F_DUPFD_CLOEXEC, (int) (3 + nfds + 16));
    if (high[i] == -1)
      _exit (127);
  }
  for (i = 0; i < nfds; i++) {
    if (dup2 (high[i], 3 + i) == -1)
      _exit (127);
    if (fds[i].name) {
      nnamed++;
      if (nnamed > 1)
        strncat (names, ":", sizeof names - strlen (names) - 1);
      strncat (names, fds[i].name, sizeof names - strlen (names) - 1);
    }
  }
  close_range (3 + nfds, ~0U, 0);
  if (nnamed > 0) {
    snprintf (num, sizeof num, "%zu", nnamed);
    setenv ("LISTEN_FDS", num, 1);
    snprintf (num, sizeof num, "%d", (int) getpid ());
    setenv ("LISTEN_PID", num, 1);
    setenv ("LISTEN_FDNAMES", names, 1);
  }
  else {
    unsetenv ("LISTEN_FDS");
    unsetenv ("LISTEN_PID");
    unsetenv ("LISTEN_FDNAMES");
  }
  unsetenv ("NOTIFY_SOCKET");
  execv (argv[0], argv);
  fprintf (stderr, "nbdkitd: exec %s: %m\n", argv[0]);
  _exit (127);
}

/* Start ARGV with FDS (named ones first: they are the socket-activation
 * descriptors; unnamed ones follow and are inherited as they are).
 */
int
spawn_process (struct context *ctx, char **argv,
               const struct spawn_fd *fds, size_t nfds,
               spawn_line_fn on_line, spawn_exit_fn on_exit,
               void *opaque, struct spawn **ret)
{
  struct spawn *s;
  int pipefd[2];
  int r;

  s = calloc (1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  s->pidfd = -1;
  if (pipe2 (pipefd, O_CLOEXEC) == -1) {
    free (s);
    return -errno;
  }
  s->pid = fork ();
  if (s->pid == -1) {
    r = -errno;
    close (pipefd[0]);
    close (pipefd[1]);
    free (s);
    return r;
  }
  if (s->pid == 0)
    spawn_child (argv, fds, nfds, pipefd[1]);
  close (pipefd[1]);
  fcntl (pipefd[0], F_SETFL, O_NONBLOCK);
  s->ctx = ctx;
  s->err_fd = pipefd[0];
  s->on_line = on_line;
  s->on_exit = on_exit;
  s->opaque = opaque;
  r = sd_event_add_io (ctx->event, &s->err_source, s->err_fd, EPOLLIN,
                       on_err_readable, s);
  if (r >= 0)
    r = sd_event_add_child (ctx->event, &s->child_source, s->pid, WEXITED,
                            on_child_exit, s);
  if (r < 0) {
    kill (s->pid, SIGKILL);
    waitpid (s->pid, NULL, 0);
    s->pid = 0;
    spawn_free (s);
    return r;
  }
  *ret = s;
  return 0;
}

/* A process started by an earlier nbdkitd (nbdkitd --fd-store): not our
 * child, so it is watched through a pidfd and its exit status is
 * unknown.  ERR_FD (or -1) is the read end of its standard error.
 */
static int
on_pidfd (sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
  struct spawn *s = userdata;
  siginfo_t si = { .si_code = 0 };

  if (s->err_source) {
    spawn_read_err (s);
    spawn_flush_lines (s, true);
  }
  si.si_pid = s->pid;
  s->pid = 0;
  s->child_source = sd_event_source_disable_unref (s->child_source);
  s->on_exit (s->opaque, &si);
  return 0;
}

int
spawn_adopt (struct context *ctx, pid_t pid, int err_fd,
             spawn_line_fn on_line, spawn_exit_fn on_exit,
             void *opaque, struct spawn **ret)
{
  struct spawn *s;
  int r;

  s = calloc (1, sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  s->pidfd = pidfd_open (pid, 0);
  if (s->pidfd == -1) {
    r = -errno;
    free (s);
    return r;
  }
  s->ctx = ctx;
  s->pid = pid;
  s->err_fd = err_fd;
  s->on_line = on_line;
  s->on_exit = on_exit;
  s->opaque = opaque;
  r = 0;
  if (err_fd >= 0) {
    fcntl (err_fd, F_SETFL, O_NONBLOCK);
    r = sd_event_add_io (ctx->event, &s->err_source, err_fd, EPOLLIN,
                         on_err_readable, s);
  }
  if (r >= 0)
    r = sd_event_add_io (ctx->event, &s->child_source, s->pidfd, EPOLLIN,
                         on_pidfd, s);
  if (r < 0) {
    s->pid = 0;                 /* not ours to kill */
    s->err_fd = -1;             /* the caller's */
    spawn_free (s);
    return r;
  }
  *ret = s;
  return 0;
}

/* The read end of the process's standard error (-1 if none). */
int
spawn_err_fd (const struct spawn *s)
{
  return s->err_fd;
}

/* Forget the process without stopping it (nbdkitd --fd-store: it keeps
 * running after this daemon exits).
 */
void
spawn_detach (struct spawn *s)
{
  if (s)
    s->pid = 0;
}

/* Forget the process: kill it first if it still runs. */
void
spawn_free (struct spawn *s)
{
  if (s == NULL)
    return;
  if (s->pid > 0) {
    kill (s->pid, SIGKILL);
    if (s->pidfd == -1)
      waitpid (s->pid, NULL, 0);
  }
  if (s->pidfd >= 0)
    close (s->pidfd);
  sd_event_source_disable_unref (s->child_source);
  sd_event_source_disable_unref (s->err_source);
  if (s->err_fd >= 0)
    close (s->err_fd);
  free (s);
}

/* Run ARGV to completion and return its output (stdout and stderr). */
int
spawn_capture (struct context *ctx, char **argv, char **out, int *status)
{
  int pipefd[2];
  pid_t pid;
  char *buf = NULL;
  size_t len = 0, cap = 0;

  if (pipe2 (pipefd, O_CLOEXEC) == -1)
    return -errno;
  pid = fork ();
  if (pid == -1) {
    close (pipefd[0]);
    close (pipefd[1]);
    return -errno;
  }
  if (pid == 0)
    spawn_child (argv, NULL, 0, pipefd[1]);
  close (pipefd[1]);
  for (;;) {
    ssize_t n;
    if (cap - len < 4096) {
      char *p = realloc (buf, cap + 65536);
      if (p == NULL)
        break;
      buf = p;
      cap += 65536;
    }
    n = read (pipefd[0], buf + len, cap - len - 1);
    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += n;
  }
  close (pipefd[0]);
  while (waitpid (pid, status, 0) == -1 && errno == EINTR)
    ;
  if (buf == NULL)
    return -ENOMEM;
  buf[len] = '\0';
  *out = buf;
  return 0;
}
