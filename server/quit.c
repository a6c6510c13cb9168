/* SPDX-License-Identifier: BSD-3-Clause
 * Asking the server to stop: a flag plus a pipe that becomes readable, so
 * threads sleeping in poll wake up.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

volatile int quit;
int quit_fd = -1;
static int write_quit_fd = -1;

void
set_up_quit_pipe (void)
{
  int fds[2];

  if (pipe2 (fds, O_CLOEXEC) == -1) {
    perror ("pipe2");
    exit (EXIT_FAILURE);
  }
  quit_fd = fds[0];
  write_quit_fd = fds[1];
}

void
close_quit_pipe (void)
{
  if (quit_fd >= 0)
    close (quit_fd);
  if (write_quit_fd >= 0)
    close (write_quit_fd);
  quit_fd = write_quit_fd = -1;
}

/* Async-signal-safe. */
void
handle_quit (int sig)
{
  int saved_errno = errno;
  char c = sig;
  ssize_t r;

  __atomic_store_n (&quit, 1, __ATOMIC_RELEASE);
  if (write_quit_fd >= 0)
    r = write (write_quit_fd, &c, 1);
  (void) r;
  errno = saved_errno;
}

void
set_quit (void)
{
  handle_quit (0);
}

/* Plugins and filters may ask the whole server to stop. */
NBDKIT_DLL_PUBLIC void
nbdkit_shutdown (void)
{
  set_quit ();
}
