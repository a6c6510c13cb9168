/* SPDX-License-Identifier: BSD-3-Clause
 * Running one method of a script: spawn it with pipes on stdin, stdout
 * and stderr, feed and drain them together so a large pwrite or pread
 * never deadlocks on a full pipe, and turn the exit status and stderr
 * into a result or an nbdkit error (nbdkit-sh-plugin(3) "Exit codes").
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "internal.h"
#include "utils.h"

extern char **environ;

/* Only this much of stderr is kept for the error message. */
#define STDERR_MAX 65536

/* One running method: the child and our ends of its pipes. */
struct child {
  const char *method;
  pid_t pid;
  int pidfd;                    /* readable once the child exits, or -1 */
  int in, out, err;             /* -1 once closed */
  const char *in_buf;
  size_t in_len;
  byte_buffer *out_buf;         /* NULL: discard */
  size_t out_total, out_max;
  bool overflow;
  byte_buffer err_buf;
};

void
script_error (const char *method, const char *fs, ...)
{
  CLEANUP_FREE char *msg = NULL;
  const char *label = script_label ();
  va_list args;

  va_start (args, fs);
  if (vasprintf (&msg, fs, args) == -1)
    msg = NULL;
  va_end (args);
  if (label)
    nbdkit_error ("%s: %s: %s", label, method, msg ? msg : fs);
  else
    nbdkit_error ("%s: %s", method, msg ? msg : fs);
}

/* The environment of the script: ours with tmpdir=$tmpdir.  Built per
 * call rather than with setenv so nbdkit's own environment (and --run's)
 * stays as it was.
 */
static char **
script_environment (char **tmpdir_var)
{
  const char *dir = script_tmpdir ();
  size_t n = 0, i, j;
  char **env;

  if (dir == NULL)
    return NULL;
  if (asprintf (tmpdir_var, "tmpdir=%s", dir) == -1)
    return NULL;
  while (environ[n])
    n++;
  env = malloc ((n + 2) * sizeof *env);
  if (env == NULL) {
    free (*tmpdir_var);
    return NULL;
  }
  for (i = j = 0; i < n; ++i)
    if (strncmp (environ[i], "tmpdir=", 7) != 0)
      env[j++] = environ[i];
  env[j++] = *tmpdir_var;
  env[j] = NULL;
  return env;
}

/* Three pipes, close-on-exec so concurrent calls never inherit each
 * other's ends.  FDS[0..1] stdin, [2..3] stdout, [4..5] stderr.
 */
static int
make_pipes (int fds[6])
{
  int i;

  for (i = 0; i < 6; ++i)
    fds[i] = -1;
  for (i = 0; i < 6; i += 2)
    if (pipe2 (&fds[i], O_CLOEXEC) == -1)
      return -1;
  return 0;
}

static void
close_fd (int *fd)
{
  if (*fd >= 0) {
    close (*fd);
    *fd = -1;
  }
}

/* Start ARGV with the pipes as its standard streams, its signal mask
 * cleared and the signals nbdkit ignores back to their defaults (a
 * script must die of SIGPIPE like anywhere else).  A script without #!
 * runs under /bin/sh, as execvp would do.
 */
