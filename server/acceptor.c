/* SPDX-License-Identifier: BSD-3-Clause
 * Accepting clients.  One thread at a time, the acceptor, holds the
 * listening sockets: it polls them, accepts a client, passes the role
 * on to a standby thread and then serves that client itself.  No other
 * thread has to wake up between the client's connect and the server's
 * greeting; handing each new client to another thread used to cost
 * 50-60 µs of a 170 µs connection setup on a two-CPU VM.
 *
 * The main thread keeps the other sources of the main loop.  When it
 * changes the listeners (worker mode) or shuts down, it parks the
 * acceptor first: it waits until the acceptor is out of poll and
 * accept, so no listener is closed or replaced under it.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "internal.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int_vector listening = empty_vector; /* owned here */
static bool accepting = true;   /* false once the worker stops accepting */
static bool parked;             /* the main thread wants the listeners */
static bool busy;               /* the acceptor is in poll or accept */
static bool finished;           /* the main loop ended: the acceptor ends */
static bool started;            /* a thread holds the acceptor role */
static int wake_fds[2] = { -1, -1 }; /* a byte here ends the acceptor's poll */

/* Accept one client from LISTEN_SOCK: the new socket, or -1 if there
 * was none after all or accepting failed (and was reported).
 */
static int
accept_client (int listen_sock)
{
  struct sockaddr_storage addr;
  socklen_t addrlen = sizeof addr;
  int sock, opt = 1;

  sock = accept4 (listen_sock, (struct sockaddr *) &addr, &addrlen,
                  SOCK_CLOEXEC);
  if (sock == -1) {
    switch (errno) {
    case EINTR: case EAGAIN: case ECONNABORTED:
      return -1;
    case EBADF: case ENOTSOCK: case EINVAL: case EOPNOTSUPP:
      /* The listener itself is unusable: retrying would spin. */
      nbdkit_error ("accept: %m: the listening socket is not usable");
      exit (EXIT_FAILURE);
    default:
      nbdkit_error ("accept: %m");
      /* Out of descriptors or memory: back off briefly. */
      poll (NULL, 0, 100);
      return -1;
    }
  }
  /* Latency matters more than packet count for NBD replies. */
  if (addr.ss_family == AF_INET || addr.ss_family == AF_INET6)
    setsockopt (sock, IPPROTO_TCP, TCP_NODELAY, &opt, sizeof opt);
  return sock;
}

/* The pollfd array of the acceptor: the listeners, then the wake pipe.
 * Called with the lock held.  The number of entries, or 0 if out of
 * memory (reported; the caller waits and tries again).
 */
static size_t
make_pollfds (struct pollfd **fds, size_t *cap)
{
  size_t n = listening.len + 1;

  if (n > *cap) {
    struct pollfd *p = realloc (*fds, n * sizeof *p);

    if (p == NULL) {
      nbdkit_error ("realloc: %m");
      return 0;
    }
    *fds = p;
    *cap = n;
  }
  for (size_t i = 0; i < listening.len; ++i)
    (*fds)[i] = (struct pollfd) { .fd = listening.ptr[i], .events = POLLIN };
  (*fds)[listening.len] = (struct pollfd) { .fd = wake_fds[0],
                                            .events = POLLIN };
  return n;
}

static void
drain_wake_pipe (void)
{
  char buf[64];

  while (read (wake_fds[0], buf, sizeof buf) > 0)
    ;
}

/* Poll the listeners once and accept at most one client, which is
 * admitted and counted as running (connection_accept) before the
 * acceptor stops being busy: a worker that stops accepting, or a
 * shutdown, sees every client accepted before it.  NULL if there was
 * none.
 */
static struct connection *
poll_and_accept (struct pollfd *fds, size_t n)
{
  struct connection *conn = NULL;

  if (poll (fds, n, -1) == -1) {
    if (errno != EINTR && errno != EAGAIN) {
      perror ("poll");
      exit (EXIT_FAILURE);
    }
    return NULL;
  }
  if (fds[n - 1].revents)
    drain_wake_pipe ();
  for (size_t i = 0; i + 1 < n && conn == NULL; ++i) {
    int sock;

    if (fds[i].revents == 0 || quitting ())
      continue;
    sock = accept_client (fds[i].fd);
    if (sock >= 0)
      conn = connection_accept (sock);
  }
  return conn;
}

/* Run by the thread that holds the acceptor role: accept until a
 * client comes, pass the role on and serve that client.  Returns when
 * the client has gone, or when the main loop has ended.
 */
