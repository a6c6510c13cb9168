/* SPDX-License-Identifier: BSD-3-Clause
 * One client connection from start to close: its state and status, its
 * request threads, disconnecting it, and the list of open connections
 * that shutdown, the worker's counters and list-connections walk.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "internal.h"
#include "cleanup.h"
#include "utils.h"

bool counters_enabled;

/* Every connection, so a shutdown or the supervisor can reach them. */
DEFINE_VECTOR_TYPE (connection_list, struct connection *)
static connection_list connections = empty_vector;
static pthread_mutex_t connections_lock = PTHREAD_MUTEX_INITIALIZER;

/* Counters of connections that have closed, and how many opened
 * (protected by connections_lock).
 */
static struct conn_counters closed_counters;
static uint64_t connections_total;

/* Read on every request, so without a lock; changes are serialized by
 * status_lock.
 */
enum conn_status
connection_get_status (struct connection *conn)
{
  return __atomic_load_n (&conn->status, __ATOMIC_ACQUIRE);
}

/* The read end of the pipe that becomes readable when the connection
 * starts closing (for sleeps in nbdkit_nanosleep to end early), made on
 * first use; -1 if the connection has one request thread only, is
 * already closing, or the pipe cannot be made.
 */
int
connection_status_fd (struct connection *conn)
{
  int fd = -1;

  if (conn->nworkers <= 1)
    return -1;
  pthread_mutex_lock (&conn->status_lock);
  if (conn->status_pipe[0] == -1 && conn->status == CONN_OPEN &&
      pipe2 (conn->status_pipe, O_CLOEXEC | O_NONBLOCK) == -1) {
    debug ("pipe2: %m: sleeps will not end early when the client goes");
    conn->status_pipe[0] = conn->status_pipe[1] = -1;
  }
  if (conn->status == CONN_OPEN)
    fd = conn->status_pipe[0];
  pthread_mutex_unlock (&conn->status_lock);
  return fd;
}

/* Status only ever goes down: open → closing → dead. */
void
connection_set_status (struct connection *conn, enum conn_status value)
{
  if (conn->nworkers > 1)
    pthread_mutex_lock (&conn->status_lock);
  if (value < conn->status) {
    if (conn->nworkers > 1 && conn->status == CONN_OPEN &&
        conn->status_pipe[1] >= 0) {
      char c = 0;
      if (write (conn->status_pipe[1], &c, 1) != 1 && errno != EAGAIN)
        nbdkit_error ("failed to notify request threads of close: %m");
    }
    __atomic_store_n (&conn->status, value, __ATOMIC_RELEASE);
  }
  if (conn->nworkers > 1)
    pthread_mutex_unlock (&conn->status_lock);
}

const char *
connection_close_reason_name (enum conn_close_reason r)
{
  switch (r) {
  case CLOSE_BY_DISCONNECT: return "disconnect";
  case CLOSE_BY_ERROR: return "error";
  case CLOSE_BY_STOP: return "stop";
  case CLOSE_BY_CLIENT:
  case CLOSE_UNKNOWN:
  default: return "client";
  }
}

static void
get_peer (struct connection *conn)
{
  struct ucred cred;
  socklen_t len = sizeof cred;

  conn->peer_pid = conn->peer_uid = conn->peer_gid = -1;
  conn->peer_addrlen = sizeof conn->peer_addr;
  if (getpeername (conn->sockin, (struct sockaddr *) &conn->peer_addr,
                   &conn->peer_addrlen) == -1) {
    conn->peer_addrlen = 0;
    return;
  }
  if (conn->peer_addr.ss_family == AF_UNIX &&
      getsockopt (conn->sockin, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    conn->peer_pid = cred.pid;
    conn->peer_uid = cred.uid;
    conn->peer_gid = cred.gid;
  }
}

static uint64_t
now_realtime_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_REALTIME, &ts);
  return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A connection not yet in the list. */
