/* SPDX-License-Identifier: BSD-3-Clause
 * When a connection's requests are served by more than one thread.
 *
 * One request thread per connection serves requests in turn until they
 * are seen to need more; from then on (conn->parallel) more threads
 * start as requests queue up, up to -t THREADS (connections.c).  Handing
 * every request from one thread to another costs a wake-up and a context
 * switch, more than a RAM disk takes to serve it, so a connection whose
 * requests do not wait is served fastest by one thread, which also reads
 * its requests and sends its replies in batches (connections-io.c).
 *
 * A connection goes parallel:
 * - when a request has been in progress for LONG_REQUEST_NS and its
 *   thread is asleep (not running, nor preempted) at two looks of a
 *   watchdog thread, a millisecond apart: the watchdog starts a second
 *   thread at once, so a request that waits for a long time (or for
 *   ever, until a later request arrives) never holds up the ones behind
 *   it for more than a few milliseconds;
 * - when, over a window of WINDOW measured requests, half of them waited
 *   (a voluntary context switch while serving them: the nbd plugin on a
 *   fast link), or they used more than SLOW_REQUEST_US of CPU on average
 *   over SLOW_WINDOWS windows in a row (decompression, encryption; a
 *   RAM disk's first writes, which allocate its pages, may take as long
 *   for a while).  A rare short wait, such as a lock
 *   another connection held for a moment, does not count.  The first
 *   SAMPLE_FIRST requests are measured, then one in SAMPLE_EVERY.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/resource.h>

#include "internal.h"
#include "utils.h"

#define LONG_REQUEST_NS 1000000
#define WATCH_INTERVAL_NS 1000000
#define QUIET_TICKS 1000        /* the watchdog sleeps after 1 s of quiet */
#define SLOW_REQUEST_US 1000
#define WINDOW 32
#define SLOW_WINDOWS 2         /* in a row */
#define SAMPLE_FIRST 256
#define SAMPLE_EVERY 64

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cond = PTHREAD_COND_INITIALIZER;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;
static bool watch_active;       /* the watchdog is awake */
static bool watch_failed;       /* it could not be started */

static __thread pid_t my_tid;

static void
go_parallel (struct connection *conn, const char *why)
{
  if (__atomic_exchange_n (&conn->parallel, true, __ATOMIC_ACQ_REL))
    return;
  nbdkit_debug ("connection %" PRIu64 ": requests %s: serving them on up "
                "to %u threads", conn->id, why, conn->nworkers);
}

/* Whether thread TID of this process is asleep (waiting), from its
 * state in /proc: S (interruptible) or D (uninterruptible sleep).
 */