void
acceptor_run (void)
{
  struct pollfd *fds = NULL;
  size_t cap = 0, n;
  struct connection *conn = NULL;

  while (conn == NULL) {
    pthread_mutex_lock (&lock);
    while (!finished && (parked || !accepting || listening.len == 0))
      pthread_cond_wait (&cond, &lock);
    if (finished) {
      pthread_mutex_unlock (&lock);
      break;
    }
    n = make_pollfds (&fds, &cap);
    busy = n > 0;
    pthread_mutex_unlock (&lock);
    if (n == 0) {
      poll (NULL, 0, 100);
      continue;
    }

    conn = poll_and_accept (fds, n);

    pthread_mutex_lock (&lock);
    busy = false;
    if (parked || finished)
      pthread_cond_broadcast (&cond);
    pthread_mutex_unlock (&lock);

    if (conn != NULL && pass_accept_role () == -1) {
      nbdkit_error ("pthread_create: %m: closing the new connection");
      connection_abandon (conn);
      conn = NULL;
    }
  }
  free (fds);
  if (conn != NULL)
    connection_serve_accepted (conn);
}

/* With the lock held: wait until the acceptor is out of poll and
 * accept, and keep it out until unpark.
 */
static void
park (void)
{
  parked = true;
  while (busy) {
    if (write (wake_fds[1], "", 1) == -1 && errno != EAGAIN)
      nbdkit_error ("write: %m");
    pthread_cond_wait (&cond, &lock);
  }
}

static void
unpark (void)
{
  parked = false;
  pthread_cond_broadcast (&cond);
}

/* With the lock held: the first acceptor, once there are listeners. */
static int
start_role (void)
{
  if (started || listening.len == 0)
    return 0;
  if (pass_accept_role () == -1)
    return -1;
  started = true;
  return 0;
}

/* From serve_loop: accept on LISTENERS (taken) from now on.  With none
 * (-s, or a worker given its listeners later) no thread accepts yet.
 */
void
acceptor_start (const int_vector *listeners)
{
  if (pipe2 (wake_fds, O_CLOEXEC | O_NONBLOCK) == -1) {
    perror ("pipe2");
    exit (EXIT_FAILURE);
  }
  pthread_mutex_lock (&lock);
  for (size_t i = 0; i < listeners->len; ++i)
    if (int_vector_append (&listening, listeners->ptr[i]) == -1) {
      perror ("realloc");
      exit (EXIT_FAILURE);
    }
  if (start_role () == -1) {
    perror ("pthread_create");
    exit (EXIT_FAILURE);
  }
  pthread_mutex_unlock (&lock);
}

/* The main loop has ended: the acceptor ends and the listeners are
 * closed.
 */
void
acceptor_finish (void)
{
  pthread_mutex_lock (&lock);
  park ();
  finished = true;
  pthread_cond_broadcast (&cond);
  for (size_t i = 0; i < listening.len; ++i)
    close (listening.ptr[i]);
  int_vector_reset (&listening);
  pthread_mutex_unlock (&lock);
}

/* Worker mode, stopping: the listeners belong to the supervisor and stay
 * open, but no new client is accepted.
 */
void
stop_accepting (void)
{
  pthread_mutex_lock (&lock);
  park ();
  accepting = false;
  unpark ();
  pthread_mutex_unlock (&lock);
}

/* Worker mode ("listeners"): serve the N listening sockets FDS (taken:
 * each is set to -1) instead of the current ones, which are closed (the
 * supervisor keeps its own copies).  Returns -1 with *WHY set, taking
 * nothing, if one is not a listening socket or nbdkit is stopping.
 */
int
replace_listeners (int *fds, size_t n, const char **why)
{
  int r = -1;

  for (size_t i = 0; i < n; ++i) {
    int v = 0;
    socklen_t len = sizeof v;

    if (getsockopt (fds[i], SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == -1 ||
        !v) {
      *why = "a descriptor is not a listening socket";
      return -1;
    }
  }

  pthread_mutex_lock (&lock);
  park ();
  if (!accepting || finished) {
    *why = "the worker is stopping";
    goto out;
  }
  if (int_vector_reserve (&listening, n) == -1) {
    *why = "out of memory";
    goto out;
  }
  for (size_t i = 0; i < listening.len; ++i)
    close (listening.ptr[i]);
  listening.len = 0;
  for (size_t i = 0; i < n; ++i) {
    listening.ptr[listening.len++] = fds[i];
    fds[i] = -1;
  }
  debug ("serving %zu listening socket(s) from the supervisor", n);
  if (start_role () == -1)
    nbdkit_error ("pthread_create: %m: no thread accepts clients");
  r = 0;
 out:
  unpark ();
  pthread_mutex_unlock (&lock);
  return r;
}
