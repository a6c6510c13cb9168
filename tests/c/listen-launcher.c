/* SPDX-License-Identifier: BSD-3-Clause
 * A minimal socket-activation launcher for the tests: bind the listening
 * sockets named on the command line, fork, and in the child put them on
 * fds 3, 4, ... with LISTEN_FDS / LISTEN_PID (= the child's own pid, which
 * a shell cannot know before exec) / LISTEN_FDNAMES set, then exec the
 * command.  The parent forwards SIGTERM/SIGINT and exits like the child.
 *
 *   listen-launcher [-n NAMES] [-F FDS] [-P PID] [-w ADDRFILE] \
 *                   SOCKET... -- COMMAND [ARG...]
 *
 *   SOCKET   unix:PATH   a listening Unix stream socket at PATH
 *            tcp:PORT    a listening TCP socket on 127.0.0.1 (0 = any
 *                        free port; the chosen one goes to ADDRFILE)
 *            file:PATH   PATH opened read-only: a fd that is not a socket
 *            pair        one end of a connected socketpair: a socket
 *                        that is not listening (what Accept=yes passes)
 *   -n       LISTEN_FDNAMES (unset if not given)
 *   -F       LISTEN_FDS verbatim (default: the number of SOCKETs)
 *   -P       LISTEN_PID: "child" (default), "parent" (our pid, which is
 *            not the server's), or any string verbatim
 *   -w       write one line per SOCKET, "unix:PATH" or "tcp:PORT", once
 *            every socket is listening
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#define FIRST_FD 3              /* sd_listen_fds(3): SD_LISTEN_FDS_START */
#define MAX_SOCKETS 16
/* Where the fds wait before being moved down to 3, 4, ...: above any
 * fd they could collide with.
 */
#define PARKING_FD 100

static pid_t child = -1;

static void
die (const char *what)
{
  fprintf (stderr, "listen-launcher: %s: %s\n", what, strerror (errno));
  exit (EXIT_FAILURE);
}

static void
usage (void)
{
  fprintf (stderr, "usage: listen-launcher [-n NAMES] [-F FDS] [-P PID] "
           "[-w ADDRFILE] SOCKET... -- COMMAND [ARG...]\n");
  exit (EXIT_FAILURE);
}

static int
listen_unix (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int fd;

  if (strlen (path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    die (path);
  }
  strcpy (addr.sun_path, path);
  fd = socket (AF_UNIX, SOCK_STREAM, 0);
  if (fd == -1)
    die ("socket");
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) == -1)
    die (path);
  if (listen (fd, SOMAXCONN) == -1)
    die ("listen");
  return fd;
}

/* Returns the fd; *port is updated to the port actually bound. */
static int
listen_tcp (int *port)
{
  struct sockaddr_in addr = {
    .sin_family = AF_INET,
    .sin_port = htons (*port),
    .sin_addr.s_addr = htonl (INADDR_LOOPBACK),
  };
  socklen_t len = sizeof addr;
  int fd, on = 1;

  fd = socket (AF_INET, SOCK_STREAM, 0);
  if (fd == -1)
    die ("socket");
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) == -1)
    die ("bind 127.0.0.1");
  if (listen (fd, SOMAXCONN) == -1)
    die ("listen");
  if (getsockname (fd, (struct sockaddr *) &addr, &len) == -1)
    die ("getsockname");
  *port = ntohs (addr.sin_port);
  return fd;
}

static void
forward_signal (int sig)
{
  if (child > 0)
    kill (child, sig);
}

