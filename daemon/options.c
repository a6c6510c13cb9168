/* SPDX-License-Identifier: BSD-3-Clause
 * The a{sv} options of AddExport and Update: reading them into an
 * export definition, the checks that need no process, and reading
 * secrets from the caller's file descriptors.
 */

#include <config.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbdkitd.h"
#include "cleanup.h"

static int invalid (sd_bus_error *error, const char *fs, const char *arg)
  __attribute__ ((format (printf, 2, 0)));

static int
invalid (sd_bus_error *error, const char *fs, const char *arg)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER, fs, arg);
#pragma GCC diagnostic pop
}

static int
read_string (sd_bus_message *m, const char *key, char **dst, sd_bus_error *error)
{
  const char *s;
  char *copy;
  int r;

  r = sd_bus_message_read (m, "v", "s", &s);
  if (r == -ENXIO)
    return invalid (error, "Option '%s' must be a string (s)", key);
  if (r < 0)
    return r;
  if ((copy = strdup (s)) == NULL)
    return -ENOMEM;
  free (*dst);
  *dst = copy;
  return 0;
}

static int
read_basic (sd_bus_message *m, const char *key, char type, void *dst,
            sd_bus_error *error)
{
  char sig[2] = { type, 0 };
  int r;

  if (type == 'b') {
    int b;
    r = sd_bus_message_read (m, "v", sig, &b);
    if (r >= 0)
      *(bool *) dst = b;
  }
  else
    r = sd_bus_message_read (m, "v", sig, dst);
  if (r == -ENXIO)
    return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                              "Option '%s' must be of type %s", key, sig);
  return r;
}

static int
read_strv (sd_bus_message *m, const char *key, string_vector *dst,
           sd_bus_error *error)
{
  char **strv = NULL;
  int r;

  r = sd_bus_message_enter_container (m, 'v', "as");
  if (r == -ENXIO)
    return invalid (error, "Option '%s' must be a string array (as)", key);
  if (r < 0)
    return r;
  r = sd_bus_message_read_strv (m, &strv);
  if (r < 0)
    return r;
  string_vector_free_all (dst);
  for (char **p = strv; p && *p; p++)
    if (string_vector_append (dst, *p) == -1) {
      for (; *p; p++)
        free (*p);
      free (strv);
      return -ENOMEM;
    }
  free (strv);
  return sd_bus_message_exit_container (m);
}

/* Read a(ss) parameters (the caller has entered any variant). */
int
export_params_read (sd_bus_message *m, param_vector *params)
{
  const char *k, *v;
  int r;

  r = sd_bus_message_enter_container (m, 'a', "(ss)");
  if (r < 0)
    return r;
  while ((r = sd_bus_message_read (m, "(ss)", &k, &v)) > 0) {
    struct param p = { .key = strdup (k), .value = strdup (v) };
    if (!p.key || !p.value || param_vector_append (params, p) == -1) {
      free (p.key);
      free (p.value);
      return -ENOMEM;
    }
  }
  if (r < 0)
    return r;
  return sd_bus_message_exit_container (m);
}

static int
read_secrets (sd_bus_message *m, int_vector *fds, string_vector *keys,
              sd_bus_error *error)
{
  const char *k;
  int fd, r;

  r = sd_bus_message_enter_container (m, 'v', "a{sh}");
  if (r == -ENXIO)
    return invalid (error, "Option '%s' must be of type a{sh}", "secrets");
  if (r < 0)
    return r;
  r = sd_bus_message_enter_container (m, 'a', "{sh}");
  if (r < 0)
    return r;
  while ((r = sd_bus_message_read (m, "{sh}", &k, &fd)) > 0) {
    char *key = strdup (k);
    if (key == NULL || string_vector_append (keys, key) == -1 ||
        int_vector_append (fds, fd) == -1) {
      free (key);
      return -ENOMEM;
    }
  }
  if (r < 0)
    return r;
  r = sd_bus_message_exit_container (m);
  if (r < 0)
    return r;
  return sd_bus_message_exit_container (m);
}

static int
read_enum (sd_bus_message *m, const char *key, int (*parse) (const char *),
           int *dst, sd_bus_error *error)
{
  CLEANUP_FREE char *s = NULL;
  int r;

  r = read_string (m, key, &s, error);
  if (r < 0)
    return r;
  r = parse (s);
  if (r < 0)
    return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                              "Option '%s' has an unknown value '%s'", key, s);
  *dst = r;
  return 0;
}

