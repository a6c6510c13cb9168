/* SPDX-License-Identifier: BSD-3-Clause
 * The exitwhen filter: when an outside event happens (a file appears or
 * disappears, a pipe or a process goes away, a script says so), refuse
 * new clients and shut the server down once the current ones have gone.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "vector.h"

extern char **environ;

/* The exit code of exit-when-script= scripts meaning "exit now". */
#define SCRIPT_EVENT_STATUS 88

enum event_type {
  FILE_CREATED,                 /* exit-when-file-created= */
  FILE_DELETED,                 /* exit-when-file-deleted= */
  PIPE_CLOSED,                  /* exit-when-pipe-closed= */
  PROCESS_EXITS,                /* exit-when-process-exits= */
  SCRIPT,                       /* exit-when-script= */
};

struct event {
  enum event_type type;
  char *str;                    /* absolute file name, or the script */
  int fd;                       /* PIPE_CLOSED */
  pid_t pid;                    /* PROCESS_EXITS */
};

DEFINE_VECTOR_TYPE (event_list, struct event)

/* Every event given on the command line; any one of them triggers. */
static event_list events = empty_vector;

/* How often the background thread checks, in seconds (exit-when-poll=). */
static unsigned poll_secs = 60;

/* State shared by connections and the polling thread, under lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static unsigned connections;    /* clients with the export open */
static bool exiting;            /* an event happened: refuse new clients */
static bool stop_thread;        /* the server is unloading us */
static bool thread_running;
static pthread_t poll_thread;
static pid_t closing_tid;       /* see update_state */

/* How often to look again while the closing thread is still alive. */
#define WATCH_INTERVAL_NS 50000000

static void
exitwhen_unload (void)
{
  size_t i;

  for (i = 0; i < events.len; ++i)
    free (events.ptr[i].str);
  event_list_reset (&events);
}

static int
add_event (struct event ev)
{
  if (event_list_append (&events, ev) == -1) {
    nbdkit_error ("realloc: %m");
    free (ev.str);
    return -1;
  }
  return 0;
}

