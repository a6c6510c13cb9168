/* SPDX-License-Identifier: BSD-3-Clause
 * The threads that serve connections, one per connection, counted so
 * that a shutdown can wait for them.
 *
 * Creating a thread costs about as much as the rest of a short
 * connection's setup on the server side, so one thread is kept on
 * standby: a new connection is handed to it, and the accept loop then
 * creates the next standby thread while the client does its handshake.
 * Threads still end with their connection (the exitlast filter watches
 * for that).
 */

#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#include "internal.h"

/* Connections being served, for a clean shutdown. */
static unsigned running_threads;
static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t running_cond = PTHREAD_COND_INITIALIZER;

/* Standby threads not yet given a connection (normally 0 or 1), and
 * the connection handed over, until one of them takes it.
 */
static pthread_mutex_t standby_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t standby_cond = PTHREAD_COND_INITIALIZER;
static unsigned standby_waiting;
static struct connection *standby_conn;

static void
thread_ended (void)
{
  unsigned r;

  pthread_mutex_lock (&running_lock);
  r = --running_threads;
  pthread_cond_broadcast (&running_cond);
  pthread_mutex_unlock (&running_lock);
  /* -s serves one client; a draining worker waits for the last one. */
  if (r == 0 && (config.listen_stdin || control_draining ()))
    set_quit ();
}

static void *
connection_thread (void *vconn)
{
  serve_connection (vconn);
  thread_ended ();
  return NULL;
}

static void *
standby_thread (void *arg)
{
  struct connection *conn;

  pthread_mutex_lock (&standby_lock);
  while (standby_conn == NULL)
    pthread_cond_wait (&standby_cond, &standby_lock);
  conn = standby_conn;
  standby_conn = NULL;
  pthread_mutex_unlock (&standby_lock);
  return connection_thread (conn);
}

/* Hand CONN to a standby thread if one is free and has not been handed
 * another connection it has yet to take.  The thread is woken after the
 * lock is released: woken with it held, it would only wake to sleep on
 * the lock until this thread let go (two more system calls and another
 * wake-up on every connection's path).
 */
static bool
hand_to_standby (struct connection *conn)
{
  bool taken = false;

  pthread_mutex_lock (&standby_lock);
  if (standby_waiting > 0 && standby_conn == NULL) {
    standby_waiting--;
    standby_conn = conn;
    taken = true;
  }
  pthread_mutex_unlock (&standby_lock);
  if (taken)
    pthread_cond_signal (&standby_cond);
  return taken;
}

/* Make a standby thread if there is none.  Failing only costs speed. */
static void
make_standby (void)
{
  pthread_mutex_lock (&standby_lock);
  if (standby_waiting == 0) {
    if (start_detached_thread (standby_thread, NULL) == 0)
      standby_waiting++;
    else
      debug ("pthread_create (standby connection thread): %m");
  }
  pthread_mutex_unlock (&standby_lock);
}

/* Serve CONN in a thread of its own.  -1 (errno set) if no thread could
 * be started.
 */
int
connection_thread_start (struct connection *conn)
{
  pthread_mutex_lock (&running_lock);
  running_threads++;
  pthread_mutex_unlock (&running_lock);

  if (!hand_to_standby (conn) &&
      start_detached_thread (connection_thread, conn) != 0) {
    int err = errno;
    thread_ended ();
    errno = err;
    return -1;
  }
  /* -s serves one client: no other will come. */
  if (!config.listen_stdin)
    make_standby ();
  return 0;
}

/* At shutdown: let connections finish their requests, for at most
 * SECONDS.
 */
bool
connection_threads_wait (unsigned seconds)
{
  struct timespec deadline;
  bool all_done = true;

  connection_disconnect_all (false, CLOSE_BY_STOP);
  clock_gettime (CLOCK_REALTIME, &deadline);
  deadline.tv_sec += seconds;

  pthread_mutex_lock (&running_lock);
  while (running_threads > 0) {
    if (pthread_cond_timedwait (&running_cond, &running_lock,
                                &deadline) == ETIMEDOUT) {
      debug ("%u connection(s) still busy at exit", running_threads);
      all_done = false;
      break;
    }
  }
  pthread_mutex_unlock (&running_lock);
  return all_done;
}

/* For --run: whether the accept loop has anything left to do. */
unsigned
connection_threads_running (void)
{
  unsigned r;

  pthread_mutex_lock (&running_lock);
  r = running_threads;
  pthread_mutex_unlock (&running_lock);
  return r;
}