/* One option KEY; the message is positioned at its variant. */
static int
read_option (sd_bus_message *m, const char *key, struct export_def *def,
             bool for_update, bool *no_interaction, int_vector *secret_fds,
             string_vector *secret_keys, sd_bus_error *error)
{
  int v, r;

  if (strcmp (key, "description") == 0)
    return read_string (m, key, &def->description, error);
  if (strcmp (key, "readonly") == 0)
    return read_basic (m, key, 'b', &def->readonly, error);
  if (strcmp (key, "listeners") == 0)
    return read_strv (m, key, &def->listeners, error);
  if (strcmp (key, "tls") == 0) {
    r = read_enum (m, key, tls_mode_from_string, &v, error);
    if (r >= 0)
      def->tls = v;
    return r;
  }
  if (strcmp (key, "tls-certificates") == 0)
    return read_string (m, key, &def->tls_certificates, error);
  if (strcmp (key, "tls-psk") == 0)
    return read_string (m, key, &def->tls_psk, error);
  if (strcmp (key, "tls-verify-peer") == 0)
    return read_basic (m, key, 'b', &def->tls_verify_peer, error);
  if (strcmp (key, "tls-allow") == 0)
    return read_strv (m, key, &def->tls_allow, error);
  if (strcmp (key, "start") == 0) {
    r = read_enum (m, key, start_policy_from_string, &v, error);
    if (r >= 0)
      def->start = v;
    return r;
  }
  if (strcmp (key, "idle-timeout") == 0)
    return read_basic (m, key, 'u', &def->idle_timeout, error);
  if (strcmp (key, "threads") == 0)
    return read_basic (m, key, 'u', &def->threads, error);
  if (strcmp (key, "user") == 0)
    return read_string (m, key, &def->user, error);
  if (strcmp (key, "group") == 0)
    return read_string (m, key, &def->group, error);
  if (strcmp (key, "persist") == 0 && !for_update)
    return read_basic (m, key, 'b', &def->persist, error);
  if (strcmp (key, "secrets") == 0)
    return read_secrets (m, secret_fds, secret_keys, error);
  if (strcmp (key, "auth.no_user_interaction") == 0)
    return read_basic (m, key, 'b', no_interaction, error);
  if (for_update && strcmp (key, "filters") == 0)
    return read_strv (m, key, &def->filters, error);
  if (for_update && strcmp (key, "params") == 0) {
    param_vector params = empty_vector;
    r = sd_bus_message_enter_container (m, 'v', "a(ss)");
    if (r == -ENXIO)
      return invalid (error, "Option '%s' must be of type a(ss)", key);
    if (r < 0 || (r = export_params_read (m, &params)) < 0) {
      param_vector_reset (&params);
      return r;
    }
    /* Secret parameters survive an update of the plain ones. */
    for (size_t i = 0; i < def->params.len; i++) {
      if (def->params.ptr[i].secret) {
        if (param_vector_append (&params, def->params.ptr[i]) == -1)
          return -ENOMEM;
      }
      else {
        free (def->params.ptr[i].key);
        free (def->params.ptr[i].value);
      }
    }
    param_vector_reset (&def->params);
    def->params = params;
    return sd_bus_message_exit_container (m);
  }
  return invalid (error, "Unknown option '%s'", key);
}

/* Read the a{sv} at the current position into DEF. */
int
export_options_parse (sd_bus_message *m, struct export_def *def,
                      bool for_update, bool *no_interaction,
                      int_vector *secret_fds, string_vector *secret_keys,
                      sd_bus_error *error)
{
  const char *key;
  int r;

  r = sd_bus_message_enter_container (m, 'a', "{sv}");
  if (r < 0)
    return r;
  while ((r = sd_bus_message_enter_container (m, 'e', "sv")) > 0) {
    r = sd_bus_message_read (m, "s", &key);
    if (r < 0)
      return r;
    r = read_option (m, key, def, for_update, no_interaction,
                     secret_fds, secret_keys, error);
    if (r < 0)
      return r;
    r = sd_bus_message_exit_container (m);
    if (r < 0)
      return r;
  }
  if (r < 0)
    return r;
  return sd_bus_message_exit_container (m);
}

/* A plugin or filter: a module name, or an absolute path to a module. */
static bool
module_name_ok (const char *s)
{
  if (s[0] == '/')
    return strlen (s) < 4096 && !strstr (s, "/../");
  if (s[0] == '\0' || s[0] == '-' || strlen (s) > 255)
    return false;
  return strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                 "0123456789_-.") == strlen (s) && strcmp (s, ".") &&
    strcmp (s, "..");
}

/* The shared listener's TLS credentials (nbdkitd --tls-certificates,
 * --tls-psk), set once at start-up.
 */
static bool shared_tls_x509, shared_tls_psk;

void
export_options_set_shared_tls (bool x509, bool psk)
{
  shared_tls_x509 = x509;
  shared_tls_psk = psk;
}

/* TLS on the shared listener needs the daemon's credentials; tls-allow
 * applies only there and only to TLS clients.
 */
