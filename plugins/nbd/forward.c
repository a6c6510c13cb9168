/* SPDX-License-Identifier: BSD-3-Clause
 * Forwarding requests over one upstream connection.  One thread per
 * connection owns the libnbd handle: while it is busy, client threads
 * queue their requests (a lock-free list) and sleep; the owner sends them
 * with libnbd's asynchronous API, polls the socket so that libnbd can
 * read the replies, and each reply's completion callback wakes the client
 * thread that waits for it.  Many requests are therefore in flight on the
 * connection at once, and client threads do not contend for the handle's
 * lock, which is what made a proxy slow when every thread sent for
 * itself.  Only when the owner sleeps in poll with nothing queued does a
 * client thread send its request itself, saving the owner a wake-up.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
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

/* Wake the owner thread so that it polls again with libnbd's current wishes. */
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

/* The marker that closes the queue when the owner thread has ended:
 * requests queued after that fail at once.
 */
static struct request queue_closed;

/* Called by libnbd in the owner thread when the reply has arrived or the
 * request has been failed.  A semaphore, because the waiter may return
 * and discard R as soon as it is posted: sem_post is safe against that,
 * and it wakes the waiter without making it contend for a mutex that
 * this thread still holds.
 */
static int
request_completed (void *user_data, int *error)
{
  struct request *r = user_data;

  r->err = *error;
  sem_post (&r->done);
  return 1;                     /* retire the command */
}

