/* SPDX-License-Identifier: BSD-3-Clause
 * Listening sockets (TCP, Unix, AF_VSOCK, socket activation) and the
 * accept loop that starts one thread per client.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>

#include "internal.h"
#include "cleanup.h"

#if HAVE_LIBSELINUX
#include <selinux/selinux.h>
#endif

#define DEFAULT_PORT "10809"

/* --selinux-label: label the listening sockets created from now on. */
static void
set_selinux_label (void)
{
  if (config.selinux_label == NULL)
    return;
#if HAVE_LIBSELINUX
  if (is_selinux_enabled () != 1) {
    fprintf (stderr, "%s: --selinux-label: SELinux is not enabled on this "
             "machine\n", config.program_name);
    exit (EXIT_FAILURE);
  }
  if (setsockcreatecon_raw (config.selinux_label) == -1) {
    fprintf (stderr, "%s: --selinux-label: cannot set socket label '%s': "
             "%m\n", config.program_name, config.selinux_label);
    exit (EXIT_FAILURE);
  }
#else
  fprintf (stderr, "%s: --selinux-label: this nbdkit was built without "
           "SELinux support\n", config.program_name);
  exit (EXIT_FAILURE);
#endif
}

static void
clear_selinux_label (void)
{
#if HAVE_LIBSELINUX
  if (config.selinux_label)
    setsockcreatecon_raw (NULL);
#endif
}

/* Connection threads still running, for a clean shutdown. */
static unsigned running_threads;
static pthread_mutex_t running_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t running_cond = PTHREAD_COND_INITIALIZER;

static void
add_socket (int_vector *socks, int fd)
{
  if (int_vector_append (socks, fd) == -1) {
    perror ("realloc");
    exit (EXIT_FAILURE);
  }
}

int_vector
bind_unix_socket (void)
{
  int_vector socks = empty_vector;
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  size_t len = strlen (config.unixsocket);
  int fd;

  if (len >= sizeof addr.sun_path) {
    fprintf (stderr, "%s: -U %s: Unix socket path is too long "
             "(maximum %zu bytes)\n", config.program_name,
             config.unixsocket, sizeof addr.sun_path - 1);
    exit (EXIT_FAILURE);
  }
  memcpy (addr.sun_path, config.unixsocket, len + 1);

  set_selinux_label ();
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  clear_selinux_label ();
  if (fd == -1) {
    perror ("socket");
    exit (EXIT_FAILURE);
  }
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) == -1) {
    fprintf (stderr, "%s: bind: %s: %m\n", config.program_name,
             config.unixsocket);
    exit (EXIT_FAILURE);
  }
  if (listen (fd, SOMAXCONN) == -1) {
    perror ("listen");
    exit (EXIT_FAILURE);
  }
  add_socket (&socks, fd);
  debug ("bound to unix socket %s", config.unixsocket);
  return socks;
}

int_vector
bind_tcpip_socket (void)
{
  int_vector socks = empty_vector;
  struct addrinfo hints = {
    .ai_family = config.address_family,
    .ai_socktype = SOCK_STREAM,
    .ai_flags = AI_PASSIVE | AI_ADDRCONFIG,
  };
  struct addrinfo *ai, *a;
  const char *port = config.port ? config.port : DEFAULT_PORT;
  int err, saved_errno = 0;
  bool addr_in_use = false;

  err = getaddrinfo (config.ipaddr, port, &hints, &ai);
  if (err != 0) {
    fprintf (stderr, "%s: getaddrinfo: %s: %s: %s\n", config.program_name,
             config.ipaddr ? config.ipaddr : "<any>", port,
             gai_strerror (err));
    exit (EXIT_FAILURE);
  }

  set_selinux_label ();
  for (a = ai; a != NULL; a = a->ai_next) {
    int fd, opt = 1;

    fd = socket (a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
                 a->ai_protocol);
    if (fd == -1) {
      /* The machine may have no IPv6 (or IPv4) at all. */
      if (errno == EAFNOSUPPORT)
        continue;
      perror ("socket");
      exit (EXIT_FAILURE);
    }
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &opt, sizeof opt);
    /* Bind IPv6 to IPv6 only, so the IPv4 address can be bound too. */
    if (a->ai_family == AF_INET6)
      setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &opt, sizeof opt);

    if (bind (fd, a->ai_addr, a->ai_addrlen) == -1) {
      saved_errno = errno;
      close (fd);
      if (saved_errno == EADDRINUSE) {
        addr_in_use = true;
        continue;
      }
      if (saved_errno == EADDRNOTAVAIL)
        continue;
      errno = saved_errno;
      fprintf (stderr, "%s: bind: port %s: %m\n", config.program_name, port);
      exit (EXIT_FAILURE);
    }
    if (listen (fd, SOMAXCONN) == -1) {
      perror ("listen");
      exit (EXIT_FAILURE);
    }
    add_socket (&socks, fd);
  }
  freeaddrinfo (ai);
  clear_selinux_label ();

  if (socks.len == 0) {
    if (addr_in_use)
      fprintf (stderr, "%s: bind: port %s: address already in use "
               "(is another server running?)\n", config.program_name, port);
    else {
      errno = saved_errno;
      fprintf (stderr, "%s: could not bind to any address for port %s: %m\n",
               config.program_name, port);
    }
    exit (EXIT_FAILURE);
  }
  debug ("bound to IP address %s:%s (%zu socket(s))",
         config.ipaddr ? config.ipaddr : "<any>", port, socks.len);
  return socks;
}