static int
exitwhen_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                 const char *key, const char *value)
{
  struct event ev = { .fd = -1, .pid = -1 };
  int i;

  if (strcmp (key, "exit-when-file-created") == 0 ||
      strcmp (key, "exit-when-file-deleted") == 0) {
    ev.type = strcmp (key, "exit-when-file-created") == 0
      ? FILE_CREATED : FILE_DELETED;
    /* Absolute, because the server changes directory when it forks. */
    ev.str = nbdkit_absolute_path (value);
    if (ev.str == NULL)
      return -1;
    return add_event (ev);
  }
  if (strcmp (key, "exit-when-pipe-closed") == 0) {
    if (nbdkit_parse_int (key, value, &i) == -1)
      return -1;
    if (i < 0 || fcntl (i, F_GETFD) == -1) {
      nbdkit_error ("%s: %s is not an open file descriptor", key, value);
      return -1;
    }
    /* Our children (scripts, --run) should not hold it open. */
    fcntl (i, F_SETFD, FD_CLOEXEC);
    ev.type = PIPE_CLOSED;
    ev.fd = i;
    return add_event (ev);
  }
  if (strcmp (key, "exit-when-process-exits") == 0) {
    if (nbdkit_parse_int (key, value, &i) == -1)
      return -1;
    if (i <= 0) {
      nbdkit_error ("%s: %s is not a process ID", key, value);
      return -1;
    }
    ev.type = PROCESS_EXITS;
    ev.pid = i;
    return add_event (ev);
  }
  if (strcmp (key, "exit-when-script") == 0) {
    ev.type = SCRIPT;
    ev.str = strdup (value);
    if (ev.str == NULL) {
      nbdkit_error ("strdup: %m");
      return -1;
    }
    return add_event (ev);
  }
  if (strcmp (key, "exit-when-poll") == 0) {
    if (nbdkit_parse_unsigned (key, value, &poll_secs) == -1)
      return -1;
    if (poll_secs == 0) {
      nbdkit_error ("%s: the interval must be at least 1 second", key);
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

#define exitwhen_config_help \
  "exit-when-file-created=<FILE>   Exit when FILE is created.\n" \
  "exit-when-file-deleted=<FILE>   Exit when FILE is deleted.\n" \
  "exit-when-pipe-closed=<FD>      Exit when the pipe FD is closed.\n" \
  "exit-when-process-exits=<PID>   Exit when process PID exits.\n" \
  "exit-when-script=<SCRIPT>       Exit when SCRIPT exits with status 88.\n" \
  "exit-when-poll=<SECS>           Check this often when idle (default 60)."

/* Event checks.  They only read the configuration, so they run without
 * the lock.
 */

static bool
pipe_is_closed (int fd)
{
  struct pollfd pfd = { .fd = fd, .events = POLLIN };

  if (poll (&pfd, 1, 0) == -1)
    return false;
  return (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* A zombie has exited even though it can still be signalled. */
static bool
process_has_exited (pid_t pid)
{
  char path[64], buf[512], *p;
  FILE *fp;
  size_t n;

  if (kill (pid, 0) == -1 && errno == ESRCH)
    return true;
  snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
  fp = fopen (path, "re");
  if (fp == NULL)
    return errno == ENOENT;
  n = fread (buf, 1, sizeof buf - 1, fp);
  fclose (fp);
  buf[n] = '\0';
  /* "PID (COMM) STATE ...": COMM may contain anything, even ')'. */
  p = strrchr (buf, ')');
  return p && p[1] == ' ' && p[2] == 'Z';
}

static bool
script_says_exit (const char *script)
{
  const char *argv[] = { "sh", "-c", script, NULL };
  posix_spawnattr_t attr;
  sigset_t defaults;
  pid_t pid;
  int status, r;

  /* The server ignores SIGPIPE and SIGHUP; the script should not. */
  posix_spawnattr_init (&attr);
  sigemptyset (&defaults);
  sigaddset (&defaults, SIGPIPE);
  sigaddset (&defaults, SIGHUP);
  posix_spawnattr_setsigdefault (&attr, &defaults);
  posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGDEF);
  r = posix_spawn (&pid, "/bin/sh", NULL, &attr, (char **) argv, environ);
  posix_spawnattr_destroy (&attr);
  if (r != 0) {
    errno = r;
    nbdkit_error ("exit-when-script: cannot run /bin/sh: %m");
    return false;
  }
  while (waitpid (pid, &status, 0) == -1) {
    if (errno != EINTR) {
      nbdkit_error ("exit-when-script: waitpid: %m");
      return false;
    }
  }
  if (WIFEXITED (status)) {
    if (WEXITSTATUS (status) == SCRIPT_EVENT_STATUS)
      return true;
    if (WEXITSTATUS (status) != 0)
      nbdkit_error ("exit-when-script: '%s' failed with status %d "
                    "(ignored)", script, WEXITSTATUS (status));
  }
  else if (WIFSIGNALED (status))
    nbdkit_error ("exit-when-script: '%s' was killed by signal %d "
                  "(ignored)", script, WTERMSIG (status));
  return false;
}

static bool
event_happened (const struct event *ev)
{
  switch (ev->type) {
  case FILE_CREATED:
    return access (ev->str, F_OK) == 0;
  case FILE_DELETED:
    return access (ev->str, F_OK) == -1 && errno == ENOENT;
  case PIPE_CLOSED:
    return pipe_is_closed (ev->fd);
  case PROCESS_EXITS:
    return process_has_exited (ev->pid);
  case SCRIPT:
    return script_says_exit (ev->str);
  }
  abort ();
}

static const char *
describe (const struct event *ev, char *buf, size_t len)
{
  switch (ev->type) {
  case FILE_CREATED:
    snprintf (buf, len, "file %s was created", ev->str); break;
  case FILE_DELETED:
    snprintf (buf, len, "file %s was deleted", ev->str); break;
  case PIPE_CLOSED:
    snprintf (buf, len, "pipe %d was closed", ev->fd); break;
  case PROCESS_EXITS:
    snprintf (buf, len, "process %d exited", (int) ev->pid); break;
  case SCRIPT:
    snprintf (buf, len, "script '%s' exited with status %d",
              ev->str, SCRIPT_EVENT_STATUS); break;
  }
  return buf;
}

/* Check every event; true if one of them has happened. */
static bool
check_events (void)
{
  char buf[256];
  size_t i;

  for (i = 0; i < events.len; ++i)
    if (event_happened (&events.ptr[i])) {
      nbdkit_debug ("exitwhen: %s: the server will exit when the last "
                    "client disconnects",
                    describe (&events.ptr[i], buf, sizeof buf));
      return true;
    }
  return false;
}

/* For a quick look without the lock; the lock is taken to act. */
static bool
is_exiting (void)
{
  return __atomic_load_n (&exiting, __ATOMIC_SEQ_CST);
}

/* Without /proc this says "gone", and the server stops at once. */
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
  nbdkit_debug ("exitwhen: no clients are connected, shutting down");
  nbdkit_shutdown ();
}

/* Under the lock: act on what we know.  Once exiting, the server stops
 * as soon as no client is left.  When the count drops to 0 because a
 * client closed the export (CLOSING), that client may only be between
 * NBD_OPT_INFO and NBD_OPT_GO, so the polling thread stops the server
 * only once the closing thread has finished with the connection (the
 * server serves each client from one thread) and nobody opened the
 * export since.
 */
static void
update_state (bool event, bool closing)
{
  if (event && !exiting) {
    __atomic_store_n (&exiting, true, __ATOMIC_SEQ_CST);
    pthread_cond_signal (&wake);
  }
  if (!exiting || connections > 0)
    return;
  if (closing && thread_running) {
    closing_tid = gettid ();
    pthread_cond_signal (&wake);
  }
  else if (closing_tid == 0)
    shutdown_server ();
}

static void
deadline_after (struct timespec *ts, time_t secs, long nsecs)
{
  clock_gettime (CLOCK_REALTIME, ts);
  ts->tv_sec += secs;
  ts->tv_nsec += nsecs;
  if (ts->tv_nsec >= 1000000000) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000;
  }
}

static bool
is_past (const struct timespec *ts)
{
  struct timespec now;

  clock_gettime (CLOCK_REALTIME, &now);
  return now.tv_sec > ts->tv_sec ||
    (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec);
}

/* The background thread.  It checks the events now and then every
 * poll_secs, so the server exits even when no client ever connects or
 * disconnects again; once exiting, it waits for the last connection to
 * end.
 */
static void *
poll_events (void *arg)
{
  struct timespec next_check = { 0 };
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);

  while (!stop_thread) {
    if (closing_tid != 0) {
      pid_t tid = closing_tid;
      bool alive;

      pthread_mutex_unlock (&lock);
      alive = thread_is_alive (tid);
      pthread_mutex_lock (&lock);
      if (closing_tid != tid)
        continue;               /* a client opened the export meanwhile */
      if (!alive) {
        closing_tid = 0;
        if (connections == 0)
          shutdown_server ();
      }
      else {
        struct timespec ts;
        deadline_after (&ts, 0, WATCH_INTERVAL_NS);
        pthread_cond_timedwait (&wake, &lock, &ts);
      }
    }
    else if (exiting)
      pthread_cond_wait (&wake, &lock);
    else if (is_past (&next_check)) {
      bool event;

      pthread_mutex_unlock (&lock);
      event = check_events ();
      pthread_mutex_lock (&lock);
      update_state (event, false);
      deadline_after (&next_check, poll_secs, 0);
    }
    else
      pthread_cond_timedwait (&wake, &lock, &next_check);
  }
  return NULL;
}

/* Threads do not survive the fork into the background, so start the
 * thread after it.
 */
static int
exitwhen_after_fork (nbdkit_backend *nxdata)
{
  int err;

  if (events.len == 0)
    return 0;
  err = pthread_create (&poll_thread, NULL, poll_events, NULL);
  if (err) {
    errno = err;
    nbdkit_error ("cannot start the polling thread: %m");
    return -1;
  }
  thread_running = true;
  return 0;
}

static void
exitwhen_cleanup (nbdkit_backend *nxdata)
{
  if (!thread_running)
    return;
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    stop_thread = true;
    pthread_cond_signal (&wake);
  }
  pthread_join (poll_thread, NULL);
  thread_running = false;
}

