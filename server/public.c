/* SPDX-License-Identifier: BSD-3-Clause
 * The helper functions the server exports to plugins and filters:
 * parsing configuration values, paths, sleeping, and facts about the
 * current connection (passwords are in public-password.c).
 */

#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "internal.h"
#include "cleanup.h"
#include "utils.h"

/* Integers. */

/* Parse STR in base 10 (or 0x.. hex, 0.. octal) as a signed or unsigned
 * number within [MIN, MAX].  WHAT names the value in error messages.
 */
static int
parse_signed (const char *what, const char *str, intmax_t min, intmax_t max,
              intmax_t *r)
{
  char *end;
  intmax_t v;

  if (str == NULL || *str == '\0') {
    nbdkit_error ("%s: empty string where we expected a number", what);
    return -1;
  }
  errno = 0;
  v = strtoimax (str, &end, 0);
  if (end == str || *end != '\0') {
    nbdkit_error ("%s: could not parse number: \"%s\"", what, str);
    return -1;
  }
  if (errno == ERANGE || v < min || v > max) {
    nbdkit_error ("%s: number is out of range: \"%s\"", what, str);
    return -1;
  }
  *r = v;
  return 0;
}

static int
parse_unsigned (const char *what, const char *str, uintmax_t max,
                uintmax_t *r)
{
  char *end;
  uintmax_t v;
  const char *p = str;

  if (str == NULL || *str == '\0') {
    nbdkit_error ("%s: empty string where we expected a number", what);
    return -1;
  }
  /* strtoumax silently negates "-1"; refuse any sign. */
  while (isspace ((unsigned char) *p))
    p++;
  if (*p == '-') {
    nbdkit_error ("%s: negative numbers are not allowed: \"%s\"", what, str);
    return -1;
  }
  errno = 0;
  v = strtoumax (str, &end, 0);
  if (end == str || *end != '\0') {
    nbdkit_error ("%s: could not parse number: \"%s\"", what, str);
    return -1;
  }
  if (errno == ERANGE || v > max) {
    nbdkit_error ("%s: number is out of range: \"%s\"", what, str);
    return -1;
  }
  *r = v;
  return 0;
}

#define DEFINE_PARSE_SIGNED(fn, type, min, max)                         \
  NBDKIT_DLL_PUBLIC int                                                 \
  fn (const char *what, const char *str, type *rp)                      \
  {                                                                     \
    intmax_t v;                                                         \
    if (parse_signed (what, str, (min), (max), &v) == -1)               \
      return -1;                                                        \
    if (rp)                                                             \
      *rp = v;                                                          \
    return 0;                                                           \
  }

#define DEFINE_PARSE_UNSIGNED(fn, type, max)                            \
  NBDKIT_DLL_PUBLIC int                                                 \
  fn (const char *what, const char *str, type *rp)                      \
  {                                                                     \
    uintmax_t v;                                                        \
    if (parse_unsigned (what, str, (max), &v) == -1)                    \
      return -1;                                                        \
    if (rp)                                                             \
      *rp = v;                                                          \
    return 0;                                                           \
  }

DEFINE_PARSE_SIGNED (nbdkit_parse_int, int, INT_MIN, INT_MAX)
DEFINE_PARSE_UNSIGNED (nbdkit_parse_unsigned, unsigned, UINT_MAX)
DEFINE_PARSE_SIGNED (nbdkit_parse_int8_t, int8_t, INT8_MIN, INT8_MAX)
DEFINE_PARSE_UNSIGNED (nbdkit_parse_uint8_t, uint8_t, UINT8_MAX)
DEFINE_PARSE_SIGNED (nbdkit_parse_int16_t, int16_t, INT16_MIN, INT16_MAX)
DEFINE_PARSE_UNSIGNED (nbdkit_parse_uint16_t, uint16_t, UINT16_MAX)
DEFINE_PARSE_SIGNED (nbdkit_parse_int32_t, int32_t, INT32_MIN, INT32_MAX)
DEFINE_PARSE_UNSIGNED (nbdkit_parse_uint32_t, uint32_t, UINT32_MAX)
DEFINE_PARSE_SIGNED (nbdkit_parse_int64_t, int64_t, INT64_MIN, INT64_MAX)
DEFINE_PARSE_UNSIGNED (nbdkit_parse_uint64_t, uint64_t, UINT64_MAX)