/* The server's base:allocation flags are nbdkit's extent types. */
static int
request_extents (void *user_data, const char *metacontext, uint64_t offset,
                 uint32_t *entries, size_t nr_entries, int *error)
{
  struct request *r = user_data;

  if (strcmp (metacontext, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0)
    return 0;
  for (size_t i = 0; i + 1 < nr_entries; i += 2) {
    if (nbdkit_add_extent (r->extents, offset, entries[i],
                           entries[i + 1] & (NBDKIT_EXTENT_HOLE |
                                             NBDKIT_EXTENT_ZERO)) == -1) {
      *error = errno ? errno : EIO;
      return -1;
    }
    offset += entries[i];
  }
  return 0;
}

/* Hand R to libnbd; the cookie, or -1 if it could not be sent. */
static int64_t
submit (struct nbd_handle *nbd, struct request *r)
{
  nbd_completion_callback done = {
    .callback = request_completed, .user_data = r,
  };

  switch (r->op) {
  case REQUEST_PREAD:
    return nbd_aio_pread (nbd, r->buf, r->count, r->offset, done, 0);
  case REQUEST_PWRITE:
    return nbd_aio_pwrite (nbd, r->buf, r->count, r->offset, done, r->flags);
  case REQUEST_FLUSH:
    return nbd_aio_flush (nbd, done, 0);
  case REQUEST_TRIM:
    return nbd_aio_trim (nbd, r->count, r->offset, done, r->flags);
  case REQUEST_ZERO:
    return nbd_aio_zero (nbd, r->count, r->offset, done, r->flags);
  case REQUEST_EXTENTS:
    return nbd_aio_block_status (nbd, r->count, r->offset,
                                 (nbd_extent_callback) {
                                   .callback = request_extents,
                                   .user_data = r },
                                 done, r->flags);
  case REQUEST_CACHE:
    return nbd_aio_cache (nbd, r->count, r->offset, done, 0);
  }
  abort ();
}

/* A request that never reached libnbd (or the server) is answered here,
 * with libnbd's message copied: it is kept per thread, and the client
 * thread reports it.
 */
static void
refuse (struct request *r, int err, const char *message)
{
  r->unsent = true;
  r->err = err;
  snprintf (r->message, sizeof r->message, "%s", message);
  sem_post (&r->done);
}

/* Send everything client threads have queued, oldest first. */
static void
submit_queued (struct upstream *u)
{
  struct request *list = __atomic_exchange_n (&u->queue, NULL,
                                              __ATOMIC_SEQ_CST);
  struct request *fifo = NULL;

  while (list) {
    struct request *next = list->next;
    list->next = fifo;
    fifo = list;
    list = next;
  }
  while (fifo) {
    struct request *r = fifo;
    fifo = r->next;             /* R may be gone once it is answered */
    if (submit (u->nbd, r) == -1)
      refuse (r, upstream_errno (nbd_get_errno ()), nbd_get_error ());
  }
}

/* Close the queue for good and fail what is in it. */
static void
close_queue (struct upstream *u)
{
  struct request *list = __atomic_exchange_n (&u->queue, &queue_closed,
                                              __ATOMIC_SEQ_CST);

  while (list) {
    struct request *r = list;
    list = r->next;
    refuse (r, EIO, "the connection to the NBD server was lost");
  }
}

/* Sleep until the socket is ready the way libnbd wants, or a client
 * thread queued a request, or upstream_stop kicked.  The idle flag and
 * the queue are a pair: a client thread queues and then looks at the
 * flag, this thread sets the flag and then looks at the queue, so one of
 * them sees the other and no request waits for a wakeup that never comes.
 */
static int
wait_for_work (struct upstream *u, int fd, unsigned dir)
{
  struct pollfd fds[2] = {
    { .fd = fd, .events = 0 },
    { .fd = u->wake[0], .events = POLLIN },
  };
  int r;

  if (dir & LIBNBD_AIO_DIRECTION_READ)
    fds[0].events |= POLLIN;
  if (dir & LIBNBD_AIO_DIRECTION_WRITE)
    fds[0].events |= POLLOUT;

  __atomic_store_n (&u->idle, true, __ATOMIC_SEQ_CST);
  if (__atomic_load_n (&u->queue, __ATOMIC_SEQ_CST) != NULL) {
    __atomic_store_n (&u->idle, false, __ATOMIC_SEQ_CST);
    return 0;
  }
  r = poll (fds, 2, -1);
  __atomic_store_n (&u->idle, false, __ATOMIC_SEQ_CST);
  if (r == -1) {
    if (errno != EINTR) {
      nbdkit_debug ("nbd: poll: %m");
      nbdkit_nanosleep (0, 10 * 1000 * 1000);
    }
    return 0;
  }
  if (fds[1].revents & POLLIN)
    drain_wake_pipe (u);
  return fds[0].revents;
}

/* The owner thread.  It ends when the connection is closed or dead (libnbd
 * has then failed every request in flight, and the queue is closed) or
 * when upstream_stop asks it to.
 */
static void *
owner_thread (void *arg)
{
  struct upstream *u = arg;
  struct nbd_handle *nbd = u->nbd;
  /* The socket stays the same for the whole transmission phase. */
  const int fd = nbd_aio_get_fd (nbd);

  while (fd >= 0 && !stop_requested (u)) {
    unsigned dir;
    int revents, r = 0;

    submit_queued (u);
    dir = nbd_aio_get_direction (nbd);
    /* Nothing to wait for: the connection has ended. */
    if (dir == 0 && connection_over (nbd))
      break;

    revents = wait_for_work (u, fd, dir);
    /* A hang-up or error is discovered by reading: libnbd then moves the
     * handle to the dead state and fails the requests in flight.
     */
    if (revents & (POLLIN | POLLHUP | POLLERR))
      r = nbd_aio_notify_read (nbd);
    else if (revents & POLLOUT)
      r = nbd_aio_notify_write (nbd);
    if (r == -1) {
      nbdkit_debug ("nbd: upstream connection: %s", nbd_get_error ());
      if (connection_over (nbd))
        break;
    }
  }

  if (nbd_aio_is_dead (nbd))
    nbdkit_debug ("nbd: the connection to the NBD server is dead");
  close_queue (u);
  return NULL;
}

/* Take ownership of a connected handle and start its owner thread. */
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

  /* Signals are for nbdkit's own threads: the owner blocks them all. */
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &old);
  err = pthread_create (&u->owner, NULL, owner_thread, u);
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

