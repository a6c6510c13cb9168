/* SPDX-License-Identifier: BSD-3-Clause
 * Limits that keep hostile or unlucky clients from holding the server:
 * a deadline for the handshake (--handshake-timeout), enforced by one
 * watchdog thread, and a cap on concurrent connections
 * (--max-connections) that evicts the oldest client still in its
 * handshake before it refuses anyone.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "internal.h"
#include "utils.h"
#include "cleanup.h"

/* Connections in their handshake, and the watchdog that times them out. */
static pthread_mutex_t watchdog_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watchdog_cond = PTHREAD_COND_INITIALIZER;
static unsigned in_handshake;
static pthread_once_t watchdog_once = PTHREAD_ONCE_INIT;

/* Enough file descriptors for the connection limit: each connection
 * holds its socket and, with parallel requests, a wake-up pipe.
 */
void
connection_limits_init (void)
{
  struct rlimit rl;
  rlim_t want = (rlim_t) config.max_connections * 3 + 64;

  if (getrlimit (RLIMIT_NOFILE, &rl) == -1)
    return;
  if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit (RLIMIT_NOFILE, &rl) == -1)
      debug ("setrlimit RLIMIT_NOFILE: %m, ignoring");
  }
  if (rl.rlim_cur < want)
    debug ("only %ju file descriptors for %u connections: "
           "accepting may fail before --max-connections is reached",
           (uintmax_t) rl.rlim_cur, config.max_connections);
}

static void
expire_one (struct connection *conn, void *vnow)
{
  int64_t now = *(int64_t *) vnow;
  int64_t deadline = __atomic_load_n (&conn->handshake_deadline,
                                      __ATOMIC_ACQUIRE);

  if (deadline > 0 && deadline <= now && !conn->limit_dropped) {
    conn->limit_dropped = true;
    nbdkit_error ("connection %" PRIu64 ": no complete handshake within %u "
                  "seconds (--handshake-timeout), closing it",
                  conn->id, config.handshake_timeout);
    connection_disconnect (conn, true, CLOSE_BY_ERROR);
  }
}

/* Wakes twice a second while any connection is in its handshake, and
 * sleeps otherwise.
 */
static void *
watchdog_thread (void *arg)
{
  for (;;) {
    int64_t now;

    pthread_mutex_lock (&watchdog_lock);
    while (in_handshake == 0)
      pthread_cond_wait (&watchdog_cond, &watchdog_lock);
    pthread_mutex_unlock (&watchdog_lock);

    nanosleep (&(struct timespec) { .tv_nsec = 500000000 }, NULL);
    now = monotonic_ns ();
    connection_for_each_locked (expire_one, &now);
  }
  return NULL;
}

static void
start_watchdog (void)
{
  if (start_detached_thread (watchdog_thread, NULL) != 0)
    nbdkit_error ("pthread_create: %m: handshakes will have no time limit");
}

void
connection_limits_handshake_begin (struct connection *conn)
{
  bool first;

  __atomic_store_n (&conn->in_handshake, true, __ATOMIC_RELEASE);
  if (config.handshake_timeout == 0)
    return;
  pthread_once (&watchdog_once, start_watchdog);
  __atomic_store_n (&conn->handshake_deadline,
                    monotonic_ns () + (int64_t) config.handshake_timeout *
                    1000000000, __ATOMIC_RELEASE);
  pthread_mutex_lock (&watchdog_lock);
  first = in_handshake++ == 0;
  pthread_mutex_unlock (&watchdog_lock);
  /* After the unlock, so that the watchdog does not wake to a held lock. */
  if (first)
    pthread_cond_signal (&watchdog_cond);
}

/* Called when the handshake ends, well or badly: by the handshake code
 * just before its final reply (so the client can never see the
 * transmission phase before the server does), and again by the
 * connection thread after it, which does nothing then.
 */
void
connection_limits_handshake_end (struct connection *conn)
{
  if (!__atomic_exchange_n (&conn->in_handshake, false, __ATOMIC_ACQ_REL))
    return;
  if (config.handshake_timeout == 0)
    return;
  __atomic_store_n (&conn->handshake_deadline, 0, __ATOMIC_RELEASE);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&watchdog_lock);
  in_handshake--;
}

/* At most this many evicted connections may still be closing down: past
 * it, new clients are refused until they are gone, so threads and file
 * descriptors stay bounded by --max-connections plus this.
 */
#define MAX_CLOSING_EVICTED 64

/* What admission needs to know about the live connections. */
struct census {
  unsigned live;                /* not already refused or evicted */
  unsigned dropped;             /* evicted or timed out, still closing */
  uint64_t oldest_handshake;    /* its id, 0 if none */
};

static void
count_one (struct connection *conn, void *vcensus)
{
  struct census *census = vcensus;

  if (conn->limit_dropped) {
    census->dropped++;
    return;
  }
  census->live++;
  /* Hand-overs and the accept loop both start connections; ids grow
   * with time, so the smallest id in its handshake is the oldest.
   */
  if (__atomic_load_n (&conn->in_handshake, __ATOMIC_ACQUIRE) &&
      (census->oldest_handshake == 0 ||
       conn->id < census->oldest_handshake))
    census->oldest_handshake = conn->id;
}

static void
evict_oldest (struct connection *conn, void *vid)
{
  if (conn->id == *(uint64_t *) vid && !conn->limit_dropped) {
    conn->limit_dropped = true;
    nbdkit_error ("connection %" PRIu64 ": evicted because the limit of %u "
                  "connections (--max-connections) was reached and it had "
                  "not finished its handshake", conn->id,
                  config.max_connections);
    connection_disconnect (conn, true, CLOSE_BY_ERROR);
  }
}

/* Whether a new connection may start.  At the limit, the oldest client
 * still in its handshake makes room; if every connection is serving (or
 * too many evicted ones are still closing), the new one is refused (the
 * caller closes it).
 */
bool
connection_limits_admit (void)
{
  struct census census = { 0 };

  connection_for_each_locked (count_one, &census);
  if (census.live < config.max_connections)
    return true;
  if (census.oldest_handshake != 0 && census.dropped < MAX_CLOSING_EVICTED) {
    connection_for_each_locked (evict_oldest, &census.oldest_handshake);
    return true;
  }
  nbdkit_error ("refusing a new connection: the limit of %u connections "
                "(--max-connections) is reached", config.max_connections);
  return false;
}
