/* SPDX-License-Identifier: BSD-3-Clause
 * Listening sockets (TCP, Unix, AF_VSOCK) and the main loop, which polls
 * the quit pipe and the control sources (acceptor.c accepts clients).
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

/* The sources of the main loop. */
struct poll_source {
  int fd;
  short events;
  poll_handler handler;
  void *opaque;
};
DEFINE_VECTOR_TYPE (poll_source_list, struct poll_source)
static poll_source_list sources = empty_vector;

void
poll_source_add (int fd, poll_handler handler, void *opaque)
{
  struct poll_source s = {
    .fd = fd, .events = POLLIN, .handler = handler, .opaque = opaque,
  };

  if (poll_source_list_append (&sources, s) == -1) {
    perror ("realloc");
    exit (EXIT_FAILURE);
  }
}

void
poll_source_set_events (int fd, short events)
{
  for (size_t i = 0; i < sources.len; ++i)
    if (sources.ptr[i].fd == fd)
      sources.ptr[i].events = events;
}

void
poll_source_remove (int fd)
{
  for (size_t i = 0; i < sources.len; ++i)
    if (sources.ptr[i].fd == fd) {
      poll_source_list_remove (&sources, i);
      return;
    }
}

static void
quit_readable (int fd, short revents, void *opaque)
{
  /* The loop condition sees quit. */
}

/* Serve LISTENERS (taken: closed when the loop ends) until asked to
 * quit.  The acceptor thread polls the listeners (acceptor.c); this
 * loop polls the other sources.
 */
void
serve_loop (const int_vector *listeners)
{
  struct pollfd *fds = NULL;
  struct poll_source *copy = NULL;
  size_t cap = 0, n, i;

  acceptor_start (listeners);
  poll_source_add (quit_fd, quit_readable, NULL);

  while (!quitting ()) {
    /* Handlers may add or remove sources: poll a copy. */
    n = sources.len;
    if (n > cap) {
      cap = n;
      fds = realloc (fds, cap * sizeof *fds);
      copy = realloc (copy, cap * sizeof *copy);
      if (fds == NULL || copy == NULL) {
        perror ("realloc");
        exit (EXIT_FAILURE);
      }
    }
    for (i = 0; i < n; ++i) {
      copy[i] = sources.ptr[i];
      fds[i] = (struct pollfd) { .fd = copy[i].fd, .events = copy[i].events };
    }
    if (poll (fds, n, -1) == -1) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      perror ("poll");
      exit (EXIT_FAILURE);
    }
    for (i = 0; i < n && !quitting (); ++i)
      if (fds[i].revents)
        copy[i].handler (fds[i].fd, fds[i].revents, copy[i].opaque);
  }
  free (fds);
  free (copy);
  acceptor_finish ();
  poll_source_list_reset (&sources);
}
