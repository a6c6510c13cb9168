/* SPDX-License-Identifier: BSD-3-Clause
 * The nbd plugin's parameters: parsing each key=value and checking the
 * whole set once it is complete (exactly one way to reach the server,
 * and no contradictory options).
 */

#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "nbd-internal.h"
#include "utils.h"

struct nbd_params params = {
  .socket_fd = -1,
  .export = "",
  .tls = -1,
  .tls_verify = -1,
};

NBDKIT_DLL_PUBLIC int nbd_debug_verbose = 0;

/* The key that chose params.mode, for error messages (a literal: nbdkit
 * frees the key strings it passes to config).
 */
static const char *mode_key;

/* arg= values, in order, until config_complete builds the argv. */
static string_vector command_args = empty_vector;

/* shared= as given: -1 if absent (the default depends on the mode). */
static int shared_param = -1;

/* export= was given. */
static bool export_given;

static int
set_mode (enum upstream_mode mode, const char *key)
{
  if (params.mode != MODE_NONE) {
    if (strcmp (mode_key, key) == 0)
      nbdkit_error ("%s= may only be given once", key);
    else
      nbdkit_error ("only one of socket=, hostname=, vhost-cid=, uri=, "
                    "socket-fd= or command= may be given, not both %s= "
                    "and %s=", mode_key, key);
    return -1;
  }
  params.mode = mode;
  mode_key = key;
  return 0;
}

/* Paths are made absolute now: nbdkit changes to / when it forks. */
static int
config_path (char **dst, const char *key, const char *value)
{
  free (*dst);
  *dst = nbdkit_absolute_path (value);
  if (*dst == NULL) {
    nbdkit_error ("%s: cannot make \"%s\" absolute", key, value);
    return -1;
  }
  return 0;
}

static int
config_bool (const char *key, const char *value, int *dst)
{
  int r = nbdkit_parse_bool (value);

  if (r == -1) {
    nbdkit_error ("%s=%s: expecting true or false", key, value);
    return -1;
  }
  *dst = r;
  return 0;
}

/* tls=off|on|require; the usual boolean words mean off or on. */
static int
config_tls (const char *value)
{
  static const char *const off[] = { "off", "false", "no", "0" };
  static const char *const on[] = { "on", "true", "yes", "1" };

  if (strcasecmp (value, "require") == 0) {
    params.tls = LIBNBD_TLS_REQUIRE;
    return 0;
  }
  for (size_t i = 0; i < ARRAY_SIZE (off); ++i) {
    if (strcasecmp (value, off[i]) == 0) {
      params.tls = LIBNBD_TLS_DISABLE;
      return 0;
    }
    if (strcasecmp (value, on[i]) == 0) {
      params.tls = LIBNBD_TLS_ALLOW;
      return 0;
    }
  }
  nbdkit_error ("tls=%s: expecting off, on or require", value);
  return -1;
}

/* Keys that choose how to reach the server. */
static int
config_mode_key (const char *key, const char *value)
{
  if (strcmp (key, "socket") == 0) {
    return set_mode (MODE_SOCKET, "socket") == -1 ? -1 :
      config_path (&params.socket, key, value);
  }
  if (strcmp (key, "hostname") == 0) {
    if (set_mode (MODE_TCP, "hostname") == -1)
      return -1;
    params.hostname = strdup (value);
    if (params.hostname == NULL) {
      nbdkit_error ("strdup: %m");
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "vhost-cid") == 0 || strcmp (key, "vsock") == 0) {
    const char *literal = strcmp (key, "vsock") == 0 ? "vsock" : "vhost-cid";
    return set_mode (MODE_VSOCK, literal) == -1 ? -1 :
      nbdkit_parse_uint32_t (key, value, &params.cid);
  }
  if (strcmp (key, "uri") == 0) {
    if (set_mode (MODE_URI, "uri") == -1)
      return -1;
    params.uri = strdup (value);
    if (params.uri == NULL) {
      nbdkit_error ("strdup: %m");
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "socket-fd") == 0) {
    if (set_mode (MODE_SOCKET_FD, "socket-fd") == -1 ||
        nbdkit_parse_int (key, value, &params.socket_fd) == -1)
      return -1;
    if (params.socket_fd < 0) {
      nbdkit_error ("socket-fd=%s: must not be negative", value);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "command") == 0) {
    if (set_mode (MODE_COMMAND, "command") == -1)
      return -1;
    if (string_vector_append (&params.command, (char *) value) == -1) {
      nbdkit_error ("realloc: %m");
      return -1;
    }
    return 0;
  }
  return 1;                     /* not a mode key */
}

int
nbdplug_config (const char *key, const char *value)
{
  int r = config_mode_key (key, value);

  if (r != 1)
    return r;

  if (strcmp (key, "arg") == 0) {
    if (string_vector_append (&command_args, (char *) value) == -1) {
      nbdkit_error ("realloc: %m");
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "port") == 0) {
    params.port = value;
    return 0;
  }
  if (strcmp (key, "export") == 0) {
    params.export = value;
    export_given = true;
    return 0;
  }
  if (strcmp (key, "retry") == 0)
    return nbdkit_parse_unsigned (key, value, &params.retry);
  if (strcmp (key, "shared") == 0)
    return config_bool (key, value, &shared_param);
  if (strcmp (key, "dynamic-export") == 0) {
    int b;
    if (config_bool (key, value, &b) == -1)
      return -1;
    params.dynamic_export = b;
    return 0;
  }
  if (strcmp (key, "tls") == 0)
    return config_tls (value);
  if (strcmp (key, "tls-certificates") == 0)
    return config_path (&params.tls_certificates, key, value);
  if (strcmp (key, "tls-verify") == 0)
    return config_bool (key, value, &params.tls_verify);
  if (strcmp (key, "tls-username") == 0) {
    params.tls_username = value;
    return 0;
  }
  if (strcmp (key, "tls-psk") == 0)
    return config_path (&params.tls_psk, key, value);

  nbdkit_error ("unknown parameter '%s'", key);
  return -1;
}

