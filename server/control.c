/* SPDX-License-Identifier: BSD-3-Clause
 * Worker mode (nbdkit-worker(7)): the control socket to a supervisor.
 * The events (sent through control-queue.c), receiving commands in the
 * main loop, the ready/error events at startup and the stopping event.
 * Without a control socket every function here returns at once.
 */

#include <config.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <json-c/json.h>

#include "internal.h"

/* nbdkit-worker(7) "Messages": the largest message either side sends. */
#define MAX_MESSAGE 65536

/* The most descriptors accepted with one message (a hand-over has one). */
#define MAX_FDS 32

/* How much of what the worker printed while starting the error event
 * carries.
 */
#define MAX_ERROR_TEXT 2048

static int control_fd = -1;
static int timer_fd = -1;

static bool ready_sent, stopping_sent;
static bool draining;

/* Until ready, stderr goes through a stream that also keeps the last
 * lines, so that a worker that cannot start can send them.
 */
static FILE *real_stderr, *capture_stream;
static char captured[MAX_ERROR_TEXT];
static size_t captured_len;
static char line[1024];
static size_t line_len;

bool
control_active (void)
{
  return control_fd >= 0;
}

/* The captured stderr: keep whole lines, except debug messages. */
static void
keep_line (void)
{
  size_t need = line_len + 1;

  if (line_len == 0 || strstr (line, ": debug: "))
    return;
  if (need > sizeof captured)
    return;
  while (captured_len + need > sizeof captured) {
    char *nl = memchr (captured, '\n', captured_len);
    size_t drop = nl ? (size_t) (nl - captured) + 1 : captured_len;
    memmove (captured, captured + drop, captured_len - drop);
    captured_len -= drop;
  }
  memcpy (captured + captured_len, line, line_len);
  captured_len += line_len;
  captured[captured_len++] = '\n';
}

static ssize_t
capture_write (void *cookie, const char *buf, size_t len)
{
  size_t done = 0;

  while (done < len) {
    ssize_t r = write (STDERR_FILENO, buf + done, len - done);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      break;
    }
    done += r;
  }
  for (size_t i = 0; i < len; ++i) {
    if (buf[i] == '\n') {
      line[line_len] = '\0';
      keep_line ();
      line_len = 0;
    }
    else if (line_len < sizeof line - 1)
      line[line_len++] = buf[i];
  }
  return len;
}

static void
start_capture (void)
{
  cookie_io_functions_t fns = { .write = capture_write };

  capture_stream = fopencookie (NULL, "w", fns);
  if (capture_stream == NULL)
    return;
  setvbuf (capture_stream, NULL, _IONBF, 0);
  real_stderr = stderr;
  stderr = capture_stream;
}

static void
stop_capture (void)
{
  if (real_stderr) {
    fflush (stderr);
    stderr = real_stderr;
    real_stderr = NULL;
  }
}

/* nbdkit-worker(7) "error": sent instead of ready by a worker that
 * exits with an error before it is ready.
 */
static void
send_error (void)
{
  struct json_object *msg;

  if (line_len > 0) {
    line[line_len] = '\0';
    keep_line ();
    line_len = 0;
  }
  while (captured_len > 0 && captured[captured_len - 1] == '\n')
    captured_len--;
  msg = control_message ("error");
  if (msg == NULL)
    return;
  json_object_object_add (msg, "message",
                          json_object_new_string_len
                          (captured_len ? captured : "the worker failed "
                           "to start", captured_len ? (int) captured_len
                           : (int) strlen ("the worker failed to start")));
  control_send (msg);
}

/* Whatever way the worker exits, the supervisor gets what is queued. */
static void
control_at_exit (int status, void *arg)
{
  if (control_fd < 0)
    return;
  if (status != 0 && !ready_sent)
    send_error ();
  control_close ();
}

/* Called by socket activation, before the command line is parsed. */
void
control_init (int fd)
{
  control_fd = fd;
  control_queue_init (fd);
  counters_enabled = true;
  start_capture ();
  on_exit (control_at_exit, NULL);
}

static void
control_closed (void)
{
  debug ("control: the supervisor closed the control socket");
  poll_source_remove (control_fd);
  control_fd = -1;
  control_queue_close (false);
  /* nbdkit-worker(7) "LIFETIME": as stop with the default timeout. */
  control_stop (true, 30, "control-closed");
}

/* The control socket is writable (the queue waits) or readable: one
 * message, maybe with descriptors.
 */