NBDKIT_DLL_PUBLIC int64_t
nbdkit_parse_size (const char *str)
{
  const char *error;
  int64_t r;

  if (str == NULL) {
    nbdkit_error ("could not parse size string (null)");
    return -1;
  }
  r = parse_human_size (str, &error);
  if (r == -1)
    nbdkit_error ("%s (%s)", error, str);
  return r;
}

/* "0.1", "10%", "1/8", "1e-3" → a probability-like non-negative double. */
NBDKIT_DLL_PUBLIC int
nbdkit_parse_probability (const char *what, const char *str, double *retp)
{
  char *end;
  double v, d;

  if (str == NULL || *str == '\0')
    goto bad;
  errno = 0;
  v = strtod (str, &end);
  if (end == str || errno == ERANGE)
    goto bad;
  if (*end == '%') {
    v /= 100.0;
    end++;
  }
  else if (*end == '/' || *end == ':') {
    const char *denom = end + 1;
    d = strtod (denom, &end);
    if (end == denom || d == 0)
      goto bad;
    v /= d;
  }
  if (*end != '\0' || !isfinite (v))
    goto bad;
  if (v < 0) {
    nbdkit_error ("%s: probability cannot be negative: %s", what, str);
    return -1;
  }
  if (retp)
    *retp = v;
  return 0;

 bad:
  nbdkit_error ("%s: could not parse probability or percentage: %s",
                what, str ? str : "(null)");
  return -1;
}

NBDKIT_DLL_PUBLIC int
nbdkit_parse_bool (const char *str)
{
  static const char *yes[] = { "1", "true", "t", "yes", "y", "on" };
  static const char *no[] = { "0", "false", "f", "no", "n", "off" };
  size_t i;

  if (str != NULL) {
    for (i = 0; i < ARRAY_SIZE (yes); ++i)
      if (strcasecmp (str, yes[i]) == 0)
        return 1;
    for (i = 0; i < ARRAY_SIZE (no); ++i)
      if (strcasecmp (str, no[i]) == 0)
        return 0;
  }
  nbdkit_error ("could not decipher boolean (%s)", str ? str : "(null)");
  return -1;
}

/* Key=value on the command line: the key must look like an identifier,
 * otherwise the whole argument is a value for the magic config key.
 */
int
parse_plugin_key_value (const char *arg, char **key, const char **value)
{
  size_t n = strcspn (arg, "=");
  size_t i;

  if (arg[n] != '=' || n == 0 || !isalpha ((unsigned char) arg[0]))
    return -1;
  for (i = 1; i < n; ++i) {
    unsigned char c = arg[i];
    if (!isalnum (c) && c != '_' && c != '-' && c != '.')
      return -1;
  }
  *key = strndup (arg, n);
  if (*key == NULL) {
    perror ("strndup");
    exit (EXIT_FAILURE);
  }
  *value = &arg[n + 1];
  return 0;
}

/* Paths. */

NBDKIT_DLL_PUBLIC char *
nbdkit_absolute_path (const char *path)
{
  CLEANUP_FREE char *cwd = NULL;
  char *ret;

  if (path == NULL || *path == '\0') {
    nbdkit_error ("cannot convert null or empty path to an absolute path");
    return NULL;
  }
  if (*path == '/') {
    ret = strdup (path);
    if (ret == NULL)
      nbdkit_error ("strdup: %m");
    return ret;
  }
  cwd = getcwd (NULL, 0);
  if (cwd == NULL) {
    nbdkit_error ("getcwd: %m");
    return NULL;
  }
  if (asprintf (&ret, "%s/%s", cwd, path) == -1) {
    nbdkit_error ("asprintf: %m");
    return NULL;
  }
  return ret;
}

