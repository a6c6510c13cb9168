/* SPDX-License-Identifier: BSD-3-Clause
 * The one place the server becomes ready, once its listeners are open:
 * change user, fork into the background, run the after_fork callbacks,
 * write the pidfile and, in worker mode, send the ready event.
 */

#include <config.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

static void
write_pidfile (void)
{
  int fd;
  FILE *fp;

  if (!config.pidfile)
    return;
  fd = open (config.pidfile, O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, 0644);
  if (fd == -1 || (fp = fdopen (fd, "w")) == NULL) {
    nbdkit_error ("pidfile: %s: %m", config.pidfile);
    exit (EXIT_FAILURE);
  }
  fprintf (fp, "%d\n", (int) getpid ());
  if (fclose (fp) == EOF) {
    nbdkit_error ("pidfile: %s: %m", config.pidfile);
    exit (EXIT_FAILURE);
  }
  debug ("written pidfile %s", config.pidfile);
}

/* Fork into the background once listening (the default without -f). */
static void
fork_into_background (void)
{
  pid_t pid;
  int fd;

  if (config.foreground)
    return;
  pid = fork ();
  if (pid == -1) {
    perror ("fork");
    exit (EXIT_FAILURE);
  }
  if (pid > 0)
    _exit (EXIT_SUCCESS);       /* parent: the server is listening */

  setsid ();
  config.forked = true;
  if (chdir ("/") == -1)
    perror ("chdir");
  /* Detach from the terminal, but keep stderr while verbose. */
  fd = open ("/dev/null", O_RDWR);
  if (fd >= 0) {
    dup2 (fd, STDIN_FILENO);
    dup2 (fd, STDOUT_FILENO);
    if (!config.verbose)
      dup2 (fd, STDERR_FILENO);
    if (fd > STDERR_FILENO)
      close (fd);
  }
  debug ("forked into background (new pid = %d)", (int) getpid ());
}

void
server_ready (void)
{
  usergroup_change ();
  fork_into_background ();
  /* after_fork runs whether or not we forked (nbdkit-plugin(3)). */
  top->after_fork (top);
  write_pidfile ();
  control_ready ();
}