static int
shared_tls_check (const struct export_def *def, sd_bus_error *error)
{
  bool shared = export_is_shared (def);

  if (def->tls != TLS_MODE_OFF && shared && !shared_tls_x509 &&
      !shared_tls_psk)
    return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                              "Export '%s': TLS on the shared listener needs "
                              "nbdkitd --tls-certificates=DIR or --tls-psk=FILE "
                              "or the SetTLS method (or give the export its "
                              "own listener)",
                              def->name);
  if (def->tls_verify_peer && def->tls != TLS_MODE_OFF && shared &&
      !shared_tls_x509)
    return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                              "Export '%s': tls-verify-peer on the shared "
                              "listener needs nbdkitd --tls-certificates=DIR",
                              def->name);
  if (def->tls_allow.len && (!shared || def->tls == TLS_MODE_OFF))
    return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                              "Export '%s': tls-allow applies to TLS clients of "
                              "the shared listener: it needs the shared "
                              "listener and tls=on or tls=require", def->name);
  for (size_t i = 0; i < def->tls_allow.len; i++)
    if (def->tls_allow.ptr[i][0] == '\0' ||
        strlen (def->tls_allow.ptr[i]) > 1024)
      return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                                "Export '%s': tls-allow entry '%s' must be a "
                                "PSK username or X.509 DN (1 to 1024 bytes)",
                                def->name, def->tls_allow.ptr[i]);
  return 0;
}

/* Every check that needs no process: the dry run (validate.c) does the rest. */
int
export_def_check (const struct export_def *def, sd_bus_error *error)
{
  int r;

  r = export_name_validate (def->name, error);
  if (r < 0)
    return r;
  if (!module_name_ok (def->plugin))
    return sd_bus_error_setf (error, NBDKITD_ERROR_NO_SUCH_PLUGIN,
                              "Export '%s': '%s' is not a plugin name",
                              def->name, def->plugin);
  for (size_t i = 0; i < def->filters.len; i++)
    if (!module_name_ok (def->filters.ptr[i]))
      return sd_bus_error_setf (error, NBDKITD_ERROR_NO_SUCH_FILTER,
                                "Export '%s': '%s' is not a filter name",
                                def->name, def->filters.ptr[i]);
  for (size_t i = 0; i < def->params.len; i++) {
    const char *k = def->params.ptr[i].key;
    /* nbdkit splits key=value at the first '='; a leading '-' would be
     * read as an option.
     */
    if (k[0] == '\0' || k[0] == '-' || strchr (k, '=') || strchr (k, ' '))
      return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                                "Export '%s': invalid parameter key '%s'",
                                def->name, k);
  }
  for (size_t i = 0; i < def->listeners.len; i++) {
    r = listener_address_validate (def->listeners.ptr[i], error);
    if (r < 0)
      return r;
  }
  r = shared_tls_check (def, error);
  if (r < 0)
    return r;
  if (def->threads > 1024)
    return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                              "Export '%s': threads=%u is more than 1024",
                              def->name, def->threads);
  for (size_t i = 0; i < def->params.len; i++)
    if (def->params.ptr[i].secret && def->persist)
      return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                                "Export '%s': secret parameter '%s' needs "
                                "persist=false (secrets are never stored)",
                                def->name, def->params.ptr[i].key);
  return 0;
}

/* Read one secret to end of file, waiting at most a second in total. */
static int
secret_read_fd (int fd, const char *key, char **ret, sd_bus_error *error)
{
  CLEANUP_FREE char *buf = malloc (SECRET_MAX + 1);
  size_t len = 0;
  int waited = 0;

  if (buf == NULL)
    return -ENOMEM;
  for (;;) {
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    ssize_t n;

    if (poll (&pfd, 1, 100) == 0) {
      if (++waited >= 10)
        return invalid (error, "Secret '%s': no end of file within a second", key);
      continue;
    }
    n = read (fd, buf + len, SECRET_MAX - len);
    if (n == -1 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n == -1)
      return sd_bus_error_set_errnof (error, errno,
                                      "Secret '%s': read: %m", key);
    if (n == 0)
      break;
    len += n;
    if (len == SECRET_MAX)
      return invalid (error, "Secret '%s' is too long", key);
  }
  if (memchr (buf, 0, len))
    return invalid (error, "Secret '%s' contains a NUL byte", key);
  buf[len] = '\0';
  *ret = buf;
  buf = NULL;
  return 0;
}

/* Read every secret: each becomes a secret parameter of DEF. */
int
secrets_read (struct export_def *def, const int_vector *fds,
              const string_vector *keys, sd_bus_error *error)
{
  for (size_t i = 0; i < fds->len; i++) {
    struct param p = { .secret = true };
    int r;

    if (keys->ptr[i][0] == '\0' || strchr (keys->ptr[i], '='))
      return invalid (error, "Invalid secret key '%s'", keys->ptr[i]);
    r = secret_read_fd (fds->ptr[i], keys->ptr[i], &p.value, error);
    if (r < 0)
      return r;
    /* A new secret for a key replaces the old one. */
    for (size_t j = 0; j < def->params.len; j++)
      if (def->params.ptr[j].secret &&
          strcmp (def->params.ptr[j].key, keys->ptr[i]) == 0) {
        free (def->params.ptr[j].key);
        free (def->params.ptr[j].value);
        param_vector_remove (&def->params, j);
        break;
      }
    p.key = strdup (keys->ptr[i]);
    if (p.key == NULL || param_vector_append (&def->params, p) == -1) {
      free (p.key);
      free (p.value);
      return -ENOMEM;
    }
  }
  return 0;
}
