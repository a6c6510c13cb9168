/* SPDX-License-Identifier: BSD-3-Clause
 * One client connection: its state, its request threads, and reading and
 * writing its socket (plain here; tls.c replaces recv/send after
 * STARTTLS).
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "internal.h"
#include "cleanup.h"
#include "utils.h"

/* Every open connection, so a shutdown can wake them all. */
DEFINE_VECTOR_TYPE (connection_list, struct connection *)
static connection_list connections = empty_vector;
static pthread_mutex_t connections_lock = PTHREAD_MUTEX_INITIALIZER;

/* Read on every request, so without a lock; changes are serialized by
 * status_lock.
 */
int
connection_get_status (struct connection *conn)
{
  return __atomic_load_n (&conn->status, __ATOMIC_ACQUIRE);
}

/* Status only ever goes down: 1 (serving) → 0 (closing) → -1 (failed). */
void
connection_set_status (struct connection *conn, int value)
{
  if (conn->nworkers > 1)
    pthread_mutex_lock (&conn->status_lock);
  if (value < conn->status) {
    if (conn->nworkers > 1 && conn->status > 0 && conn->status_pipe[1] >= 0) {
      char c = 0;
      if (write (conn->status_pipe[1], &c, 1) != 1 && errno != EAGAIN)
        nbdkit_error ("failed to notify request threads of close: %m");
    }
    __atomic_store_n (&conn->status, value, __ATOMIC_RELEASE);
  }
  if (conn->nworkers > 1)
    pthread_mutex_unlock (&conn->status_lock);
}

/* Plain socket (or pipe) I/O. */

static int
raw_recv (struct connection *conn, void *vbuf, size_t len)
{
  char *buf = vbuf;
  size_t done = 0;

  while (done < len) {
    ssize_t r = read (conn->sockin, buf + done, len - done);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0) {
      if (done == 0)
        return 0;               /* clean end of file */
      errno = EBADMSG;          /* the peer stopped mid-message */
      return -1;
    }
    done += r;
  }
  return 1;
}

/* A small piece sent with SEND_MORE (a reply header) is held back and
 * sent in one sendmsg with what follows (the payload), saving a system
 * call per reply.  Called with the connection's write lock held.
 */
static int
raw_send_socket (struct connection *conn, const void *vbuf, size_t len,
                 int flags)
{
  struct iovec iov[2];
  struct msghdr msg = { .msg_iov = iov };
  int f = MSG_NOSIGNAL | (flags & SEND_MORE ? MSG_MORE : 0);

  if ((flags & SEND_MORE) && conn->held_len + len <= sizeof conn->held) {
    memcpy (conn->held + conn->held_len, vbuf, len);
    conn->held_len += len;
    return 0;
  }

  iov[0] = (struct iovec) { conn->held, conn->held_len };
  iov[1] = (struct iovec) { (void *) vbuf, len };
  while (iov[0].iov_len + iov[1].iov_len > 0) {
    ssize_t r;

    msg.msg_iov = iov[0].iov_len ? &iov[0] : &iov[1];
    msg.msg_iovlen = iov[0].iov_len ? 2 : 1;
    r = sendmsg (conn->sockout, &msg, f);
    if (r == -1) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      conn->held_len = 0;
      return -1;
    }
    for (int i = 0; i < 2 && r > 0; ++i) {
      size_t n = MIN ((size_t) r, iov[i].iov_len);
      iov[i].iov_base = (char *) iov[i].iov_base + n;
      iov[i].iov_len -= n;
      r -= n;
    }
  }
  conn->held_len = 0;
  return 0;
}

static int
raw_send_other (struct connection *conn, const void *vbuf, size_t len,
                int flags)
{
  const char *buf = vbuf;

  while (len > 0) {
    ssize_t r = write (conn->sockout, buf, len);
    if (r == -1) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      return -1;
    }
    buf += r;
    len -= r;
  }
  return 0;
}