/* Disconnect politely, stop the owner thread and free everything.  No
 * request may be in flight from a client thread any more.
 */
void
upstream_stop (struct upstream *u)
{
  struct timespec deadline;

  if (u == NULL)
    return;

  /* NBD_CMD_DISC: the server closes its end, the owner sees that and
   * exits by itself.  A server that does not react is cut off after a
   * grace period.
   */
  if (nbd_aio_is_ready (u->nbd) && nbd_aio_disconnect (u->nbd, 0) == 0)
    upstream_kick (u);
  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += DISCONNECT_GRACE_SECONDS;
  if (pthread_timedjoin_np (u->owner, NULL, &deadline) != 0) {
    nbdkit_debug ("nbd: the NBD server did not close the connection, "
                  "closing it now");
    __atomic_store_n (&u->stopping, true, __ATOMIC_RELEASE);
    upstream_kick (u);
    pthread_join (u->owner, NULL);
  }

  /* This also reaps (or ends) a server started with command=. */
  nbd_close (u->nbd);
  close (u->wake[0]);
  close (u->wake[1]);
  free (u);
}

/* Queue R for the owner thread and wake it if it sleeps.  Only the
 * first request queued since the owner last emptied the queue needs to
 * look: whoever queued below it has already seen to the owner.
 */
static bool
enqueue (struct upstream *u, struct request *r)
{
  struct request *old = __atomic_load_n (&u->queue, __ATOMIC_SEQ_CST);

  do {
    if (old == &queue_closed)
      return false;
    r->next = old;
  } while (!__atomic_compare_exchange_n (&u->queue, &old, r, true,
                                         __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
  if (old == NULL && __atomic_load_n (&u->idle, __ATOMIC_SEQ_CST))
    upstream_kick (u);
  return true;
}

/* Whether the owner sleeps in poll with nothing queued: no other thread
 * is then using the handle, and a request sent from the client thread
 * does not contend for its lock.  (Once the queue is closed it is never
 * empty again.)
 */
static bool
owner_asleep (struct upstream *u)
{
  return __atomic_load_n (&u->idle, __ATOMIC_SEQ_CST) &&
    __atomic_load_n (&u->queue, __ATOMIC_SEQ_CST) == NULL;
}

/* Forward R, wait for the reply and turn it into the plugin's 0, or -1
 * with an error reported and an errno set.
 */
int
upstream_request (struct upstream *u, struct request *r, const char *what)
{
  int err;

  r->err = 0;
  r->unsent = false;
  sem_init (&r->done, 0, 0);
  if (owner_asleep (u)) {
    /* Send it from here: waking the owner just to send it would cost a
     * wake-up more than the reply alone.  If the socket could not take
     * all of it, the owner must poll for writing to finish it.
     */
    if (submit (u->nbd, r) == -1)
      refuse (r, upstream_errno (nbd_get_errno ()), nbd_get_error ());
    else if (nbd_aio_get_direction (u->nbd) & LIBNBD_AIO_DIRECTION_WRITE)
      upstream_kick (u);
  }
  else if (!enqueue (u, r))
    refuse (r, EIO, "the connection to the NBD server was lost");
  while (sem_wait (&r->done) == -1)
    assert (errno == EINTR);
  sem_destroy (&r->done);

  err = r->err;
  if (err == 0)
    return 0;
  if (r->unsent)
    nbdkit_error ("%s: %s", what, r->message);
  else if (connection_over (u->nbd)) {
    nbdkit_error ("%s: the connection to the NBD server was lost", what);
    err = EIO;
  }
  else {
    nbdkit_debug ("%s: the NBD server replied: %s", what, strerror (err));
    err = upstream_errno (err);
  }
  nbdkit_set_error (err);
  return -1;
}