/* A client arrives: refuse it before the handshake if we are exiting. */
static int
exitwhen_preconnect (nbdkit_next_preconnect *next, nbdkit_backend *nxdata,
                     int readonly)
{
  bool event = false;

  if (events.len > 0 && !is_exiting ())
    event = check_events ();
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    update_state (event, false);
    if (exiting) {
      nbdkit_error ("the server is exiting: new clients are "
                    "refused");
      return -1;
    }
  }
  return next (nxdata, readonly);
}

static void *
exitwhen_open (nbdkit_next_open *next, nbdkit_context *context,
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
exitwhen_close (void *handle)
{
  bool event = false;

  if (events.len > 0 && !is_exiting ())
    event = check_events ();

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  connections--;
  update_state (event, true);
}

static struct nbdkit_filter filter = {
  .name              = "exitwhen",
  .longname          = "nbdkit exitwhen filter",
  .version           = PACKAGE_VERSION,
  .description       = "Exit the server gracefully when an event happens",
  .unload            = exitwhen_unload,
  .config            = exitwhen_config,
  .config_help       = exitwhen_config_help,
  .after_fork        = exitwhen_after_fork,
  .cleanup           = exitwhen_cleanup,
  .preconnect        = exitwhen_preconnect,
  .open              = exitwhen_open,
  .close             = exitwhen_close,
};

NBDKIT_REGISTER_FILTER (filter)
