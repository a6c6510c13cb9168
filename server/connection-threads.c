/* SPDX-License-Identifier: BSD-3-Clause
 * The threads that serve connections, one per connection, counted so
 * that a shutdown can wait for them.
 *
 * Creating a thread costs about as much as the rest of a short
 * connection's setup on the server side, so one thread is kept on
 * standby.  The acceptor thread (acceptor.c), once it has accepted a
 * client, passes its role to the standby thread and serves the client
 * itself; the new acceptor creates the next standby thread while the
 * client does its handshake.  A connection started otherwise (-s, a
 * hand-over in worker mode) is handed to the standby thread.  Threads
 * still end with their connection (the exitlast filter watches for
 * that).
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
static bool standby_promote;    /* the standby thread becomes the acceptor */

void
connection_thread_begin (void)
{
  pthread_mutex_lock (&running_lock);
  running_threads++;
  pthread_mutex_unlock (&running_lock);
}

void
connection_thread_end (void)
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

/* Serve CONN, counted by connection_thread_begin, in this thread. */
void
connection_serve_accepted (struct connection *conn)
{
  serve_connection (conn);
  connection_thread_end ();
}

static void *
connection_thread (void *vconn)
{
  connection_serve_accepted (vconn);
  return NULL;
}

static void make_standby (void);

/* The acceptor role's thread: first the standby thread that will take
 * the role on, then accept and serve a client.
 */
static void *
acceptor_thread (void *arg)
{
  make_standby ();
  acceptor_run ();
  return NULL;
}

static void *
standby_thread (void *arg)
{
  struct connection *conn;

  pthread_mutex_lock (&standby_lock);
  while (standby_conn == NULL && !standby_promote)
    pthread_cond_wait (&standby_cond, &standby_lock);
  if (standby_promote) {
    standby_promote = false;
    pthread_mutex_unlock (&standby_lock);
    return acceptor_thread (NULL);
  }
  conn = standby_conn;
  standby_conn = NULL;
  pthread_mutex_unlock (&standby_lock);
  return connection_thread (conn);
}

/* Give the standby thread CONN to serve, or with CONN NULL the
 * acceptor role, if it is free and has not been given something it has
 * yet to take.  It is woken after the lock is released: woken with it
 * held, it would only wake to sleep on the lock until this thread let
 * go (two more system calls and another wake-up on every connection's
 * path).
 */
static bool
give_to_standby (struct connection *conn)
{
  bool taken = false;

  pthread_mutex_lock (&standby_lock);
  if (standby_waiting > 0 && standby_conn == NULL && !standby_promote) {
    standby_waiting--;
    if (conn)
      standby_conn = conn;
    else
      standby_promote = true;
    taken = true;
  }
  pthread_mutex_unlock (&standby_lock);
  if (taken)
    pthread_cond_signal (&standby_cond);
  return taken;
}

/* Pass the acceptor role on: to the standby thread if it is free, else
 * to a new thread.  -1 (errno set) if no thread could take it.
 */
int
pass_accept_role (void)
{
  if (give_to_standby (NULL))
    return 0;
  return start_detached_thread (acceptor_thread, NULL) == 0 ? 0 : -1;
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
  connection_thread_begin ();
  if (!give_to_standby (conn) &&
      start_detached_thread (connection_thread, conn) != 0) {
    int err = errno;
    connection_thread_end ();
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
