/* SPDX-License-Identifier: BSD-3-Clause
 * Interactive polkit authorization: before a call that changes something,
 * start pkttyagent for this process when someone is at the terminal, so
 * that polkit can ask for a password instead of refusing.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>

#include "nbdkitctl.h"

#define PKTTYAGENT "/usr/bin/pkttyagent"

static pid_t agent_pid;

static void
agent_exec (int notify_fd, pid_t parent)
{
  char fd_arg[32], pid_arg[32];

  snprintf (fd_arg, sizeof fd_arg, "--notify-fd=%d", notify_fd);
  snprintf (pid_arg, sizeof pid_arg, "--process=%ld", (long) parent);
  execl (PKTTYAGENT, PKTTYAGENT, fd_arg, pid_arg, "--fallback",
         (char *) NULL);
  _exit (127);
}

void
polkit_agent_open_if_enabled (void)
{
  struct pollfd pfd;
  int pipefd[2];
  pid_t parent = getpid ();
  char c;

  if (agent_pid > 0 || !config.ask_password || geteuid () == 0
      || !isatty (STDIN_FILENO) || !isatty (STDERR_FILENO)
      || access (PKTTYAGENT, X_OK) != 0)
    return;
  if (pipe2 (pipefd, O_CLOEXEC) == -1)
    return;
  agent_pid = fork ();
  if (agent_pid == 0) {
    close (pipefd[0]);
    /* The notify descriptor must survive exec. */
    fcntl (pipefd[1], F_SETFD, 0);
    agent_exec (pipefd[1], parent);
  }
  close (pipefd[1]);
  if (agent_pid < 0) {
    agent_pid = 0;
    close (pipefd[0]);
    return;
  }
  /* The agent closes the descriptor once registered; do not wait for
   * ever if it cannot.
   */
  pfd = (struct pollfd) { .fd = pipefd[0], .events = POLLIN };
  if (poll (&pfd, 1, 10000) > 0)
    (void) !read (pipefd[0], &c, 1);
  close (pipefd[0]);
}

void
polkit_agent_close (void)
{
  if (agent_pid <= 0)
    return;
  kill (agent_pid, SIGTERM);
  while (waitpid (agent_pid, NULL, 0) == -1 && errno == EINTR)
    ;
  agent_pid = 0;
}
