/* SPDX-License-Identifier: BSD-3-Clause
 * Listening sockets: the daemon creates and owns every listener (the
 * shared one and each export's tcp:, unix: and vsock: listeners) and
 * passes them to workers by socket activation, so a worker restart never
 * closes one.  Also the URIs clients use to reach an export.
 */

#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "nbdkitd.h"
#include "fdstore.h"
#include "cleanup.h"

#define DEFAULT_SHARED_LISTEN "tcp::10809"

/* Split "tcp:HOST:PORT" (HOST may be empty or [IPv6]). */
static int
tcp_split (const char *rest, char **host, char **port)
{
  const char *colon;

  if (rest[0] == '[') {
    const char *close_br = strchr (rest, ']');
    if (close_br == NULL || close_br[1] != ':')
      return -EINVAL;
    *host = strndup (rest + 1, close_br - rest - 1);
    colon = close_br + 1;
  }
  else {
    colon = strrchr (rest, ':');
    if (colon == NULL)
      return -EINVAL;
    *host = strndup (rest, colon - rest);
  }
  *port = strdup (colon + 1);
  if (!*host || !*port)
    return -ENOMEM;
  if (strlen (*port) == 0 || strspn (*port, "0123456789") != strlen (*port) ||
      atoi (*port) > 65535)
    return -EINVAL;
  return 0;
}

int
listener_address_validate (const char *address, sd_bus_error *error)
{
  if (strcmp (address, "shared") == 0)
    return 0;
  if (strncmp (address, "tcp:", 4) == 0) {
    CLEANUP_FREE char *host = NULL, *port = NULL;
    if (tcp_split (address + 4, &host, &port) == 0)
      return 0;
  }
  else if (strncmp (address, "unix:", 5) == 0) {
    if (address[5] == '/' &&
        strlen (address + 5) < sizeof ((struct sockaddr_un *) 0)->sun_path)
      return 0;
  }
  else if (strncmp (address, "vsock:", 6) == 0) {
    if (address[6] && strspn (address + 6, "0123456789") == strlen (address + 6))
      return 0;
  }
  return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                            "Invalid listener '%s' (tcp:HOST:PORT, "
                            "unix:/PATH, vsock:PORT or shared)", address);
}

static int
listen_tcp (const char *rest, int *fd)
{
  CLEANUP_FREE char *host = NULL, *port = NULL;
  struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                            .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
  struct addrinfo *ai;
  int s, one = 1, zero = 0, r;

  if (tcp_split (rest, &host, &port) < 0)
    return -EINVAL;
  if (*host == '\0') {
    free (host);
    host = NULL;
    hints.ai_family = AF_INET6;       /* dual stack: IPv4 too */
  }
  r = getaddrinfo (host, port, &hints, &ai);
  if (r != 0 && host == NULL) {
    hints.ai_family = AF_INET;        /* no IPv6 on this machine */
    r = getaddrinfo (host, port, &hints, &ai);
  }
  if (r != 0)
    return -EADDRNOTAVAIL;
  s = socket (ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s == -1) {
    r = -errno;
    freeaddrinfo (ai);
    return r;
  }
  setsockopt (s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ai->ai_family == AF_INET6 && host == NULL)
    setsockopt (s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  r = bind (s, ai->ai_addr, ai->ai_addrlen) == -1 ? -errno : 0;
  freeaddrinfo (ai);
  if (r == 0 && listen (s, SOMAXCONN) == -1)
    r = -errno;
  if (r < 0) {
    close (s);
    return r;
  }
  *fd = s;
  return 0;
}

static int
listen_unix (const char *path, int *fd)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int s, r;

  strncpy (addr.sun_path, path, sizeof addr.sun_path - 1);
  s = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s == -1)
    return -errno;
  if (bind (s, (struct sockaddr *) &addr, sizeof addr) == -1) {
    int probe;
    bool live;

    if (errno != EADDRINUSE) {
      r = -errno;
      close (s);
      return r;
    }
    /* A socket left by an earlier run is replaced; a live one is not. */
    probe = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    live = probe >= 0 &&
      connect (probe, (struct sockaddr *) &addr, sizeof addr) == 0;
    if (probe >= 0)
      close (probe);
    if (live) {
      close (s);
      return -EADDRINUSE;
    }
    unlink (path);
    if (bind (s, (struct sockaddr *) &addr, sizeof addr) == -1) {
      r = -errno;
      close (s);
      return r;
    }
  }
  if (listen (s, SOMAXCONN) == -1) {
    r = -errno;
    close (s);
    return r;
  }
  *fd = s;
  return 0;
}