static void
control_ready_for_io (int fd, short revents, void *opaque)
{
  static char buf[MAX_MESSAGE];
  char cbuf[CMSG_SPACE (MAX_FDS * sizeof (int))];
  struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
  struct msghdr msg = {
    .msg_iov = &iov, .msg_iovlen = 1,
    .msg_control = cbuf, .msg_controllen = sizeof cbuf,
  };
  int fds[MAX_FDS];
  size_t nfds = 0;
  ssize_t r;

  if (revents & POLLOUT)
    control_queue_flush ();
  if (!(revents & (POLLIN | POLLHUP | POLLERR)))
    return;
  r = recvmsg (fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (r == -1) {
    if (errno == EINTR || errno == EAGAIN)
      return;
    nbdkit_error ("control: recvmsg: %m");
    control_closed ();
    return;
  }
  if (r == 0 && (revents & (POLLHUP | POLLERR))) {
    control_closed ();
    return;
  }
  for (struct cmsghdr *c = CMSG_FIRSTHDR (&msg); c; c = CMSG_NXTHDR (&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t n = (c->cmsg_len - CMSG_LEN (0)) / sizeof (int);
      for (size_t i = 0; i < n && nfds < MAX_FDS; ++i)
        memcpy (&fds[nfds++], CMSG_DATA (c) + i * sizeof (int), sizeof (int));
    }

  control_handle_message (buf, r, (msg.msg_flags & MSG_TRUNC) != 0,
                          fds, nfds);
  for (size_t i = 0; i < nfds; ++i)
    if (fds[i] >= 0)
      close (fds[i]);
}

static void
timer_expired (int fd, short revents, void *opaque)
{
  uint64_t n;

  if (read (fd, &n, sizeof n) == -1 && errno != EAGAIN)
    debug ("control: timerfd read: %m");
  control_tick ();
}

/* Send ready (or fail), then start serving the control socket. */
void
control_ready (void)
{
  struct itimerspec second = {
    .it_interval = { .tv_sec = 1 }, .it_value = { .tv_sec = 1 },
  };
  struct json_object *msg;

  if (control_fd < 0)
    return;
  msg = control_json_ready ();
  if (msg == NULL)
    exit (EXIT_FAILURE);        /* the error event says why */
  ready_sent = true;
  control_send (msg);
  stop_capture ();

  timer_fd = timerfd_create (CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (timer_fd == -1 || timerfd_settime (timer_fd, 0, &second, NULL) == -1) {
    perror ("timerfd");
    exit (EXIT_FAILURE);
  }
  poll_source_add (control_fd, control_ready_for_io, NULL);
  poll_source_add (timer_fd, timer_expired, NULL);
  control_queue_start ();
}

void
control_connection_opened (struct connection *conn)
{
  struct json_object *msg;

  if (control_fd < 0)
    return;
  msg = control_json_connection (conn, false);
  control_send (msg);
}

void
control_connection_closed (struct connection *conn,
                           enum conn_close_reason why)
{
  /* Every request thread of CONN has ended. */
  const struct conn_counters *c = &conn->counters;
  struct json_object *msg;
  uint64_t requests = 0;

  if (control_fd < 0)
    return;
  for (size_t i = 0; i < NR_COUNTED_REQUESTS; ++i)
    requests += c->requests[i];
  msg = control_message ("connection-closed");
  if (msg == NULL)
    return;
  json_object_object_add (msg, "connection",
                          json_object_new_int64 ((int64_t) conn->id));
  json_object_object_add (msg, "reason", json_object_new_string
                          (connection_close_reason_name (why)));
  json_object_object_add (msg, "bytes_read", json_object_new_int64
                          ((int64_t) c->bytes_read));
  json_object_object_add (msg, "bytes_written", json_object_new_int64
                          ((int64_t) c->bytes_written));
  json_object_object_add (msg, "requests",
                          json_object_new_int64 ((int64_t) requests));
  control_send (msg);
}

/* Sent once, whatever made the worker stop first. */
void
control_stopping (const char *reason)
{
  struct json_object *msg;

  if (control_fd < 0 ||
      __atomic_exchange_n (&stopping_sent, true, __ATOMIC_SEQ_CST))
    return;
  msg = control_message ("stopping");
  if (msg == NULL)
    return;
  json_object_object_add (msg, "reason", json_object_new_string (reason));
  control_send (msg);
}

bool
control_draining (void)
{
  return __atomic_load_n (&draining, __ATOMIC_SEQ_CST);
}

void
control_set_draining (void)
{
  __atomic_store_n (&draining, true, __ATOMIC_SEQ_CST);
}

/* At exit: send what is queued (for a bounded time) and close. */
void
control_close (void)
{
  if (timer_fd >= 0)
    close (timer_fd);
  timer_fd = -1;
  if (control_fd >= 0) {
    /* The final counters, so that a supervisor adding up the work of
     * several workers loses nothing of the last seconds.
     */
    control_tick ();
    control_fd = -1;
    control_queue_close (true);
  }
}