NBDKIT_DLL_PUBLIC char *
nbdkit_realpath (const char *path)
{
  char *ret;

  if (path == NULL || *path == '\0') {
    nbdkit_error ("cannot resolve a null or empty path");
    return NULL;
  }
  ret = realpath (path, NULL);
  if (ret == NULL)
    nbdkit_error ("realpath: %s: %m", path);
  return ret;
}

/* Sleeping: wakes early when the server or this connection is shutting
 * down, returning -1 with ESHUTDOWN.
 */
NBDKIT_DLL_PUBLIC int
nbdkit_nanosleep (unsigned sec, unsigned nsec)
{
  struct connection *conn = threadlocal_get_conn ();
  struct timespec deadline, now;
  struct pollfd fds[2];
  int nfds = 0, status_fd;

  clock_gettime (CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += sec + nsec / 1000000000;
  deadline.tv_nsec += nsec % 1000000000;
  if (deadline.tv_nsec >= 1000000000) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000;
  }

  for (;;) {
    int64_t ms;
    int r;

    /* The status pipe stays readable once the connection starts
     * closing, so only watch it while the connection is healthy.
     */
    nfds = 0;
    if (quit_fd >= 0)
      fds[nfds++] = (struct pollfd) { .fd = quit_fd, .events = POLLIN };
    if (conn && connection_get_status (conn) == CONN_OPEN &&
        (status_fd = connection_status_fd (conn)) >= 0)
      fds[nfds++] = (struct pollfd) { .fd = status_fd, .events = POLLIN };

    /* A client that hung up or disconnected politely may still be
     * waited for (a delay in .close); a failed connection or a server
     * shutdown may not.
     */
    if (quitting () || (conn && connection_get_status (conn) == CONN_DEAD)) {
      nbdkit_error ("aborting sleep to shut down");
      errno = ESHUTDOWN;
      return -1;
    }
    clock_gettime (CLOCK_MONOTONIC, &now);
    ms = (deadline.tv_sec - now.tv_sec) * 1000 +
      (deadline.tv_nsec - now.tv_nsec) / 1000000;
    if (ms <= 0) {
      /* Sub-millisecond remainder. */
      if (deadline.tv_sec > now.tv_sec ||
          (deadline.tv_sec == now.tv_sec && deadline.tv_nsec > now.tv_nsec))
        clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL);
      return 0;
    }
    r = poll (fds, nfds, ms > INT_MAX ? INT_MAX : (int) ms);
    if (r == -1 && errno != EINTR) {
      nbdkit_error ("poll: %m");
      return -1;
    }
  }
}

/* The current connection. */

static struct connection *
current_connection (const char *fn)
{
  struct connection *conn = threadlocal_get_conn ();

  if (conn == NULL)
    nbdkit_error ("%s: no connection is associated with this thread", fn);
  return conn;
}

NBDKIT_DLL_PUBLIC const char *
nbdkit_export_name (void)
{
  struct connection *conn = current_connection ("nbdkit_export_name");

  if (conn == NULL)
    return NULL;
  return conn->exportname ? conn->exportname : "";
}

NBDKIT_DLL_PUBLIC int
nbdkit_is_tls (void)
{
  struct connection *conn = threadlocal_get_conn ();

  if (conn == NULL)
    /* Outside a connection (a shared context): TLS only if required. */
    return config.tls == TLS_REQUIRE;
  return conn->using_tls;
}

NBDKIT_DLL_PUBLIC int
nbdkit_peer_name (struct sockaddr *addr, socklen_t *addrlen)
{
  struct connection *conn = current_connection ("nbdkit_peer_name");

  if (conn == NULL)
    return -1;
  if (conn->peer_addrlen == 0) {
    nbdkit_error ("nbdkit_peer_name: the peer address is not known "
                  "(not a socket)");
    return -1;
  }
  memcpy (addr, &conn->peer_addr,
          MIN (*addrlen, conn->peer_addrlen));
  *addrlen = conn->peer_addrlen;
  return 0;
}

