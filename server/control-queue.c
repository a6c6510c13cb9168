/* SPDX-License-Identifier: BSD-3-Clause
 * The worker's outgoing control messages (nbdkit-worker(7) "FLOW
 * CONTROL"): any thread queues a message without blocking, and the main
 * loop sends the queue with non-blocking sends, polling for POLLOUT
 * while the supervisor is behind.  The queue is bounded.
 */

#include <config.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "internal.h"

/* nbdkit-worker(7) "FLOW CONTROL": the most events waiting for the
 * supervisor.  -D nbdkit.control_queue=N changes it (for tests).
 */
#define DEFAULT_QUEUE_LENGTH 1024

/* How long an exiting worker waits for the supervisor to take what is
 * still queued.
 */
#define EXIT_DRAIN_MS 5000

/* What may be dropped when the queue is full. */
enum message_kind {
  MESSAGE_STATS,                /* dropped first: the next one supersedes it */
  MESSAGE_CONNECTION,           /* connection-opened/-closed: dropped only
                                   when nothing else can be, and logged */
  MESSAGE_OTHER,                /* replies, ready, error, stopping: never */
};

struct message {
  struct json_object *msg;      /* NULL: the slot of a reply to come */
  const char *text;             /* owned by msg */
  size_t len;
  enum message_kind kind;
};
DEFINE_VECTOR_TYPE (message_queue, struct message)

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static message_queue queue = empty_vector; /* oldest first */
static int control_fd = -1;     /* -1 once closed */
static unsigned max_queued = DEFAULT_QUEUE_LENGTH;
static bool serving;            /* the main loop drains the queue */
static bool stats_dropped;      /* logged since the queue was last empty */

/* Other threads wake the main loop through this eventfd (written with
 * the lock held, so that it is never closed under them).
 */
static int wake_fd = -1;
static bool wake_pending;

void
control_queue_init (int fd)
{
  control_fd = fd;
}

/* Before the debug flags are freed. */
void
control_queue_configure (void)
{
  int n = server_debug_flag ("control_queue", DEFAULT_QUEUE_LENGTH);

  if (n >= 1)
    max_queued = n;
}

static enum message_kind
message_kind (struct json_object *msg)
{
  struct json_object *type;
  const char *t;

  if (!json_object_object_get_ex (msg, "type", &type))
    return MESSAGE_OTHER;
  t = json_object_get_string (type);
  if (strcmp (t, "stats") == 0)
    return MESSAGE_STATS;
  if (strcmp (t, "connection-opened") == 0 ||
      strcmp (t, "connection-closed") == 0)
    return MESSAGE_CONNECTION;
  return MESSAGE_OTHER;
}

static void
free_message (struct message *m)
{
  if (m->msg)
    json_object_put (m->msg);
}

/* Remove the first N messages (already freed). */
static void
queue_remove_first (size_t n)
{
  memmove (queue.ptr, queue.ptr + n, (queue.len - n) * sizeof queue.ptr[0]);
  queue.len -= n;
}

/* The queue is full: drop the oldest stats event.  False if there is
 * none.
 */
static bool
drop_oldest_stats (void)
{
  for (size_t i = 0; i < queue.len; ++i)
    if (queue.ptr[i].kind == MESSAGE_STATS) {
      free_message (&queue.ptr[i]);
      message_queue_remove (&queue, i);
      return true;
    }
  return false;
}

/* What became of a message given to control_send. */
enum queued {
  QUEUED,
  DISCARDED,                    /* no control socket, or no memory */
  DROPPED_STATS,                /* the queue is full of other events */
  DROPPED_CONNECTION,           /* the queue is full of other events */
};

/* With the lock held: queue M (taking its message) if the policy lets
 * it in.  *LOG_STATS is set the first time stats are dropped since the
 * queue was last empty.
 */
static enum queued
enqueue (struct message *m, bool *log_stats)
{
  bool dropped_stats = false;
  enum queued r = QUEUED;

  if (control_fd < 0 || m->text == NULL)
    return DISCARDED;
  if (m->kind != MESSAGE_OTHER) {
    while (queue.len >= max_queued && drop_oldest_stats ())
      dropped_stats = true;
    if (queue.len >= max_queued) {
      r = m->kind == MESSAGE_STATS ? DROPPED_STATS : DROPPED_CONNECTION;
      dropped_stats |= r == DROPPED_STATS;
    }
  }
  if (dropped_stats && !stats_dropped)
    *log_stats = stats_dropped = true;
  if (r == QUEUED && message_queue_append (&queue, *m) == -1)
    r = DISCARDED;
  return r;
}

/* Queue MSG (taking it) to be sent as one datagram.  Never blocks on
 * the supervisor.
 */
void
control_send (struct json_object *msg)
{
  struct message m = { .msg = msg };
  enum queued r;
  bool log_stats = false;
  uint64_t one = 1;

  if (msg == NULL)
    return;
  m.kind = message_kind (msg);
  m.text = json_object_to_json_string_ext (msg, JSON_C_TO_STRING_PLAIN);
  m.len = m.text ? strlen (m.text) : 0;

  pthread_mutex_lock (&queue_lock);
  r = enqueue (&m, &log_stats);
  if (r == QUEUED && serving && !wake_pending) {
    wake_pending = true;
    if (write (wake_fd, &one, sizeof one) == -1)
      debug ("control: eventfd write: %m");
  }
  pthread_mutex_unlock (&queue_lock);

  if (log_stats)
    nbdkit_error ("control: the supervisor is not reading the control "
                  "socket (%u events queued): dropping the oldest stats "
                  "events", max_queued);
  if (r == DROPPED_CONNECTION)
    nbdkit_error ("control: the control queue is full: lost %s", m.text);
  if (r != QUEUED)
    json_object_put (msg);
}