static void
raw_close (struct connection *conn)
{
  if (conn->sockin >= 0)
    close (conn->sockin);
  if (conn->sockout >= 0 && conn->sockout != conn->sockin)
    close (conn->sockout);
  conn->sockin = conn->sockout = -1;
}

/* Read exactly LEN bytes.  0 on success; on end of file or error, log
 * what was being read (FS) and return -1.
 */
int
conn_recv_full (struct connection *conn, void *buf, size_t len,
                const char *fs, ...)
{
  int r = conn->recv (conn, buf, len);

  if (r == 1)
    return 0;
  if (r == 0)
    errno = EBADMSG;
  {
    va_list args;
    char *what = NULL;
    int saved_errno = errno;
    va_start (args, fs);
    if (vasprintf (&what, fs, args) == -1)
      what = NULL;
    va_end (args);
    if (saved_errno == EBADMSG)
      nbdkit_error ("%s: the client closed the connection unexpectedly",
                    what ? what : fs);
    else {
      errno = saved_errno;
      nbdkit_error ("%s: %m", what ? what : fs);
    }
    free (what);
  }
  return -1;
}

/* Throw away LEN bytes of unwanted input (an oversized write payload). */
int
conn_discard (struct connection *conn, uint64_t len)
{
  char buf[65536];

  while (len > 0) {
    size_t n = len > sizeof buf ? sizeof buf : len;
    if (conn->recv (conn, buf, n) != 1)
      return -1;
    len -= n;
  }
  return 0;
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

static bool
is_socket (int fd)
{
  int type;
  socklen_t len = sizeof type;

  return getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
}

static struct connection *
new_connection (int sockin, int sockout, unsigned nworkers)
{
  static size_t next_id = 1;
  struct connection *conn = calloc (1, sizeof *conn);

  if (conn == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  conn->id = __atomic_fetch_add (&next_id, 1, __ATOMIC_SEQ_CST);
  conn->sockin = sockin;
  conn->sockout = sockout;
  conn->status = 1;
  conn->nworkers = nworkers;
  conn->status_pipe[0] = conn->status_pipe[1] = -1;
  if (nworkers > 1 && pipe2 (conn->status_pipe, O_CLOEXEC | O_NONBLOCK)) {
    nbdkit_error ("pipe2: %m");
    free (conn);
    return NULL;
  }
  if (nworkers > 1) {
    conn->workers = calloc (nworkers, sizeof *conn->workers);
    if (conn->workers == NULL) {
      nbdkit_error ("calloc: %m");
      close (conn->status_pipe[0]);
      close (conn->status_pipe[1]);
      free (conn);
      return NULL;
    }
  }
  conn->workers_started = conn->workers_idle = 1;
  pthread_mutex_init (&conn->workers_lock, NULL);
  pthread_mutex_init (&conn->read_lock, NULL);
  pthread_mutex_init (&conn->write_lock, NULL);
  pthread_mutex_init (&conn->status_lock, NULL);

  get_peer (conn);
  conn->recv = raw_recv;
  conn->send = is_socket (sockout) ? raw_send_socket : raw_send_other;
  conn->close = raw_close;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&connections_lock);
    if (connection_list_append (&connections, conn) == -1) {
      nbdkit_error ("realloc: %m");
      free (conn);
      return NULL;
    }
  }
  return conn;
}

static void
free_connection (struct connection *conn)
{
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&connections_lock);
    for (size_t i = 0; i < connections.len; ++i)
      if (connections.ptr[i] == conn) {
        connection_list_remove (&connections, i);
        break;
      }
    if (connections.len == 0)
      connection_list_reset (&connections);
  }

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
  free (conn->exportname);
  free (conn->meta_context_exportname);
  free (conn->tls_username);
  free (conn->tls_psk_username);
  free (conn->tls_dn);
  free (conn->tls_issuer_dn);
  string_vector_free_all (&conn->interns);
  free (conn);
}

