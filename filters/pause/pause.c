/* SPDX-License-Identifier: BSD-3-Clause
 * The pause filter: a Unix socket on which 'p' holds back new requests
 * (answering 'P' once those in flight have finished) and 'r' lets them
 * go again (answering 'R'), for taking snapshots of the storage.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <nbdkit-filter.h>

#include "cleanup.h"

/* pause-control=: the socket path. */
static char *control_path;

/* The listening socket, the pipe that stops the control thread, and
 * the thread itself.
 */
static int listen_fd = -1;
static int stop_pipe[2] = { -1, -1 };
static pthread_t control_thread;
static bool control_thread_running;

/* Paused state and the number of requests in flight, under lock.
 * Requests wait on resumed while paused; a pause waits on idle until
 * the requests in flight have finished.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t resumed = PTHREAD_COND_INITIALIZER;
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;
static bool paused;
static unsigned in_flight;

static int
pause_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
              const char *key, const char *value)
{
  if (strcmp (key, "pause-control") == 0) {
    free (control_path);
    control_path = nbdkit_absolute_path (value);
    return control_path ? 0 : -1;
  }
  return next (nxdata, key, value);
}

#define pause_config_help \
  "pause-control=<SOCKET>  (required) Unix socket taking p/r commands."

static int
pause_config_complete (nbdkit_next_config_complete *next,
                       nbdkit_backend *nxdata)
{
  struct sockaddr_un addr;

  if (control_path == NULL) {
    nbdkit_error ("pause: the pause-control=SOCKET parameter is required");
    return -1;
  }
  if (strlen (control_path) >= sizeof addr.sun_path) {
    nbdkit_error ("pause-control=%s: the path is too long for a Unix socket",
                  control_path);
    return -1;
  }
  return next (nxdata);
}

/* Bind the socket before nbdkit serves, so that errors stop it.  A
 * leftover socket is replaced; any other file is not touched.
 */
static int
pause_get_ready (int thread_model)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct stat st;

  if (lstat (control_path, &st) == 0) {
    if (!S_ISSOCK (st.st_mode)) {
      nbdkit_error ("pause-control=%s: exists and is not a socket",
                    control_path);
      return -1;
    }
    unlink (control_path);
  }
  strcpy (addr.sun_path, control_path);
  listen_fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd == -1) {
    nbdkit_error ("pause-control: socket: %m");
    return -1;
  }
  if (bind (listen_fd, (struct sockaddr *) &addr, sizeof addr) == -1 ||
      listen (listen_fd, 4) == -1) {
    nbdkit_error ("pause-control=%s: bind: %m", control_path);
    close (listen_fd);
    listen_fd = -1;
    return -1;
  }
  return 0;
}

/* Carry out one command byte and return the reply, or 0 for none. */
static char
do_command (char c)
{
  switch (c) {
  case 'p': {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    paused = true;
    while (in_flight > 0)
      pthread_cond_wait (&idle, &lock);
    nbdkit_debug ("pause: paused");
    return 'P';
  }
  case 'r': {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    paused = false;
    pthread_cond_broadcast (&resumed);
    nbdkit_debug ("pause: resumed");
    return 'R';
  }
  case '\n': case '\r': case ' ': case '\t':
    return 0;                   /* so that "echo p | nc -U" works */
  default:
    return 'X';
  }
}

/* Serve one control client until it hangs up.  False if told to stop. */
static bool
serve_client (int fd)
{
  struct pollfd fds[2] = {
    { .fd = fd, .events = POLLIN },
    { .fd = stop_pipe[0], .events = POLLIN },
  };
  char buf[64], reply;
  ssize_t n, i;

  for (;;) {
    if (poll (fds, 2, -1) == -1) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (fds[1].revents)
      return false;
    n = read (fd, buf, sizeof buf);
    if (n == -1 && errno == EINTR)
      continue;
    if (n <= 0)
      return true;
    for (i = 0; i < n; ++i) {
      if ((reply = do_command (buf[i])) != 0 && write (fd, &reply, 1) != 1)
        return true;
    }
  }
}

static void *
control_loop (void *arg)
{
  struct pollfd fds[2] = {
    { .fd = listen_fd, .events = POLLIN },
    { .fd = stop_pipe[0], .events = POLLIN },
  };
  bool more = true;

  while (more) {
    int fd;

    if (poll (fds, 2, -1) == -1) {
      if (errno == EINTR)
        continue;
      nbdkit_error ("pause-control: poll: %m");
      break;
    }
    if (fds[1].revents)
      break;
    fd = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd == -1)
      continue;
    more = serve_client (fd);
    close (fd);
  }
  return NULL;
}