/* port=: a service name or number for TCP, a 32-bit number for vsock. */
static int
check_port (void)
{
  if (params.port == NULL)
    return 0;
  if (params.mode == MODE_VSOCK)
    return nbdkit_parse_uint32_t ("port", params.port, &params.vsock_port);
  if (params.mode != MODE_TCP) {
    nbdkit_error ("port= can only be used with hostname= or vhost-cid=, "
                  "not with %s=", mode_key);
    return -1;
  }
  if (*params.port == '\0') {
    nbdkit_error ("port= must not be empty");
    return -1;
  }
  /* A number must be a TCP port; anything else is a service name. */
  if (strspn (params.port, "0123456789") == strlen (params.port)) {
    uint16_t port;
    return nbdkit_parse_uint16_t ("port", params.port, &port);
  }
  return 0;
}

/* The inherited descriptor must be an open socket. */
static int
check_socket_fd (void)
{
  struct stat st;

  if (fstat (params.socket_fd, &st) == -1) {
    nbdkit_error ("socket-fd=%d: %m", params.socket_fd);
    return -1;
  }
  if (!S_ISSOCK (st.st_mode)) {
    nbdkit_error ("socket-fd=%d: not a socket", params.socket_fd);
    return -1;
  }
  return 0;
}

/* Is any TLS option present, and does this libnbd support them? */
static int
check_tls (void)
{
  bool any = params.tls != -1 || params.tls_certificates ||
    params.tls_verify != -1 || params.tls_username || params.tls_psk;
  struct nbd_handle *nbd;
  int have_tls, have_uri;

  if (any && params.tls == -1)
    params.tls = LIBNBD_TLS_ALLOW;
  if (!any && params.mode != MODE_URI)
    return 0;

  nbd = nbd_create ();
  if (nbd == NULL) {
    nbdkit_error ("nbd_create: %s", nbd_get_error ());
    return -1;
  }
  have_tls = nbd_supports_tls (nbd);
  have_uri = nbd_supports_uri (nbd);
  nbd_close (nbd);
  if (any && params.tls != LIBNBD_TLS_DISABLE && !have_tls) {
    nbdkit_error ("tls: this libnbd was built without TLS support");
    return -1;
  }
  if (params.mode == MODE_URI && !have_uri) {
    nbdkit_error ("uri: this libnbd was built without URI support");
    return -1;
  }
  return 0;
}

static int
check_uri (void)
{
  if (strncmp (params.uri, "nbd", 3) != 0 || strstr (params.uri, "://") == NULL) {
    nbdkit_error ("uri=%s: not an NBD URI (expected nbd://, nbds://, "
                  "nbd+unix://, nbds+unix:// or nbd+vsock://)", params.uri);
    return -1;
  }
  if (export_given) {
    nbdkit_error ("export= cannot be used with uri=: put the export name "
                  "in the URI instead");
    return -1;
  }
  return 0;
}

int
nbdplug_config_complete (void)
{
  bool implies_shared;

  if (params.mode == MODE_NONE) {
    nbdkit_error ("one of socket=, hostname=, vhost-cid=, uri=, socket-fd= "
                  "or command= must be given to say which NBD server to "
                  "connect to");
    return -1;
  }
  if (check_port () == -1)
    return -1;

  if (command_args.len > 0 && params.mode != MODE_COMMAND) {
    nbdkit_error ("arg= can only be used with command=");
    return -1;
  }
  if (params.mode == MODE_COMMAND) {
    for (size_t i = 0; i < command_args.len; ++i)
      if (string_vector_append (&params.command, command_args.ptr[i]) == -1) {
        nbdkit_error ("realloc: %m");
        return -1;
      }
    if (string_vector_append (&params.command, NULL) == -1) {
      nbdkit_error ("realloc: %m");
      return -1;
    }
  }
  /* A subprocess or an inherited socket is one connection only. */
  implies_shared = params.mode == MODE_COMMAND ||
    params.mode == MODE_SOCKET_FD;
  if (implies_shared && shared_param == 0) {
    nbdkit_error ("%s= implies shared=true: there is only one connection "
                  "to the server", mode_key);
    return -1;
  }
  params.shared = implies_shared || shared_param == 1;

  if (params.dynamic_export) {
    if (params.shared) {
      nbdkit_error ("dynamic-export=true cannot be used with %s",
                    implies_shared ? (params.mode == MODE_COMMAND ?
                                      "command= (which implies shared=true)" :
                                      "socket-fd= (which implies shared=true)")
                    : "shared=true");
      return -1;
    }
    if (export_given) {
      nbdkit_error ("export= cannot be used with dynamic-export=true");
      return -1;
    }
  }
  if (params.mode == MODE_SOCKET_FD && check_socket_fd () == -1)
    return -1;
  if (params.mode == MODE_URI && check_uri () == -1)
    return -1;
  return check_tls ();
}

void
nbdplug_params_free (void)
{
  free (params.socket);
  free (params.hostname);
  free (params.uri);
  free (params.tls_certificates);
  free (params.tls_psk);
  /* The command vector borrows its strings from nbdkit's argv. */
  string_vector_reset (&params.command);
  string_vector_reset (&command_args);
}