/* Stop reading new requests on every connection: requests in flight
 * finish and are answered, then the connection closes.
 */
void
connection_shutdown_all (void)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&connections_lock);
  for (size_t i = 0; i < connections.len; ++i) {
    struct connection *conn = connections.ptr[i];
    shutdown (conn->sockin, SHUT_RD);
  }
}

static void *connection_worker (void *vconn);

/* Called by a request thread once it has read a request, still holding
 * the read lock: if no other thread is left to read the next request,
 * start one (up to -t THREADS).  Threads are started on demand so that
 * short connections and clients that send one request at a time cost
 * one thread, not THREADS.
 */
void
connection_request_started (struct connection *conn)
{
  if (conn->nworkers <= 1 ||
      __atomic_sub_fetch (&conn->workers_idle, 1, __ATOMIC_ACQ_REL) > 0)
    return;
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&conn->workers_lock);
  if (__atomic_load_n (&conn->workers_idle, __ATOMIC_ACQUIRE) == 0 &&
      conn->workers_started < conn->nworkers) {
    int e = pthread_create (&conn->workers[conn->workers_started], NULL,
                            connection_worker, conn);
    if (e == 0) {
      conn->workers_started++;
      __atomic_add_fetch (&conn->workers_idle, 1, __ATOMIC_ACQ_REL);
    }
    else {
      /* Not fatal: the threads we have carry on. */
      errno = e;
      debug ("pthread_create: %m (continuing with %u request threads)",
             conn->workers_started);
    }
  }
}

void
connection_request_done (struct connection *conn)
{
  if (conn->nworkers > 1)
    __atomic_add_fetch (&conn->workers_idle, 1, __ATOMIC_ACQ_REL);
}

/* Wait for the request threads started on demand. */
static void
join_workers (struct connection *conn)
{
  unsigned i = 1;

  pthread_mutex_lock (&conn->workers_lock);
  while (i < conn->workers_started) {
    pthread_t t = conn->workers[i++];
    pthread_mutex_unlock (&conn->workers_lock);
    pthread_join (t, NULL);
    pthread_mutex_lock (&conn->workers_lock);
  }
  pthread_mutex_unlock (&conn->workers_lock);
}

static void *
connection_worker (void *vconn)
{
  struct connection *conn = vconn;

  threadlocal_set_instance (conn->id);
  threadlocal_set_conn (conn);
  threadlocal_set_name (top->name);
  while (!quit && connection_get_status (conn) > 0)
    protocol_recv_request_send_reply (conn);
  threadlocal_free_buffer ();
  return NULL;
}

/* Serve one client from its first byte to the close. */
int
handle_single_connection (int sockin, int sockout)
{
  struct connection *conn;
  unsigned nworkers = 1;
  int r = -1;

  lock_connection ();
  if (thread_model >= NBDKIT_THREAD_MODEL_PARALLEL)
    nworkers = config.threads;

  conn = new_connection (sockin, sockout, nworkers);
  if (conn == NULL) {
    close (sockin);
    if (sockout != sockin)
      close (sockout);
    goto out;
  }
  threadlocal_set_instance (conn->id);
  threadlocal_set_conn (conn);
  threadlocal_set_name (top->name);
  debug ("accepted connection");

  if (top->preconnect (top, config.readonly) == -1)
    goto done;
  if (protocol_handshake (conn) == -1)
    goto done;

  /* This thread serves requests too; more start as needed. */
  connection_worker (conn);
  join_workers (conn);
  r = connection_get_status (conn) >= 0 ? 0 : -1;

 done:
  protocol_close_export (conn);
  debug ("connection closed");
  threadlocal_set_conn (NULL);
  free_connection (conn);
  threadlocal_set_instance (0);
 out:
  threadlocal_free_buffer ();
  unlock_connection ();
  return r;
}