/* The thread starts after nbdkit has forked into the background. */
static int
pause_after_fork (nbdkit_backend *backend)
{
  int err;

  if (pipe2 (stop_pipe, O_CLOEXEC) == -1) {
    nbdkit_error ("pause-control: pipe2: %m");
    return -1;
  }
  err = pthread_create (&control_thread, NULL, control_loop, NULL);
  if (err != 0) {
    errno = err;
    nbdkit_error ("pause-control: pthread_create: %m");
    return -1;
  }
  control_thread_running = true;
  return 0;
}

static void
pause_cleanup (nbdkit_backend *backend)
{
  if (control_thread_running) {
    char c = 0;
    if (write (stop_pipe[1], &c, 1) != 1)
      nbdkit_error ("pause-control: write: %m");
    pthread_join (control_thread, NULL);
    control_thread_running = false;
  }
}

static void
pause_unload (void)
{
  if (listen_fd >= 0) {
    close (listen_fd);
    unlink (control_path);
  }
  for (int i = 0; i < 2; ++i)
    if (stop_pipe[i] >= 0)
      close (stop_pipe[i]);
  free (control_path);
}

/* Wait while paused, then count the request in.  Waiting gives up when
 * the server shuts down or the client goes (nbdkit_nanosleep fails).
 */
static int
begin_request (int *err)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);

  while (paused) {
    struct timespec until;

    clock_gettime (CLOCK_REALTIME, &until);
    until.tv_nsec += 200000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
    if (pthread_cond_timedwait (&resumed, &lock, &until) == ETIMEDOUT &&
        paused && nbdkit_nanosleep (0, 0) == -1) {
      *err = ESHUTDOWN;
      return -1;
    }
  }
  in_flight++;
  return 0;
}

static void
end_request (void)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);

  if (--in_flight == 0)
    pthread_cond_signal (&idle);
}

static int
pause_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  int r;

  if (begin_request (err) == -1)
    return -1;
  r = next->pread (next, buf, count, offset, flags, err);
  end_request ();
  return r;
}

static int
pause_pwrite (nbdkit_next *next, void *handle, const void *buf,
              uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  int r;

  if (begin_request (err) == -1)
    return -1;
  r = next->pwrite (next, buf, count, offset, flags, err);
  end_request ();
  return r;
}

static int
pause_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  int r;

  if (begin_request (err) == -1)
    return -1;
  r = next->flush (next, flags, err);
  end_request ();
  return r;
}

static int
pause_trim (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
            uint32_t flags, int *err)
{
  int r;

  if (begin_request (err) == -1)
    return -1;
  r = next->trim (next, count, offset, flags, err);
  end_request ();
  return r;
}

static int
pause_zero (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
            uint32_t flags, int *err)
{
  int r;

  if (begin_request (err) == -1)
    return -1;
  r = next->zero (next, count, offset, flags, err);
  end_request ();
  return r;
}

static int
pause_extents (nbdkit_next *next, void *handle, uint32_t count,
               uint64_t offset, uint32_t flags,
               struct nbdkit_extents *extents, int *err)
{
  int r;

  if (begin_request (err) == -1)
    return -1;
  r = next->extents (next, count, offset, flags, extents, err);
  end_request ();
  return r;
}

static int
pause_cache (nbdkit_next *next, void *handle, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  int r;

  if (begin_request (err) == -1)
    return -1;
  r = next->cache (next, count, offset, flags, err);
  end_request ();
  return r;
}

static struct nbdkit_filter filter = {
  .name              = "pause",
  .longname          = "nbdkit pause filter",
  .version           = PACKAGE_VERSION,
  .description       = "Pause and resume requests through a control socket",
  .unload            = pause_unload,
  .config            = pause_config,
  .config_complete   = pause_config_complete,
  .config_help       = pause_config_help,
  .get_ready         = pause_get_ready,
  .after_fork        = pause_after_fork,
  .cleanup           = pause_cleanup,
  .pread             = pause_pread,
  .pwrite            = pause_pwrite,
  .flush             = pause_flush,
  .trim              = pause_trim,
  .zero              = pause_zero,
  .extents           = pause_extents,
  .cache             = pause_cache,
};

NBDKIT_REGISTER_FILTER (filter)
