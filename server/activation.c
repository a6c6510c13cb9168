/* SPDX-License-Identifier: BSD-3-Clause
 * Socket activation (sd_listen_fds(3)): the descriptors inherited from
 * fd 3 on.  The one named "control" in LISTEN_FDNAMES is the worker's
 * control socket (nbdkit-worker(7)); every other one is a listener.
 */

#include <config.h>

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "internal.h"
#include "cleanup.h"

#define FIRST_FD 3
#define MAX_FDS 1024

static int_vector listeners = empty_vector;

static void activation_error (const char *fs, ...)
  __attribute__ ((__format__ (__printf__, 1, 2), __noreturn__));

static void
activation_error (const char *fs, ...)
{
  va_list args;

  fprintf (stderr, "%s: socket activation: ", config.program_name);
  va_start (args, fs);
  vfprintf (stderr, fs, args);
  va_end (args);
  fprintf (stderr, "\n");
  exit (EXIT_FAILURE);
}

/* The NAME of fd 3 + I in LISTEN_FDNAMES (colon separated), or "". */
static void
fd_name (const char *names, unsigned i, char *name, size_t len)
{
  const char *p = names ? names : "";

  for (; i > 0 && p; --i) {
    p = strchr (p, ':');
    if (p)
      p++;
  }
  name[0] = '\0';
  if (p) {
    size_t n = strcspn (p, ":");
    if (n < len) {
      memcpy (name, p, n);
      name[n] = '\0';
    }
  }
}

static bool
socket_type_is (int fd, int want)
{
  int type;
  socklen_t len = sizeof type;

  return getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
    type == want;
}

static bool
is_listening (int fd)
{
  int listening = 0;
  socklen_t len = sizeof listening;

  return getsockopt (fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 &&
    listening;
}

/* Find the control socket first, so that worker mode reports the
 * problems with the other descriptors as an error event.
 */
static int
find_control_fd (unsigned fds, const char *names)
{
  int control = -1;

  for (unsigned i = 0; i < fds; ++i) {
    char name[256];

    fd_name (names, i, name, sizeof name);
    if (strcmp (name, "control") != 0)
      continue;
    if (control >= 0)
      activation_error ("more than one descriptor is named \"control\" "
                        "(fd %d)", FIRST_FD + i);
    control = FIRST_FD + i;
    if (!socket_type_is (control, SOCK_SEQPACKET))
      activation_error ("fd %d is named \"control\" but is not a "
                        "SOCK_SEQPACKET socket", control);
    fcntl (control, F_SETFD, FD_CLOEXEC);
  }
  return control;
}

/* Take the inherited sockets if LISTEN_PID is our pid.  Called before
 * anything else opens a descriptor that could take their numbers.
 */
void
activation_check (void)
{
  const char *s_pid = getenv ("LISTEN_PID");
  const char *s_fds = getenv ("LISTEN_FDS");
  const char *names = getenv ("LISTEN_FDNAMES");
  unsigned pid, fds;

  if (s_pid == NULL || s_fds == NULL)
    return;
  if (nbdkit_parse_unsigned ("LISTEN_PID", s_pid, &pid) == -1 ||
      nbdkit_parse_unsigned ("LISTEN_FDS", s_fds, &fds) == -1)
    exit (EXIT_FAILURE);
  if ((pid_t) pid != getpid ()) {
    fprintf (stderr, "%s: warning: LISTEN_PID=%s is not our pid (%d), "
             "ignoring socket activation\n",
             config.program_name, s_pid, (int) getpid ());
    return;
  }
  if (fds < 1 || fds > MAX_FDS)
    activation_error ("LISTEN_FDS=%s: the number of sockets must be "
                      "between 1 and %d", s_fds, MAX_FDS);
  config.socket_activation = true;
  config.control_fd = find_control_fd (fds, names);
  if (config.control_fd >= 0)
    control_init (config.control_fd);

  for (unsigned i = 0; i < fds; ++i) {
    int fd = FIRST_FD + i, flags;
    struct stat st;

    if (fd == config.control_fd)
      continue;
    flags = fcntl (fd, F_GETFD);
    if (flags == -1 || fstat (fd, &st) == -1)
      activation_error ("LISTEN_FDS=%s but fd %d is not open", s_fds, fd);
    if (!S_ISSOCK (st.st_mode) || !is_listening (fd))
      activation_error ("fd %d is not a listening socket", fd);
    fcntl (fd, F_SETFD, flags | FD_CLOEXEC);
    if (int_vector_append (&listeners, fd) == -1) {
      perror ("realloc");
      exit (EXIT_FAILURE);
    }
  }
  config.listen_fds = listeners.len;

  unsetenv ("LISTEN_PID");
  unsetenv ("LISTEN_FDS");
  unsetenv ("LISTEN_FDNAMES");
}

/* The inherited listening sockets (the caller owns the vector). */
int_vector
activation_listeners (void)
{
  int_vector r = listeners;

  listeners = (int_vector) empty_vector;
  debug ("using %zu socket(s) from socket activation", r.len);
  return r;
}