static int
listen_vsock (const char *port, int *fd)
{
  struct sockaddr_vm addr = { .svm_family = AF_VSOCK,
                              .svm_cid = VMADDR_CID_ANY,
                              .svm_port = strtoul (port, NULL, 10) };
  int s, r;

  s = socket (AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s == -1)
    return -errno;
  if (bind (s, (struct sockaddr *) &addr, sizeof addr) == -1 ||
      listen (s, SOMAXCONN) == -1) {
    r = -errno;
    close (s);
    return r;
  }
  *fd = s;
  return 0;
}

/* Open ADDRESS; errors are named (AddressInUse, InvalidParameter). */
int
listener_open (const char *address, int *fd, sd_bus_error *error)
{
  int r;

  errno = 0;
  if (strncmp (address, "tcp:", 4) == 0)
    r = listen_tcp (address + 4, fd);
  else if (strncmp (address, "unix:", 5) == 0)
    r = listen_unix (address + 5, fd);
  else if (strncmp (address, "vsock:", 6) == 0)
    r = listen_vsock (address + 6, fd);
  else
    r = -EINVAL;
  if (r == -EADDRINUSE)
    return sd_bus_error_setf (error, NBDKITD_ERROR_ADDRESS_IN_USE,
                              "Listener '%s': the address is in use", address);
  if (r < 0)
    return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                              "Listener '%s': %s", address, strerror (-r));
  fcntl (*fd, F_SETFL, fcntl (*fd, F_GETFL) | O_NONBLOCK);
  return 0;
}

/* Open every address except "shared" into OUT. */
int
listeners_open (const string_vector *addresses, listener_vector *out,
                sd_bus_error *error)
{
  for (size_t i = 0; i < addresses->len; i++) {
    const char *a = addresses->ptr[i];
    struct listener l = { .fd = -1 };
    int r;

    if (strcmp (a, "shared") == 0)
      continue;
    r = listener_open (a, &l.fd, error);
    if (r < 0) {
      listeners_close (out);
      return r;
    }
    l.address = strdup (a);
    if (l.address == NULL || listener_vector_append (out, l) == -1) {
      free (l.address);
      close (l.fd);
      listeners_close (out);
      return -ENOMEM;
    }
  }
  return 0;
}

void
listeners_close (listener_vector *v)
{
  for (size_t i = 0; i < v->len; i++) {
    struct listener *l = &v->ptr[i];
    sd_event_source_disable_unref (l->watch);
    close (l->fd);
    if (strncmp (l->address, "unix:", 5) == 0)
      unlink (l->address + 5);
    free (l->address);
  }
  listener_vector_reset (v);
}

int
export_listeners_open (struct export *e, sd_bus_error *error)
{
  return listeners_open (&e->def.listeners, &e->listeners, error);
}

void
export_listeners_close (struct export *e)
{
  listeners_close (&e->listeners);
}

static int
on_listener_readable (sd_event_source *s, int fd, uint32_t revents,
                      void *userdata)
{
  struct export *e = userdata;

  /* The first client of an on-demand export: the worker accepts it. */
  export_listeners_watch (e, false);
  if (e->worker == NULL)
    worker_start (e);
  return 0;
}