static struct connection *
alloc_connection (int sockin, int sockout, unsigned nworkers)
{
  static uint64_t next_id = 1;
  struct connection *conn = calloc (1, sizeof *conn);

  if (conn == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  conn->id = __atomic_fetch_add (&next_id, 1, __ATOMIC_SEQ_CST);
  conn->sockin = sockin;
  conn->sockout = sockout;
  conn->status = CONN_OPEN;
  conn->nworkers = nworkers;
  conn->since = now_realtime_us ();
  conn->status_pipe[0] = conn->status_pipe[1] = -1;
  if (nworkers > 1) {
    conn->workers = calloc (nworkers, sizeof *conn->workers);
    if (conn->workers == NULL) {
      nbdkit_error ("calloc: %m");
      free (conn);
      return NULL;
    }
  }
  conn->workers_started = conn->workers_idle = 1;
  pthread_mutex_init (&conn->workers_lock, NULL);
  pthread_mutex_init (&conn->read_lock, NULL);
  pthread_mutex_init (&conn->write_lock, NULL);
  pthread_mutex_init (&conn->status_lock, NULL);
  if (sockin >= 0) {
    get_peer (conn);
    connection_set_raw_io (conn);
  }
  return conn;
}

static void
destroy_connection (struct connection *conn)
{
  if (conn->close)
    conn->close (conn);
  if (conn->status_pipe[0] >= 0) {
    close (conn->status_pipe[0]);
    close (conn->status_pipe[1]);
  }
  pthread_mutex_destroy (&conn->workers_lock);
  free (conn->workers);
  pthread_mutex_destroy (&conn->read_lock);
  pthread_mutex_destroy (&conn->write_lock);
  pthread_mutex_destroy (&conn->status_lock);
  free (conn->rbuf);
  free (conn->wbuf);
  free (conn->pending_option);
  free (conn->exportname);
  free (conn->meta_context_exportname);
  free (conn->tls_username);
  free (conn->tls_psk_username);
  free (conn->tls_dn);
  free (conn->tls_issuer_dn);
  string_vector_free_all (&conn->interns);
  free (conn);
}

/* A connection with no socket, for asking the chain about the default
 * export outside any client (the ready event).
 */
struct connection *
connection_new_probe (void)
{
  struct connection *conn = alloc_connection (-1, -1, 1);

  if (conn)
    conn->structured_replies = !config.no_sr;
  return conn;
}

void
connection_free_probe (struct connection *conn)
{
  destroy_connection (conn);
}

static void
add_counters (struct conn_counters *to, const struct conn_counters *from)
{
  for (size_t i = 0; i < NR_COUNTED_REQUESTS; ++i)
    to->requests[i] += __atomic_load_n (&from->requests[i], __ATOMIC_RELAXED);
  to->bytes_read += __atomic_load_n (&from->bytes_read, __ATOMIC_RELAXED);
  to->bytes_written += __atomic_load_n (&from->bytes_written,
                                        __ATOMIC_RELAXED);
  to->errors += __atomic_load_n (&from->errors, __ATOMIC_RELAXED);
}

/* Take CONN off the list and fold its counters into the closed ones,
 * in one step, so that "stats" never counts it twice or not at all and
 * a supervisor told "connection-closed" sees it gone.
 */
static void
unlist_connection (struct connection *conn)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&connections_lock);
  for (size_t i = 0; i < connections.len; ++i)
    if (connections.ptr[i] == conn) {
      connection_list_remove (&connections, i);
      break;
    }
  if (connections.len == 0)
    connection_list_reset (&connections);
  if (conn->opened)
    add_counters (&closed_counters, &conn->counters);
}

/* The one way to end a connection from outside its threads.  Graceful:
 * no new requests are read, those in flight are answered, then it
 * closes.  Forced: the socket is shut down at once.
 */
void
connection_disconnect (struct connection *conn, bool force,
                       enum conn_close_reason why)
{
  enum conn_close_reason unknown = CLOSE_UNKNOWN;

  __atomic_compare_exchange_n (&conn->close_reason, &unknown, why, false,
                               __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  connection_set_status (conn, force ? CONN_DEAD : CONN_CLOSING);
  if (conn->sockin >= 0)
    shutdown (conn->sockin, force ? SHUT_RDWR : SHUT_RD);
  if (force && conn->sockout >= 0 && conn->sockout != conn->sockin)
    shutdown (conn->sockout, SHUT_RDWR);
}

/* Returns -1 if no open connection has this id. */
int
connection_disconnect_by_id (uint64_t id, bool force)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&connections_lock);
  for (size_t i = 0; i < connections.len; ++i) {
    struct connection *conn = connections.ptr[i];
    if (conn->id == id) {
      connection_disconnect (conn, force, CLOSE_BY_DISCONNECT);
      return 0;
    }
  }
  return -1;
}

void
connection_disconnect_all (bool force, enum conn_close_reason why)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&connections_lock);
  for (size_t i = 0; i < connections.len; ++i)
    connection_disconnect (connections.ptr[i], force, why);
}

/* The worker's counters: closed connections plus the live ones. */
void
connection_stats (struct worker_stats *stats)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&connections_lock);
  memset (stats, 0, sizeof *stats);
  stats->counters = closed_counters;
  stats->connections_total = connections_total;
  for (size_t i = 0; i < connections.len; ++i) {
    struct connection *conn = connections.ptr[i];
    if (conn->opened) {
      stats->connections_active++;
      add_counters (&stats->counters, &conn->counters);
    }
  }
}

/* Call FN for every connection in the transmission phase, under the
 * list lock (FN must not block).
 */
void
connection_for_each_locked (void (*fn) (struct connection *, void *),
                            void *opaque)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&connections_lock);
  for (size_t i = 0; i < connections.len; ++i)
    fn (connections.ptr[i], opaque);
}

void
connection_for_each_opened (void (*fn) (struct connection *, void *),
                            void *opaque)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&connections_lock);
  for (size_t i = 0; i < connections.len; ++i)
    if (connections.ptr[i]->opened)
      fn (connections.ptr[i], opaque);
}

static void
mark_opened (struct connection *conn)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&connections_lock);
  conn->opened = true;
  connections_total++;
}