static int64_t
peer_cred (const char *fn, int64_t value)
{
  struct connection *conn = current_connection (fn);

  if (conn == NULL)
    return -1;
  if (value < 0) {
    nbdkit_error ("%s: not supported on this socket (only on local "
                  "Unix domain sockets)", fn);
    return -1;
  }
  return value;
}

NBDKIT_DLL_PUBLIC int64_t
nbdkit_peer_pid (void)
{
  struct connection *conn = threadlocal_get_conn ();
  return peer_cred ("nbdkit_peer_pid", conn ? conn->peer_pid : -1);
}

NBDKIT_DLL_PUBLIC int64_t
nbdkit_peer_uid (void)
{
  struct connection *conn = threadlocal_get_conn ();
  return peer_cred ("nbdkit_peer_uid", conn ? conn->peer_uid : -1);
}

NBDKIT_DLL_PUBLIC int64_t
nbdkit_peer_gid (void)
{
  struct connection *conn = threadlocal_get_conn ();
  return peer_cred ("nbdkit_peer_gid", conn ? conn->peer_gid : -1);
}

static char *
peer_tls_string (const char *fn, size_t offset)
{
  struct connection *conn = current_connection (fn);
  const char *value;
  char *r;

  if (conn == NULL)
    return NULL;
  value = *(char **) ((char *) conn + offset);
  r = strdup (value ? value : "");
  if (r == NULL)
    nbdkit_error ("%s: strdup: %m", fn);
  return r;
}

NBDKIT_DLL_PUBLIC char *
nbdkit_peer_tls_dn (void)
{
  return peer_tls_string ("nbdkit_peer_tls_dn",
                          offsetof (struct connection, tls_dn));
}

NBDKIT_DLL_PUBLIC char *
nbdkit_peer_tls_issuer_dn (void)
{
  return peer_tls_string ("nbdkit_peer_tls_issuer_dn",
                          offsetof (struct connection, tls_issuer_dn));
}

NBDKIT_DLL_PUBLIC char *
nbdkit_peer_tls_username (void)
{
  return peer_tls_string ("nbdkit_peer_tls_username",
                          offsetof (struct connection, tls_psk_username));
}

NBDKIT_DLL_PUBLIC void
nbdkit_disconnect (int force)
{
  struct connection *conn = threadlocal_get_conn ();

  if (conn == NULL)
    return;
  debug ("nbdkit_disconnect (force=%d)", force);
  connection_disconnect (conn, force, CLOSE_UNKNOWN);
}

/* Interned strings.  Inside a connection they live until it closes;
 * otherwise until the server exits.
 */
static string_vector global_interns = empty_vector;
static pthread_mutex_t intern_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *
intern (char *str)
{
  struct connection *conn = threadlocal_get_conn ();
  int r;

  if (str == NULL) {
    nbdkit_error ("strdup: %m");
    return NULL;
  }
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&intern_lock);
  r = string_vector_append (conn ? &conn->interns : &global_interns, str);
  if (r == -1) {
    nbdkit_error ("realloc: %m");
    free (str);
    return NULL;
  }
  return str;
}

NBDKIT_DLL_PUBLIC const char *
nbdkit_strndup_intern (const char *str, size_t n)
{
  return intern (strndup (str, n));
}

NBDKIT_DLL_PUBLIC const char *
nbdkit_strdup_intern (const char *str)
{
  return intern (strdup (str));
}

NBDKIT_DLL_PUBLIC const char *
nbdkit_vprintf_intern (const char *fmt, va_list ap)
{
  char *str;

  if (vasprintf (&str, fmt, ap) == -1)
    return intern (NULL);
  return intern (str);
}

NBDKIT_DLL_PUBLIC const char *
nbdkit_printf_intern (const char *fmt, ...)
{
  va_list ap;
  const char *r;

  va_start (ap, fmt);
  r = nbdkit_vprintf_intern (fmt, ap);
  va_end (ap);
  return r;
}