/* On-demand: while no worker runs, the first client starts one. */
int
export_listeners_watch (struct export *e, bool on)
{
  for (size_t i = 0; i < e->listeners.len; i++) {
    struct listener *l = &e->listeners.ptr[i];
    int r;

    if (!on) {
      if (l->watch)
        sd_event_source_set_enabled (l->watch, SD_EVENT_OFF);
      continue;
    }
    if (l->watch) {
      sd_event_source_set_enabled (l->watch, SD_EVENT_ON);
      continue;
    }
    r = sd_event_add_io (e->ctx->event, &l->watch, l->fd, EPOLLIN,
                         on_listener_readable, e);
    if (r < 0)
      return r;
  }
  return 0;
}

/* The address of a listening socket, as tcp:HOST:PORT or unix:PATH. */
static char *
listener_describe (int fd)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char host[INET6_ADDRSTRLEN], *s = NULL;

  if (getsockname (fd, (struct sockaddr *) &ss, &len) == -1)
    return NULL;
  if (ss.ss_family == AF_UNIX) {
    struct sockaddr_un *un = (struct sockaddr_un *) &ss;
    return asprintf (&s, "unix:%s", un->sun_path) == -1 ? NULL : s;
  }
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *) &ss;
    inet_ntop (AF_INET, &in->sin_addr, host, sizeof host);
    return asprintf (&s, "tcp:%s:%u", in->sin_addr.s_addr ? host : "",
                     ntohs (in->sin_port)) == -1 ? NULL : s;
  }
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
    bool any = IN6_IS_ADDR_UNSPECIFIED (&in6->sin6_addr);
    inet_ntop (AF_INET6, &in6->sin6_addr, host, sizeof host);
    if (any)
      return asprintf (&s, "tcp::%u", ntohs (in6->sin6_port)) == -1 ? NULL : s;
    return asprintf (&s, "tcp:[%s]:%u", host,
                     ntohs (in6->sin6_port)) == -1 ? NULL : s;
  }
  return strdup ("unknown");
}

static int
shared_add (struct context *ctx, int fd)
{
  struct listener l = { .fd = fd, .address = listener_describe (fd) };

  if (l.address == NULL || listener_vector_append (&ctx->shared, l) == -1) {
    free (l.address);
    close (fd);
    return -ENOMEM;
  }
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) | O_NONBLOCK);
  return router_listen (ctx, ctx->shared.len - 1);
}

/* The shared listener: sockets from socket activation, else --listen. */
int
shared_listeners_open (struct context *ctx)
{
  const int *activated;
  size_t n = fdstore_activation_fds (&activated);
  int r;

  if (n > 0) {
    for (size_t i = 0; i < n; i++) {
      if ((r = shared_add (ctx, activated[i])) < 0)
        return r;
      /* The socket unit keeps it: not for the fd store. */
      strcpy (ctx->shared.ptr[ctx->shared.len - 1].fdname, FDSTORE_NOT_OURS);
    }
    return 0;
  }
  if (ctx->config.listen.len == 0) {
    char *d = strdup (DEFAULT_SHARED_LISTEN);
    if (d == NULL || string_vector_append (&ctx->config.listen, d) == -1)
      return -ENOMEM;
  }
  for (size_t i = 0; i < ctx->config.listen.len; i++) {
    sd_bus_error error = SD_BUS_ERROR_NULL;
    char name[FDSTORE_NAME_MAX];
    int fd;

    if (strcmp (ctx->config.listen.ptr[i], "none") == 0)
      continue;
    /* Restarting with --fd-store: the same socket as before. */
    fd = fdstore_claim_shared (ctx->config.listen.ptr[i], name);
    if (fd >= 0) {
      if ((r = shared_add (ctx, fd)) < 0)
        return r;
      strcpy (ctx->shared.ptr[ctx->shared.len - 1].fdname, name);
      continue;
    }
    r = listener_open (ctx->config.listen.ptr[i], &fd, &error);
    if (r < 0) {
      log_error (ctx, "Failed to open the shared listener: %s", error.message);
      sd_bus_error_free (&error);
      return r;
    }
    if ((r = shared_add (ctx, fd)) < 0)
      return r;
  }
  return 0;
}
