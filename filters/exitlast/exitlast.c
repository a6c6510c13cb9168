/* SPDX-License-Identifier: BSD-3-Clause
 * The exitlast filter: shut the server down when the last client
 * disconnects (but not before the first one has connected).
 */

#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <nbdkit-filter.h>

#include "cleanup.h"

/* Clients that currently have the export open. */
static unsigned connections;

/* When the count drops to 0 the export may only have been closed for a
 * while: a client that asks NBD_OPT_INFO before NBD_OPT_GO closes it in
 * between.  So the server is only stopped once the thread that closed
 * it has finished with the connection (the server serves each client
 * from one thread) and no client has opened the export since.  A
 * watcher thread waits for that; closing_tid is the thread it waits
 * for, 0 if none.
 */
static pid_t closing_tid;
static bool watcher_running, stop_watcher;
static pthread_t watcher;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;

/* How often to look again while the closing thread is still alive. */
#define WATCH_INTERVAL_NS 50000000

/* Without /proc this says "gone" and the server stops at once. */
static bool
thread_is_alive (pid_t tid)
{
  char path[64];
  struct stat st;

  snprintf (path, sizeof path, "/proc/self/task/%d", (int) tid);
  return stat (path, &st) == 0;
}

static void
shutdown_server (void)
{
  nbdkit_debug ("exitlast: the last client has gone, shutting down");
  nbdkit_shutdown ();
}

static void *
watch_last_close (void *arg)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);

  while (!stop_watcher) {
    pid_t tid = closing_tid;
    bool alive;

    if (tid == 0) {
      pthread_cond_wait (&wake, &lock);
      continue;
    }
    pthread_mutex_unlock (&lock);
    alive = thread_is_alive (tid);
    pthread_mutex_lock (&lock);

    if (closing_tid != tid)
      continue;                 /* a client opened the export meanwhile */
    if (!alive) {
      closing_tid = 0;
      shutdown_server ();
      continue;
    }
    {
      struct timespec deadline;
      clock_gettime (CLOCK_REALTIME, &deadline);
      deadline.tv_nsec += WATCH_INTERVAL_NS;
      if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait (&wake, &lock, &deadline);
    }
  }
  return NULL;
}

/* Threads do not survive the fork into the background. */
static int
exitlast_after_fork (nbdkit_backend *nxdata)
{
  int err = pthread_create (&watcher, NULL, watch_last_close, NULL);

  if (err) {
    errno = err;
    nbdkit_error ("cannot start the watcher thread: %m");
    return -1;
  }
  watcher_running = true;
  return 0;
}

static void
exitlast_cleanup (nbdkit_backend *nxdata)
{
  if (!watcher_running)
    return;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    stop_watcher = true;
    pthread_cond_signal (&wake);
  }
  pthread_join (watcher, NULL);
  watcher_running = false;
}

static void *
exitlast_open (nbdkit_next_open *next, nbdkit_context *context,
               int readonly, const char *exportname, int is_tls)
{
  if (next (context, readonly, exportname) == -1)
    return NULL;

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  connections++;
  closing_tid = 0;
  return NBDKIT_HANDLE_NOT_NEEDED;
}

static void
exitlast_close (void *handle)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  if (--connections > 0)
    return;
  if (watcher_running) {
    closing_tid = gettid ();
    pthread_cond_signal (&wake);
  }
  else
    /* Serving stdin (-s): this was the only client anyway. */
    shutdown_server ();
}

static struct nbdkit_filter filter = {
  .name              = "exitlast",
  .longname          = "nbdkit exitlast filter",
  .version           = PACKAGE_VERSION,
  .description       = "Exit the server when the last client disconnects",
  .after_fork        = exitlast_after_fork,
  .cleanup           = exitlast_cleanup,
  .open              = exitlast_open,
  .close             = exitlast_close,
};

NBDKIT_REGISTER_FILTER (filter)
