/* SPDX-License-Identifier: BSD-3-Clause
 * Polling briefly for the next request before sleeping for it.
 *
 * A client that sends one request at a time (QD1) sends the next one a
 * few tens of microseconds after our reply.  Sleeping in read(2) for it
 * costs a context switch and a wake-up, which on a virtual machine are
 * most of the server's time per request (bench/RESULTS.md).  So in the
 * transmission phase, before it would sleep, the connection's reader
 * asks the socket without waiting, again and again, for up to its
 * polling window; only then does it sleep.
 *
 * The window adapts to what each wait took, as QEMU's event loop does:
 * a wait longer than --poll-max (an idle or slow client) halves it,
 * down to none; a wait longer than the window but within --poll-max (a
 * client that answers quickly) doubles it, from POLL_START_NS, up to
 * --poll-max.  So an idle connection stops polling after a few waits,
 * until its client is busy again.
 *
 * Polling pays only if a CPU is free for it.  At most one thread fewer
 * than the machine has CPUs polls at any moment in this process (on one
 * CPU, none).  And a poll that found nothing is a sign that the client
 * needed our CPU to answer: the connection then lets the next 1, 2, 4,
 * ... POLL_MAX_BACKOFF waits pass without polling, until a poll finds
 * a request again.  TLS sessions poll the same way for their records
 * (tls-io.c); -s on a pipe, which is not a socket, never polls.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/socket.h>

#include "internal.h"
#include "utils.h"

#define POLL_START_NS 4000
#define POLL_MAX_BACKOFF 1024
#define NOT_YET (-2)

static pthread_once_t pollers_once = PTHREAD_ONCE_INIT;
static unsigned max_pollers;     /* CPUs - 1 */
static unsigned pollers;         /* polling now, atomic */

static void
count_cpus (void)
{
  long n = sysconf (_SC_NPROCESSORS_ONLN);

  max_pollers = n > 1 ? n - 1 : 0;
}

/* Take a polling slot, if one is free. */
static bool
poller_enter (void)
{
  unsigned n = __atomic_load_n (&pollers, __ATOMIC_RELAXED);

  pthread_once (&pollers_once, count_cpus);
  do {
    if (n >= max_pollers)
      return false;
  } while (!__atomic_compare_exchange_n (&pollers, &n, n + 1, true,
                                         __ATOMIC_ACQUIRE, __ATOMIC_RELAXED));
  return true;
}

static void
poller_leave (void)
{
  __atomic_sub_fetch (&pollers, 1, __ATOMIC_RELEASE);
}

/* Adapt the window to a wait of WAITED ns. */
static void
adapt (struct connection *conn, int64_t waited)
{
  const int64_t max = (int64_t) config.poll_max * 1000;

  if (waited <= conn->poll_ns)
    return;                     /* within the window */
  if (waited > max)
    conn->poll_ns = conn->poll_ns / 2 >= POLL_START_NS ? conn->poll_ns / 2 : 0;
  else if (conn->poll_ns < max) {
    conn->poll_ns = conn->poll_ns ? conn->poll_ns * 2 : POLL_START_NS;
    if (conn->poll_ns > max)
      conn->poll_ns = max;
  }
}

/* Ask the socket again and again, without waiting, until it has
 * something for BUF or the window (from START) has passed: then return
 * NOT_YET, and let more waits pass before the next poll.
 */
static ssize_t
poll_socket (struct connection *conn, void *buf, size_t len, int64_t start)
{
  int64_t deadline = start + conn->poll_ns;
  ssize_t r;

  do {
    r = recv (conn->sockin, buf, len, MSG_DONTWAIT);
    if (r >= 0 || errno != EAGAIN) {
      if (r == -1 && errno == ENOTSOCK) {
        conn->poll_off = true;  /* a pipe (-s): never poll */
        return NOT_YET;
      }
      conn->poll_backoff = 0;
      conn->polls++;
      conn->polls_found++;
      return r;
    }
  } while (monotonic_ns () < deadline);

  conn->polls++;
  conn->poll_backoff = conn->poll_backoff ? conn->poll_backoff * 2 : 1;
  if (conn->poll_backoff > POLL_MAX_BACKOFF)
    conn->poll_backoff = POLL_MAX_BACKOFF;
  conn->poll_skip = conn->poll_backoff;
  return NOT_YET;
}

/* Read up to LEN bytes from the connection's socket into BUF, as
 * read(2) on a blocking socket does, polling first if the window is
 * open.  Called with the read lock held.
 */
ssize_t
read_polling (struct connection *conn, void *buf, size_t len)
{
  int64_t start;
  ssize_t r;

  if (conn->poll_off || config.poll_max == 0)
    return read (conn->sockin, buf, len);
  start = monotonic_ns ();
  if (conn->poll_skip > 0)
    conn->poll_skip--;
  else if (conn->poll_ns > 0 && poller_enter ()) {
    r = poll_socket (conn, buf, len, start);
    poller_leave ();
    if (r != NOT_YET)
      return r;
  }
  r = read (conn->sockin, buf, len);
  adapt (conn, monotonic_ns () - start);
  return r;
}

void
read_poll_report (struct connection *conn)
{
  if (conn->polls > 0)
    nbdkit_debug ("connection %" PRIu64 ": polled for the next request "
                  "%" PRIu64 " times, found it %" PRIu64 " times",
                  conn->id, conn->polls, conn->polls_found);
}