static int
spawn_child (const char **argv, bool via_shell, char **env, int fds[6],
             pid_t *pid)
{
  const char *sh_argv[SCRIPT_MAX_ARGS + 2] = { "/bin/sh" };
  size_t n = 0;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  sigset_t mask, defaults;
  int r;

  posix_spawn_file_actions_init (&actions);
  posix_spawn_file_actions_adddup2 (&actions, fds[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2 (&actions, fds[3], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2 (&actions, fds[5], STDERR_FILENO);
#ifdef HAVE_POSIX_SPAWN_FILE_ACTIONS_ADDCLOSEFROM_NP
  posix_spawn_file_actions_addclosefrom_np (&actions, STDERR_FILENO + 1);
#endif
  posix_spawnattr_init (&attr);
  sigemptyset (&mask);
  sigemptyset (&defaults);
  sigaddset (&defaults, SIGPIPE);
  sigaddset (&defaults, SIGHUP);
  sigaddset (&defaults, SIGINT);
  sigaddset (&defaults, SIGQUIT);
  sigaddset (&defaults, SIGTERM);
  posix_spawnattr_setsigmask (&attr, &mask);
  posix_spawnattr_setsigdefault (&attr, &defaults);
  posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK |
                            POSIX_SPAWN_SETSIGDEF);

  while (argv[n])
    n++;
  assert (n <= SCRIPT_MAX_ARGS);
  memcpy (&sh_argv[1], argv, (n + 1) * sizeof *argv);

  r = ENOEXEC;
  if (!via_shell)
    r = posix_spawn (pid, argv[0], &actions, &attr, (char **) argv, env);
  if (r == ENOEXEC)
    r = posix_spawn (pid, sh_argv[0], &actions, &attr, (char **) sh_argv,
                     env);
  posix_spawnattr_destroy (&attr);
  posix_spawn_file_actions_destroy (&actions);
  return r;
}

/* Read what is available on FD into BUF, keeping at most MAX bytes.
 * Returns 1 while open, 0 at end of file.
 */
static int
drain (int fd, byte_buffer *buf, size_t *total, size_t max, bool *overflow)
{
  char scratch[65536];

  for (;;) {
    char *dst = scratch;
    size_t room = sizeof scratch;
    ssize_t n;

    if (buf && *total < max) {
      room = max - *total;
      if (room > sizeof scratch)
        room = sizeof scratch;
      if (byte_buffer_reserve (buf, room) == -1)
        return -1;
      dst = buf->ptr + buf->len;
    }
    n = read (fd, dst, room);
    if (n == -1)
      return errno == EAGAIN || errno == EINTR ? 1 : -1;
    if (n == 0)
      return 0;
    if (buf && dst != scratch)
      buf->len += n;
    else if (*total + n > max)
      *overflow = true;
    *total += n;
    if (*overflow)
      return 0;
  }
}

/* Feed stdin and drain stdout/stderr until both reach end of file or
 * the child exits (a background process it left holding the pipes must
 * not hang the request).  Returns -1 on a local error.
 */
static int
exchange (struct child *c)
{
  size_t err_total = 0;
  bool exited = false, dummy = false;

  while (c->out >= 0 || c->err >= 0) {
    struct pollfd pfd[4];
    int n = 0, i_in = -1, i_out = -1, i_err = -1, i_pid = -1, r;

    if (c->in >= 0)
      i_in = n, pfd[n++] = (struct pollfd) { c->in, POLLOUT, 0 };
    if (c->out >= 0)
      i_out = n, pfd[n++] = (struct pollfd) { c->out, POLLIN, 0 };
    if (c->err >= 0)
      i_err = n, pfd[n++] = (struct pollfd) { c->err, POLLIN, 0 };
    if (c->pidfd >= 0 && !exited)
      i_pid = n, pfd[n++] = (struct pollfd) { c->pidfd, POLLIN, 0 };
    if (poll (pfd, n, exited ? 0 : -1) == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (i_in >= 0 && pfd[i_in].revents) {
      ssize_t w = write (c->in, c->in_buf, c->in_len);
      if (w > 0) {
        c->in_buf += w;
        c->in_len -= w;
      }
      /* EPIPE: the script did not read all of it, which is its choice. */
      if (c->in_len == 0 || (w == -1 && errno != EAGAIN && errno != EINTR))
        close_fd (&c->in);
    }
    if (i_out >= 0 && (pfd[i_out].revents || exited)) {
      r = drain (c->out, c->out_buf, &c->out_total, c->out_max,
                 &c->overflow);
      if (r == -1)
        return -1;
      if (r == 0 || exited)
        close_fd (&c->out);
      if (c->overflow)
        break;
    }
    if (i_err >= 0 && (pfd[i_err].revents || exited)) {
      r = drain (c->err, &c->err_buf, &err_total, STDERR_MAX, &dummy);
      if (r == -1)
        return -1;
      if (r == 0 || exited)
        close_fd (&c->err);
    }
    /* After the child exits, one more pass collects what it wrote. */
    if (i_pid >= 0 && pfd[i_pid].revents)
      exited = true;
  }
  close_fd (&c->in);
  return 0;
}

/* nbdkit-sh-plugin(3): the errno names a script may print first on
 * stderr, the ones an NBD error can express.
 */
static const struct { const char *name; int err; } errno_names[] = {
  { "EPERM", EPERM }, { "EIO", EIO }, { "ENOMEM", ENOMEM },
  { "EINVAL", EINVAL }, { "ENOSPC", ENOSPC }, { "ESHUTDOWN", ESHUTDOWN },
  { "ENOTSUP", ENOTSUP }, { "EOPNOTSUPP", EOPNOTSUPP },
  { "EOVERFLOW", EOVERFLOW }, { "EROFS", EROFS }, { "EFBIG", EFBIG },
  { "EDQUOT", EDQUOT },
};

/* Report a failed method from its stderr: "ENAME message", or any text
 * (EIO).
 */
static void
report_script_error (const char *method, byte_buffer *err, const char *why)
{
  const char *name = NULL;
  char *msg = (char *) "";
  size_t len, i;
  int errnum = EIO;

  if (byte_buffer_append (err, '\0') == 0) {
    msg = err->ptr;
    len = strcspn (msg, " \t\n");
    for (i = 0; i < ARRAY_SIZE (errno_names); ++i) {
      if (len == strlen (errno_names[i].name) &&
          strncasecmp (msg, errno_names[i].name, len) == 0) {
        name = errno_names[i].name;
        errnum = errno_names[i].err;
        msg += len;
        msg += strspn (msg, " \t\n");
        break;
      }
    }
    /* Drop the trailing newline (and any other trailing blanks). */
    len = strlen (msg);
    while (len > 0 && strchr (" \t\n", msg[len - 1]))
      msg[--len] = '\0';
  }

  nbdkit_set_error (errnum);
  if (why)
    script_error (method, "%s%s%s", why, *msg ? ": " : "", msg);
  else if (*msg)
    script_error (method, "%s", msg);
  else if (name)
    script_error (method, "%s", name);
  else
    script_error (method, "the script exited with an error but printed "
                  "no message on stderr");
}

/* Wait for the child and map its exit status. */
static enum script_status
collect_status (struct child *c)
{
  char why[64];
  int status;

  while (waitpid (c->pid, &status, 0) == -1) {
    if (errno != EINTR) {
      script_error (c->method, "waitpid: %m");
      return SCRIPT_ERROR;
    }
  }
  if (c->overflow) {
    nbdkit_set_error (EIO);
    script_error (c->method, "the script wrote more than %zu bytes on "
                  "stdout", c->out_max);
    return SCRIPT_ERROR;
  }
  if (WIFSIGNALED (status)) {
    snprintf (why, sizeof why, "the script was killed by signal %d (%s)",
              WTERMSIG (status), strsignal (WTERMSIG (status)));
    report_script_error (c->method, &c->err_buf, why);
    return SCRIPT_ERROR;
  }
  switch (WEXITSTATUS (status)) {
  case SCRIPT_OK: case SCRIPT_MISSING: case SCRIPT_FALSE:
    if (c->err_buf.len > 0)
      nbdkit_debug ("%s: stderr ignored: %.*s", c->method,
                    (int) c->err_buf.len, c->err_buf.ptr);
    return WEXITSTATUS (status);
  case SCRIPT_ERROR:
    report_script_error (c->method, &c->err_buf, NULL);
    return SCRIPT_ERROR;
  default:                      /* 4-7 are reserved, and act like 1 */
    snprintf (why, sizeof why, "the script exited with status %d",
              WEXITSTATUS (status));
    report_script_error (c->method, &c->err_buf, why);
    return SCRIPT_ERROR;
  }
}

enum script_status
script_call (const char **argv, bool via_shell,
             const void *in, size_t in_len, byte_buffer *out, size_t out_max)
{
  CLEANUP_FREE char **env = NULL;
  CLEANUP_FREE char *tmpdir_var = NULL;
  struct child c = { .method = argv[1], .pidfd = -1, .in = -1, .out = -1,
                     .err = -1, .in_buf = in, .in_len = in_len,
                     .out_buf = out, .out_max = out_max,
                     .err_buf = empty_vector };
  enum script_status ret = SCRIPT_ERROR;
  int fds[6], r;

  nbdkit_debug ("calling: %s %s", argv[0], argv[1]);
  env = script_environment (&tmpdir_var);
  if (env == NULL) {
    nbdkit_set_error (errno ? errno : EIO);
    script_error (c.method, "cannot set up the environment: %m");
    return SCRIPT_ERROR;
  }
  if (make_pipes (fds) == -1) {
    nbdkit_set_error (errno);
    script_error (c.method, "pipe: %m");
    goto out;
  }
  r = spawn_child (argv, via_shell, env, fds, &c.pid);
  if (r != 0) {
    nbdkit_set_error (EIO);
    errno = r;
    script_error (c.method, "cannot run %s: %m", argv[0]);
    goto out;
  }
  c.in = fds[1], c.out = fds[2], c.err = fds[4];
  fds[1] = fds[2] = fds[4] = -1;
  c.pidfd = syscall (SYS_pidfd_open, c.pid, 0);
  fcntl (c.in, F_SETFL, O_NONBLOCK);
  fcntl (c.out, F_SETFL, O_NONBLOCK);
  fcntl (c.err, F_SETFL, O_NONBLOCK);
  if (in_len == 0)
    close_fd (&c.in);
  for (int i = 0; i < 6; ++i)
    close_fd (&fds[i]);

  if (exchange (&c) == -1) {
    nbdkit_set_error (errno);
    script_error (c.method, "talking to the script: %m");
    kill (c.pid, SIGKILL);
    while (waitpid (c.pid, NULL, 0) == -1 && errno == EINTR)
      ;
    goto out;
  }
  if (c.overflow)
    kill (c.pid, SIGKILL);
  close_fd (&c.in);
  close_fd (&c.out);
  close_fd (&c.err);
  ret = collect_status (&c);

 out:
  for (int i = 0; i < 6; ++i)
    close_fd (&fds[i]);
  close_fd (&c.in);
  close_fd (&c.out);
  close_fd (&c.err);
  close_fd (&c.pidfd);
  byte_buffer_reset (&c.err_buf);
  return ret;
}
