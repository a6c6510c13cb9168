/* SPDX-License-Identifier: BSD-3-Clause
 * Forwarding requests over one upstream connection.  Client threads send
 * with libnbd's asynchronous API and then sleep; one reader thread per
 * connection polls the socket so that libnbd can read replies (and finish
 * sending requests the socket could not take at once), and each reply's
 * completion callback wakes the client thread that is waiting for it.
 * Many requests are therefore in flight on the connection at once.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "nbd-internal.h"

/* How long closing waits for the server to acknowledge NBD_CMD_DISC
 * before dropping the connection anyway.
 */
#define DISCONNECT_GRACE_SECONDS 5

/* Wake the reader so that it polls again with libnbd's current wishes. */
static void
upstream_kick (struct upstream *u)
{
  const char c = 0;

  /* EAGAIN: the pipe is full, so a wakeup is already pending. */
  if (write (u->wake[1], &c, 1) == -1 && errno != EAGAIN)
    nbdkit_debug ("nbd: write to the wakeup pipe: %m");
}

static void
drain_wake_pipe (struct upstream *u)
{
  char buf[64];

  while (read (u->wake[0], buf, sizeof buf) > 0)
    ;
}

static bool
stop_requested (struct upstream *u)
{
  return __atomic_load_n (&u->stopping, __ATOMIC_ACQUIRE);
}

static bool
connection_over (struct nbd_handle *nbd)
{
  return nbd_aio_is_dead (nbd) || nbd_aio_is_closed (nbd);
}

/* The reader loop.  It ends when the connection is closed or dead (libnbd
 * has then failed every request still in flight, so no client thread is
 * left waiting) or when upstream_stop asks it to.  Every libnbd call
 * takes the handle's lock, which client threads need in order to send,
 * so each round makes only two: the direction, and the notification.
 */
static void *
reader_thread (void *arg)
{
  struct upstream *u = arg;
  struct nbd_handle *nbd = u->nbd;
  /* The socket stays the same for the whole transmission phase. */
  const int fd = nbd_aio_get_fd (nbd);

  if (fd == -1)
    return NULL;

  while (!stop_requested (u)) {
    unsigned dir = nbd_aio_get_direction (nbd);
    struct pollfd fds[2];
    int r = 0;

    fds[0].fd = fd;
    fds[0].events = 0;
    if (dir & LIBNBD_AIO_DIRECTION_READ)
      fds[0].events |= POLLIN;
    if (dir & LIBNBD_AIO_DIRECTION_WRITE)
      fds[0].events |= POLLOUT;
    fds[0].revents = 0;
    fds[1].fd = u->wake[0];
    fds[1].events = POLLIN;
    fds[1].revents = 0;

    /* Nothing to wait for: the connection has ended. */
    if (dir == 0 && connection_over (nbd))
      break;

    if (poll (fds, 2, -1) == -1) {
      if (errno != EINTR) {
        nbdkit_debug ("nbd: poll: %m");
        nbdkit_nanosleep (0, 10 * 1000 * 1000);
      }
      continue;
    }
    /* A wakeup may mean that a client thread found the connection dead. */
    if (fds[1].revents & POLLIN) {
      drain_wake_pipe (u);
      if (connection_over (nbd))
        break;
    }

    /* A hang-up or error is discovered by reading: libnbd then moves the
     * handle to the dead state and fails the requests in flight.
     */
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR))
      r = nbd_aio_notify_read (nbd);
    else if (fds[0].revents & POLLOUT)
      r = nbd_aio_notify_write (nbd);
    if (r == -1) {
      nbdkit_debug ("nbd: upstream connection: %s", nbd_get_error ());
      if (connection_over (nbd))
        break;
    }
  }

  if (nbd_aio_is_dead (nbd))
    nbdkit_debug ("nbd: the connection to the NBD server is dead");
  return NULL;
}