int
main (int argc, char *argv[])
{
  const char *names = NULL, *fds_value = NULL, *pid_value = "child";
  const char *addrfile = NULL;
  int socks[MAX_SOCKETS];
  int peer_fds[MAX_SOCKETS], nr_peers = 0;
  char addrs[MAX_SOCKETS][256];
  int nr = 0, opt, i, status;
  FILE *fp;

  while ((opt = getopt (argc, argv, "+n:F:P:w:")) != -1) {
    switch (opt) {
    case 'n': names = optarg; break;
    case 'F': fds_value = optarg; break;
    case 'P': pid_value = optarg; break;
    case 'w': addrfile = optarg; break;
    default: usage ();
    }
  }

  for (; optind < argc && strcmp (argv[optind], "--") != 0; ++optind) {
    const char *spec = argv[optind];

    if (nr == MAX_SOCKETS)
      usage ();
    if (strncmp (spec, "unix:", 5) == 0) {
      socks[nr] = listen_unix (spec + 5);
      snprintf (addrs[nr], sizeof addrs[nr], "%s", spec);
    }
    else if (strncmp (spec, "tcp:", 4) == 0) {
      int port = atoi (spec + 4);
      socks[nr] = listen_tcp (&port);
      snprintf (addrs[nr], sizeof addrs[nr], "tcp:%d", port);
    }
    else if (strcmp (spec, "pair") == 0) {
      int sv[2];
      /* The other end stays open in the parent until the child has
       * exited, so the server sees a live, connected peer.
       */
      if (socketpair (AF_UNIX, SOCK_STREAM, 0, sv) == -1)
        die ("socketpair");
      socks[nr] = sv[0];
      peer_fds[nr_peers++] = sv[1];
      snprintf (addrs[nr], sizeof addrs[nr], "pair");
    }
    else if (strncmp (spec, "file:", 5) == 0) {
      socks[nr] = open (spec + 5, O_RDONLY);
      if (socks[nr] == -1)
        die (spec + 5);
      snprintf (addrs[nr], sizeof addrs[nr], "%s", spec);
    }
    else
      usage ();
    /* Park it high so moving the set down to 3.. never clobbers one. */
    if (dup2 (socks[nr], PARKING_FD + nr) == -1)
      die ("dup2");
    close (socks[nr]);
    socks[nr] = PARKING_FD + nr;
    nr++;
  }
  if (optind >= argc - 1)       /* no "--" or no command after it */
    usage ();
  optind++;

  if (addrfile) {
    /* Write to a temporary name and rename, so a reader polling for
     * the file never sees it half written.
     */
    char tmp[4096];
    snprintf (tmp, sizeof tmp, "%s.tmp", addrfile);
    fp = fopen (tmp, "w");
    if (fp == NULL)
      die (tmp);
    for (i = 0; i < nr; ++i)
      fprintf (fp, "%s\n", addrs[i]);
    if (fclose (fp) == EOF || rename (tmp, addrfile) == -1)
      die (addrfile);
  }

  /* Set before forking so no signal can slip through; exec resets the
   * child's handlers to the default.
   */
  signal (SIGTERM, forward_signal);
  signal (SIGINT, forward_signal);
  fflush (NULL);
  child = fork ();
  if (child == -1)
    die ("fork");

  if (child == 0) {
    char buf[32];

    /* dup2 clears FD_CLOEXEC, so the server inherits exactly these:
     * nothing else from the test's shell may sit on fd 3 and up.
     */
    for (i = 0; i < nr; ++i)
      if (dup2 (socks[i], FIRST_FD + i) == -1)
        die ("dup2");
    closefrom (FIRST_FD + nr);
    snprintf (buf, sizeof buf, "%d", nr);
    setenv ("LISTEN_FDS", fds_value ? fds_value : buf, 1);
    if (strcmp (pid_value, "child") == 0)
      snprintf (buf, sizeof buf, "%d", (int) getpid ());
    else if (strcmp (pid_value, "parent") == 0)
      snprintf (buf, sizeof buf, "%d", (int) getppid ());
    else
      snprintf (buf, sizeof buf, "%s", pid_value);
    setenv ("LISTEN_PID", buf, 1);
    if (names)
      setenv ("LISTEN_FDNAMES", names, 1);
    else
      unsetenv ("LISTEN_FDNAMES");
    execvp (argv[optind], &argv[optind]);
    fprintf (stderr, "listen-launcher: exec: %s: %s\n",
             argv[optind], strerror (errno));
    _exit (127);
  }

  for (i = 0; i < nr; ++i)
    close (socks[i]);

  while (waitpid (child, &status, 0) == -1)
    if (errno != EINTR)
      die ("waitpid");
  for (i = 0; i < nr_peers; ++i)
    close (peer_fds[i]);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return WEXITSTATUS (status);
}