int_vector
bind_vsock (void)
{
  int_vector socks = empty_vector;
  struct sockaddr_vm addr = {
    .svm_family = AF_VSOCK,
    .svm_cid = VMADDR_CID_ANY,
  };
  uint32_t port = 10809;
  int fd;

  if (config.port &&
      nbdkit_parse_uint32_t ("vsock port", config.port, &port) == -1)
    exit (EXIT_FAILURE);
  addr.svm_port = port;

  set_selinux_label ();
  fd = socket (AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  clear_selinux_label ();
  if (fd == -1) {
    fprintf (stderr, "%s: --vsock: cannot create an AF_VSOCK socket "
             "(this machine has no vsock support): %m\n",
             config.program_name);
    exit (EXIT_FAILURE);
  }
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) == -1) {
    fprintf (stderr, "%s: --vsock: bind: port %" PRIu32 ": %m\n",
             config.program_name, port);
    exit (EXIT_FAILURE);
  }
  if (listen (fd, SOMAXCONN) == -1) {
    perror ("listen");
    exit (EXIT_FAILURE);
  }
  add_socket (&socks, fd);
  debug ("bound to vsock port %" PRIu32, port);
  return socks;
}

/* The sockets systemd (or the daemon) passed us start at fd 3. */
int_vector
bind_socket_activation (void)
{
  int_vector socks = empty_vector;

  for (unsigned i = 0; i < config.listen_fds; ++i) {
    /* Checked and made close-on-exec in main.c at startup. */
    add_socket (&socks, 3 + i);
  }
  debug ("using %u socket(s) from socket activation", config.listen_fds);
  return socks;
}

struct thread_data {
  int sock;
};

static void *
start_connection_thread (void *vdata)
{
  struct thread_data *data = vdata;
  int sock = data->sock;

  free (data);
  handle_single_connection (sock, sock);

  pthread_mutex_lock (&running_lock);
  running_threads--;
  pthread_cond_broadcast (&running_cond);
  pthread_mutex_unlock (&running_lock);
  return NULL;
}

static void
accept_connection (int listen_sock)
{
  struct thread_data *data;
  pthread_attr_t attrs;
  pthread_t thread;
  int sock, err, opt = 1;

  sock = accept4 (listen_sock, NULL, NULL, SOCK_CLOEXEC);
  if (sock == -1) {
    switch (errno) {
    case EINTR: case EAGAIN: case ECONNABORTED:
      return;
    case EBADF: case ENOTSOCK: case EINVAL: case EOPNOTSUPP:
      /* The listener itself is unusable: retrying would spin. */
      nbdkit_error ("accept: %m: the listening socket is not usable");
      exit (EXIT_FAILURE);
    default:
      nbdkit_error ("accept: %m");
      /* Out of descriptors or memory: back off briefly. */
      poll (NULL, 0, 100);
      return;
    }
  }
  /* Latency matters more than packet count for NBD replies. */
  setsockopt (sock, IPPROTO_TCP, TCP_NODELAY, &opt, sizeof opt);

  data = malloc (sizeof *data);
  if (data == NULL) {
    nbdkit_error ("malloc: %m");
    close (sock);
    return;
  }
  data->sock = sock;

  pthread_mutex_lock (&running_lock);
  running_threads++;
  pthread_mutex_unlock (&running_lock);

  pthread_attr_init (&attrs);
  pthread_attr_setdetachstate (&attrs, PTHREAD_CREATE_DETACHED);
  err = pthread_create (&thread, &attrs, start_connection_thread, data);
  pthread_attr_destroy (&attrs);
  if (err != 0) {
    errno = err;
    nbdkit_error ("pthread_create: %m");
    close (sock);
    free (data);
    pthread_mutex_lock (&running_lock);
    running_threads--;
    pthread_mutex_unlock (&running_lock);
  }
}

/* Serve until asked to quit. */
void
accept_incoming_connections (const int_vector *socks)
{
  size_t n = socks->len, i;
  struct pollfd *fds = calloc (n + 1, sizeof *fds);

  if (fds == NULL) {
    perror ("calloc");
    exit (EXIT_FAILURE);
  }
  for (i = 0; i < n; ++i)
    fds[i] = (struct pollfd) { .fd = socks->ptr[i], .events = POLLIN };
  fds[n] = (struct pollfd) { .fd = quit_fd, .events = POLLIN };

  while (!quit) {
    int r = poll (fds, n + 1, -1);
    if (r == -1) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      perror ("poll");
      exit (EXIT_FAILURE);
    }
    for (i = 0; i < n && !quit; ++i)
      if (fds[i].revents & POLLIN)
        accept_connection (fds[i].fd);
  }
  free (fds);
}

/* At shutdown: let connections finish their requests, for at most
 * SECONDS.
 */
bool
connection_threads_wait (unsigned seconds)
{
  struct timespec deadline;
  bool all_done = true;

  connection_shutdown_all ();
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