static enum conn_close_reason
close_reason (struct connection *conn)
{
  enum conn_close_reason r = __atomic_load_n (&conn->close_reason,
                                              __ATOMIC_SEQ_CST);
  if (r != CLOSE_UNKNOWN)
    return r;
  if (quitting ())
    return CLOSE_BY_STOP;
  if (connection_get_status (conn) == CONN_DEAD)
    return CLOSE_BY_ERROR;
  return CLOSE_BY_CLIENT;
}

/* Serve one client from its first byte (or the handed-over handshake
 * state) to the close.
 */
void
serve_connection (struct connection *conn)
{
  lock_connection ();
  threadlocal_set_instance (conn->id);
  threadlocal_set_conn (conn);
  threadlocal_set_name (top->name);
  debug ("accepted connection");

  connection_limits_handshake_begin (conn);
  if (top->preconnect (top, config.readonly) == -1 ||
      protocol_handshake (conn) == -1) {
    connection_limits_handshake_end (conn);
    goto done;
  }
  connection_limits_handshake_end (conn);
  connection_start_transmission (conn);

  mark_opened (conn);
  control_connection_opened (conn);
  /* This thread serves requests too; more start as needed. */
  connection_worker (conn);
  connection_join_workers (conn);
  /* Replies held back for a batch go out before the close. */
  if (connection_flush_output (conn) == -1)
    debug ("write reply: %m");

 done:
  protocol_close_export (conn);
  unlist_connection (conn);
  if (conn->opened)
    control_connection_closed (conn, close_reason (conn));
  read_poll_report (conn);
  debug ("connection closed");
  threadlocal_set_conn (NULL);
  destroy_connection (conn);
  threadlocal_set_instance (0);
  threadlocal_free_buffer ();
  unlock_connection ();
}

/* Take RESUME's contents (a hand-over) into CONN. */
static void
apply_resume (struct connection *conn, struct handshake_resume *resume)
{
  conn->handshake_stage = resume->stage;
  conn->client_flags = resume->client_flags;
  conn->structured_replies = resume->structured_replies;
  conn->meta_context_base_allocation = resume->meta_context_base_allocation;
  conn->meta_context_exportname = resume->meta_context_exportname;
  conn->pending_option = resume->option;
  conn->pending_option_len = resume->option_len;
  resume->meta_context_exportname = NULL;
  resume->option = NULL;
  if (resume->tls) {
    conn->using_tls = true;
    conn->tls_username = resume->tls_identity;
    resume->tls_identity = NULL;
  }
}

/* A new connection on SOCKIN/SOCKOUT, in the list of connections, or
 * NULL (the sockets are closed).
 */
static struct connection *
new_listed_connection (int sockin, int sockout,
                       struct handshake_resume *resume)
{
  unsigned nworkers = 1;
  struct connection *conn;

  if (!connection_limits_admit ())
    goto fail;
  if (thread_model >= NBDKIT_THREAD_MODEL_PARALLEL)
    nworkers = config.threads;
  conn = alloc_connection (sockin, sockout, nworkers);
  if (conn == NULL)
    goto fail;
  if (resume)
    apply_resume (conn, resume);
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&connections_lock);
    if (connection_list_append (&connections, conn) == -1) {
      nbdkit_error ("realloc: %m");
      destroy_connection (conn);
      return NULL;
    }
  }
  return conn;

 fail:
  close (sockin);
  if (sockout != sockin)
    close (sockout);
  return NULL;
}

/* Start a connection from -s or a hand-over by the supervisor (RESUME,
 * may be NULL; the acceptor's clients come through connection_accept).
 * The connection is served by a thread of its own.  Returns its id, or
 * 0 if it could not start (the sockets are closed).
 */
uint64_t
connection_start (int sockin, int sockout, struct handshake_resume *resume)
{
  struct connection *conn;
  uint64_t id;

  conn = new_listed_connection (sockin, sockout, resume);
  if (conn == NULL)
    return 0;
  id = conn->id;

  if (connection_thread_start (conn) == -1) {
    nbdkit_error ("pthread_create: %m");
    unlist_connection (conn);
    destroy_connection (conn);
    return 0;
  }
  return id;
}

/* A client accepted by the acceptor thread (acceptor.c), admitted and
 * counted as running; the acceptor serves it itself
 * (connection_serve_accepted) once it has passed its role on.  NULL if
 * it was refused (the socket is closed).
 */
struct connection *
connection_accept (int sock)
{
  struct connection *conn = new_listed_connection (sock, sock, NULL);

  if (conn != NULL)
    connection_thread_begin ();
  return conn;
}

/* An accepted client that cannot be served after all. */
void
connection_abandon (struct connection *conn)
{
  unlist_connection (conn);
  destroy_connection (conn);
  connection_thread_end ();
}

/* Serve one connection in the calling thread, to its end (the fuzz
 * targets: no thread to create per input).  False if it could not start.
 */
bool
connection_serve_here (int sockin, int sockout)
{
  struct connection *conn = new_listed_connection (sockin, sockout, NULL);

  if (conn == NULL)
    return false;
  serve_connection (conn);
  return true;
}