static bool
thread_sleeping (pid_t tid)
{
  char path[64], buf[256], *p;
  ssize_t n;
  int fd;

  snprintf (path, sizeof path, "/proc/self/task/%d/stat", (int) tid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return false;
  n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  /* "TID (COMM) STATE ...": COMM may hold anything, so look after the
   * last ')'.
   */
  p = strrchr (buf, ')');
  return p && p[1] == ' ' && (p[2] == 'S' || p[2] == 'D');
}

struct tick {
  int64_t now;
  bool busy;                    /* a connection was serving a request */
};

static void
check_one (struct connection *conn, void *vtick)
{
  struct tick *tick = vtick;
  int64_t since;

  if (conn->nworkers <= 1 ||
      __atomic_load_n (&conn->parallel, __ATOMIC_ACQUIRE))
    return;
  since = __atomic_load_n (&conn->serving_since, __ATOMIC_SEQ_CST);
  if (since == 0)
    return;
  tick->busy = true;
  if (tick->now - since < LONG_REQUEST_NS)
    return;
  /* Long, but only waiting counts: a request that is running, or was
   * preempted, is not helped by a second thread.  Seen asleep at two
   * looks in a row, it is waiting.
   */
  if (!thread_sleeping (__atomic_load_n (&conn->serving_tid,
                                         __ATOMIC_ACQUIRE))) {
    conn->seen_sleeping = 0;
    return;
  }
  if (conn->seen_sleeping != since) {
    conn->seen_sleeping = since;
    return;
  }
  go_parallel (conn, "wait long");
  connection_add_worker (conn);
}

/* Looks at the connections every WATCH_INTERVAL_NS while requests are
 * being served one at a time somewhere, and sleeps otherwise.
 */
static void *
watchdog_thread (void *arg)
{
  unsigned quiet = 0;

  for (;;) {
    struct tick tick = { .busy = false };

    pthread_mutex_lock (&watch_lock);
    while (!__atomic_load_n (&watch_active, __ATOMIC_SEQ_CST))
      pthread_cond_wait (&watch_cond, &watch_lock);
    pthread_mutex_unlock (&watch_lock);

    nanosleep (&(struct timespec) { .tv_nsec = WATCH_INTERVAL_NS }, NULL);
    tick.now = monotonic_ns ();
    connection_for_each_locked (check_one, &tick);
    if (tick.busy) {
      quiet = 0;
      continue;
    }
    if (++quiet < QUIET_TICKS)
      continue;
    /* Going to sleep.  A request that starts now either sees
     * watch_active false and wakes us, or is seen by this last look.
     */
    quiet = 0;
    pthread_mutex_lock (&watch_lock);
    __atomic_store_n (&watch_active, false, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock (&watch_lock);
    tick.now = monotonic_ns ();
    connection_for_each_locked (check_one, &tick);
    if (tick.busy) {
      pthread_mutex_lock (&watch_lock);
      __atomic_store_n (&watch_active, true, __ATOMIC_SEQ_CST);
      pthread_mutex_unlock (&watch_lock);
    }
  }
  return NULL;
}

static void
start_watchdog (void)
{
  if (start_detached_thread (watchdog_thread, NULL) != 0) {
    nbdkit_debug ("pthread_create: %m: every connection serves its requests "
                  "on up to -t threads from the start");
    watch_failed = true;
  }
}

/* Signalled after the lock is released, so that the watchdog does not
 * wake only to wait for the lock.
 */
static void
wake_watchdog (void)
{
  bool wake = false;

  pthread_mutex_lock (&watch_lock);
  if (!__atomic_load_n (&watch_active, __ATOMIC_SEQ_CST)) {
    __atomic_store_n (&watch_active, true, __ATOMIC_SEQ_CST);
    wake = true;
  }
  pthread_mutex_unlock (&watch_lock);
  if (wake)
    pthread_cond_signal (&watch_cond);
}

static int64_t
cpu_us (const struct rusage *ru)
{
  return (int64_t) (ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1000000 +
    ru->ru_utime.tv_usec + ru->ru_stime.tv_usec;
}

/* Called by the request thread around each request's work. */
void
request_cost_begin (struct connection *conn, struct request_cost *c)
{
  unsigned n;

  c->watched = c->sampled = false;
  if (conn->nworkers <= 1 ||
      __atomic_load_n (&conn->parallel, __ATOMIC_ACQUIRE))
    return;
  pthread_once (&watch_once, start_watchdog);
  if (watch_failed) {
    go_parallel (conn, "cannot be watched");
    return;
  }
  c->watched = true;
  if (my_tid == 0)
    my_tid = gettid ();
  __atomic_store_n (&conn->serving_tid, my_tid, __ATOMIC_RELEASE);
  __atomic_store_n (&conn->serving_since, monotonic_ns (), __ATOMIC_SEQ_CST);
  if (!__atomic_load_n (&watch_active, __ATOMIC_SEQ_CST))
    wake_watchdog ();

  /* Only this connection's one request thread gets here. */
  n = conn->requests_seen++;
  if (n < SAMPLE_FIRST || n % SAMPLE_EVERY == 0)
    c->sampled = getrusage (RUSAGE_THREAD, &c->ru) == 0;
}

void
request_cost_end (struct connection *conn, struct request_cost *c)
{
  struct rusage ru;
  bool waited;

  if (!c->watched)
    return;
  __atomic_store_n (&conn->serving_since, 0, __ATOMIC_SEQ_CST);
  if (!c->sampled || getrusage (RUSAGE_THREAD, &ru) == -1)
    return;
  waited = ru.ru_nvcsw > c->ru.ru_nvcsw;
  conn->window_cpu_us += cpu_us (&ru) - cpu_us (&c->ru);
  conn->window_waits += waited;
  if (++conn->window_requests < WINDOW)
    return;
  if (conn->window_waits * 2 >= conn->window_requests)
    go_parallel (conn, "often wait");
  else if (conn->window_cpu_us <= SLOW_REQUEST_US * conn->window_requests)
    conn->slow_windows = 0;
  else if (++conn->slow_windows >= SLOW_WINDOWS) {
    nbdkit_debug ("connection %" PRIu64 ": %" PRIi64 " µs of CPU per "
                  "request over the last %u measured", conn->id,
                  conn->window_cpu_us / conn->window_requests,
                  conn->window_requests);
    go_parallel (conn, "are slow");
  }
  conn->window_requests = conn->window_waits = 0;
  conn->window_cpu_us = 0;
}