/* With the lock held: send what the supervisor takes now.  Returns the
 * poll events the control socket needs: POLLOUT while messages wait;
 * POLLIN unless the queue is full, so that a supervisor that does not
 * read gets no more replies than that.
 */
static short
flush_locked (void)
{
  size_t sent = 0;
  short events = 0;

  while (sent < queue.len && queue.ptr[sent].msg != NULL) {
    struct message *m = &queue.ptr[sent];
    ssize_t r = send (control_fd, m->text, m->len,
                      MSG_DONTWAIT | MSG_NOSIGNAL);

    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (r == -1)
      debug ("control: send: %m");
    free_message (m);
    sent++;
  }
  queue_remove_first (sent);
  if (queue.len == 0)
    stats_dropped = false;
  if (queue.len < max_queued)
    events |= POLLIN;
  if (queue.len > 0 && queue.ptr[0].msg != NULL)
    events |= POLLOUT;
  return events;
}

/* Main thread: send what can be sent and poll for the rest. */
void
control_queue_flush (void)
{
  int fd;
  short events;

  pthread_mutex_lock (&queue_lock);
  fd = control_fd;
  wake_pending = false;
  events = fd >= 0 ? flush_locked () : 0;
  pthread_mutex_unlock (&queue_lock);
  if (fd >= 0)
    poll_source_set_events (fd, events);
}

static void
wake_readable (int fd, short revents, void *opaque)
{
  uint64_t n;

  if (fd != wake_fd)
    return;                     /* closed earlier in this poll round */
  if (read (fd, &n, sizeof n) == -1 && errno != EAGAIN)
    debug ("control: eventfd read: %m");
  control_queue_flush ();
}

/* Main thread, once the control socket is a source of the main loop:
 * from now on the loop sends the queue.
 */
void
control_queue_start (void)
{
  wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd == -1) {
    perror ("eventfd");
    exit (EXIT_FAILURE);
  }
  poll_source_add (wake_fd, wake_readable, NULL);
  pthread_mutex_lock (&queue_lock);
  serving = true;
  pthread_mutex_unlock (&queue_lock);
  control_queue_flush ();
}

/* Main thread: keep the next place in the queue for the reply to the
 * command being run, so that the events it causes (sent by other
 * threads too) come after the reply (nbdkit-worker(7) "EVENTS").
 */
void
control_reserve_reply (void)
{
  struct message slot = { .kind = MESSAGE_OTHER };

  pthread_mutex_lock (&queue_lock);
  if (control_fd >= 0 && message_queue_append (&queue, slot) == -1)
    debug ("control: realloc: %m");
  pthread_mutex_unlock (&queue_lock);
}

/* Main thread: the reply for the reserved place (taking it). */
void
control_send_reply (struct json_object *reply)
{
  bool filled = false;

  pthread_mutex_lock (&queue_lock);
  for (size_t i = 0; i < queue.len; ++i)
    if (queue.ptr[i].msg == NULL) {
      struct message *slot = &queue.ptr[i];

      slot->text = reply ? json_object_to_json_string_ext
        (reply, JSON_C_TO_STRING_PLAIN) : NULL;
      if (slot->text) {
        slot->msg = reply;
        slot->len = strlen (slot->text);
        filled = true;
      }
      else
        message_queue_remove (&queue, i);
      break;
    }
  pthread_mutex_unlock (&queue_lock);
  if (!filled)
    control_send (reply);       /* the socket was closed meanwhile */
  control_queue_flush ();
}

static int64_t
now_ms (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* At exit: give the supervisor a bounded time to take the rest. */
static void
drain (void)
{
  int64_t deadline = now_ms () + EXIT_DRAIN_MS, left;
  size_t lost;

  pthread_mutex_lock (&queue_lock);
  while (control_fd >= 0 && (flush_locked () & POLLOUT) &&
         (left = deadline - now_ms ()) > 0) {
    struct pollfd pfd = { .fd = control_fd, .events = POLLOUT };

    pthread_mutex_unlock (&queue_lock);
    poll (&pfd, 1, left);
    pthread_mutex_lock (&queue_lock);
  }
  lost = queue.len;
  pthread_mutex_unlock (&queue_lock);
  if (lost > 0)
    nbdkit_error ("control: the supervisor did not read the last %zu "
                  "messages", lost);
}

/* Close the control socket: at exit, after trying to send what is
 * queued; or when the supervisor has closed its end (DRAIN false).
 */
void
control_queue_close (bool drain_first)
{
  if (drain_first)
    drain ();
  if (wake_fd >= 0)
    poll_source_remove (wake_fd);
  pthread_mutex_lock (&queue_lock);
  for (size_t i = 0; i < queue.len; ++i)
    free_message (&queue.ptr[i]);
  message_queue_reset (&queue);
  if (control_fd >= 0)
    close (control_fd);
  control_fd = -1;
  serving = false;
  if (wake_fd >= 0)
    close (wake_fd);
  wake_fd = -1;
  pthread_mutex_unlock (&queue_lock);
}