/* Take ownership of a connected handle and start its reader thread. */
struct upstream *
upstream_start (struct nbd_handle *nbd)
{
  struct upstream *u = calloc (1, sizeof *u);
  sigset_t all, old;
  int err;

  if (u == NULL) {
    nbdkit_error ("calloc: %m");
    nbd_close (nbd);
    return NULL;
  }
  u->nbd = nbd;
  if (pipe2 (u->wake, O_CLOEXEC | O_NONBLOCK) == -1) {
    nbdkit_error ("pipe2: %m");
    nbd_close (nbd);
    free (u);
    return NULL;
  }

  /* Signals are for nbdkit's own threads: the reader blocks them all. */
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  err = pthread_create (&u->reader, NULL, reader_thread, u);
  pthread_sigmask (SIG_SETMASK, &old, NULL);
  if (err != 0) {
    errno = err;
    nbdkit_error ("pthread_create: %m");
    close (u->wake[0]);
    close (u->wake[1]);
    nbd_close (nbd);
    free (u);
    return NULL;
  }
  return u;
}

/* Disconnect politely, stop the reader and free everything.  No request
 * may be in flight from a client thread any more.
 */
void
upstream_stop (struct upstream *u)
{
  struct timespec deadline;

  if (u == NULL)
    return;

  /* NBD_CMD_DISC: the server closes its end, the reader sees that and
   * exits by itself.  A server that does not react is cut off after a
   * grace period.
   */
  if (nbd_aio_is_ready (u->nbd) && nbd_aio_disconnect (u->nbd, 0) == 0)
    upstream_kick (u);
  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += DISCONNECT_GRACE_SECONDS;
  if (pthread_timedjoin_np (u->reader, NULL, &deadline) != 0) {
    nbdkit_debug ("nbd: the NBD server did not close the connection, "
                  "closing it now");
    __atomic_store_n (&u->stopping, true, __ATOMIC_RELEASE);
    upstream_kick (u);
    pthread_join (u->reader, NULL);
  }

  /* This also reaps (or ends) a server started with command=. */
  nbd_close (u->nbd);
  close (u->wake[0]);
  close (u->wake[1]);
  free (u);
}

void
request_init (struct request *r)
{
  sem_init (&r->done, 0, 0);
  r->err = 0;
}

/* Called by libnbd (usually in the reader thread) when the reply has
 * arrived or the request has been failed.  A semaphore, because the
 * waiter may return and discard R as soon as it is posted: sem_post is
 * safe against that, and it wakes the waiter without making it contend
 * for a mutex that this thread still holds.
 */
static int
request_completed (void *user_data, int *error)
{
  struct request *r = user_data;

  r->err = *error;
  sem_post (&r->done);
  return 1;                     /* retire the command */
}

nbd_completion_callback
request_completion (struct request *r)
{
  return (nbd_completion_callback) {
    .callback = request_completed, .user_data = r,
  };
}

/* COOKIE is what the nbd_aio_* call that used R's completion returned.
 * Wait for the reply and turn it into the plugin's 0 / -1 with an errno.
 */
int
request_finish (struct upstream *u, struct request *r, int64_t cookie,
                const char *what)
{
  int err;

  if (cookie == -1) {
    /* Not sent at all, so the completion will never run. */
    err = upstream_errno (nbd_get_errno ());
    nbdkit_error ("%s: %s", what, nbd_get_error ());
    if (connection_over (u->nbd)) {
      err = EIO;
      upstream_kick (u);        /* the reader may not have noticed */
    }
  }
  else {
    /* libnbd sends from this thread; if the socket could not take the
     * whole request, the reader has to finish sending it.
     */
    if (nbd_aio_get_direction (u->nbd) & LIBNBD_AIO_DIRECTION_WRITE)
      upstream_kick (u);

    while (sem_wait (&r->done) == -1)
      assert (errno == EINTR);
    err = r->err;
    if (err != 0) {
      if (connection_over (u->nbd)) {
        nbdkit_error ("%s: the connection to the NBD server was lost", what);
        err = EIO;
        upstream_kick (u);
      }
      else {
        nbdkit_debug ("%s: the NBD server replied: %s", what, strerror (err));
        err = upstream_errno (err);
      }
    }
  }

  sem_destroy (&r->done);
  if (err != 0) {
    nbdkit_set_error (err);
    return -1;
  }
  return 0;
}
