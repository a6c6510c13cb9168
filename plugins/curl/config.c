/* SPDX-License-Identifier: BSD-3-Clause
 * The curl plugin's parameters: parsing each key=value, and the checks
 * made once all are known (config_complete).
 */

#include <config.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "curl-internal.h"

struct curl_config config = {
  .ssl_version = CURL_SSLVERSION_DEFAULT,
  .sslverify = true,
  .followlocation = true,
  .tcp_nodelay = true,
  .connections = 4,
};

/* Upper bound for connections=: each handle may hold a server connection. */
#define MAX_CONNECTIONS 1024

/* The protocols nbdkit 1.32 documents for protocols=. */
static const char *const known_protocols[] = {
  "dict", "file", "ftp", "ftps", "gopher", "gophers", "http", "https",
  "imap", "imaps", "ldap", "ldaps", "mqtt", "pop3", "pop3s", "rtmp",
  "rtmpe", "rtmps", "rtmpt", "rtmpte", "rtmpts", "rtsp", "scp", "sftp",
  "smb", "smbs", "smtp", "smtps", "telnet", "tftp", NULL
};

static const struct {
  const char *name;
  long value;
} ssl_versions[] = {
  { "default", CURL_SSLVERSION_DEFAULT },
  { "tlsv1", CURL_SSLVERSION_TLSv1 },
  { "sslv2", CURL_SSLVERSION_SSLv2 },
  { "sslv3", CURL_SSLVERSION_SSLv3 },
  { "tlsv1.0", CURL_SSLVERSION_TLSv1_0 },
  { "tlsv1.1", CURL_SSLVERSION_TLSv1_1 },
  { "tlsv1.2", CURL_SSLVERSION_TLSv1_2 },
  { "tlsv1.3", CURL_SSLVERSION_TLSv1_3 },
};

/* Replace *field by a copy of VALUE (a repeated key: the last wins). */
static int
set_string (char **field, const char *key, const char *value)
{
  char *copy = strdup (value);

  if (copy == NULL) {
    nbdkit_error ("%s: strdup: %m", key);
    return -1;
  }
  free (*field);
  *field = copy;
  return 0;
}

/* password=, proxy-password= and cookie= accept -, +FILE and -FD. */
static int
set_secret (char **field, const char *key, const char *value)
{
  char *secret;

  if (nbdkit_read_password (value, &secret) == -1)
    return -1;
  free (*field);
  *field = secret;
  return 0;
}

static int
set_bool (bool *field, const char *key, const char *value)
{
  int r = nbdkit_parse_bool (value);

  if (r == -1) {
    nbdkit_error ("%s=%s: expected a boolean (true/false)", key, value);
    return -1;
  }
  *field = r;
  return 0;
}

static bool
is_known_protocol (const char *name, size_t len)
{
  size_t i;

  for (i = 0; known_protocols[i] != NULL; i++)
    if (strlen (known_protocols[i]) == len &&
        strncasecmp (known_protocols[i], name, len) == 0)
      return true;
  return false;
}

/* protocols=PROTO,PROTO,...: every name must be one we know. */
static int
set_protocols (const char *value)
{
  const char *p = value;
  size_t len;

  if (*value == '\0') {
    nbdkit_error ("protocols=: the list of protocols is empty");
    return -1;
  }
  for (;;) {
    len = strcspn (p, ",");
    if (!is_known_protocol (p, len)) {
      nbdkit_error ("protocols=%s: unknown protocol \"%.*s\"",
                    value, (int) len, p);
      return -1;
    }
    if (p[len] == '\0')
      break;
    p += len + 1;
  }
  return set_string (&config.protocols, "protocols", value);
}

static int
set_ssl_version (const char *value)
{
  size_t i;

  for (i = 0; i < sizeof ssl_versions / sizeof ssl_versions[0]; i++) {
    if (strcasecmp (value, ssl_versions[i].name) == 0) {
      config.ssl_version = ssl_versions[i].value;
      return 0;
    }
  }
  nbdkit_error ("ssl-version=%s: unknown version (use tlsv1, sslv2, sslv3, "
                "tlsv1.0, tlsv1.1, tlsv1.2 or tlsv1.3)", value);
  return -1;
}

static int
set_timeout (const char *value)
{
  int secs;

  if (nbdkit_parse_int ("timeout", value, &secs) == -1)
    return -1;
  if (secs < 0) {
    nbdkit_error ("timeout=%s: the timeout cannot be negative", value);
    return -1;
  }
  config.timeout = secs;
  return 0;
}

static int
set_connections (const char *value)
{
  unsigned n;

  if (nbdkit_parse_unsigned ("connections", value, &n) == -1)
    return -1;
  if (n < 1 || n > MAX_CONNECTIONS) {
    nbdkit_error ("connections=%s: must be between 1 and %d",
                  value, MAX_CONNECTIONS);
    return -1;
  }
  config.connections = n;
  return 0;
}

/* header-script-renew=, cookie-script-renew=: seconds, 0 for never. */
static int
set_renew (unsigned *field, const char *key, const char *value)
{
  if (nbdkit_parse_unsigned (key, value, field) == -1)
    return -1;
  return 0;
}

static int
add_header (const char *value)
{
  struct curl_slist *list;

  if (strchr (value, '\r') || strchr (value, '\n')) {
    nbdkit_error ("header=%s: a header cannot contain a line break", value);
    return -1;
  }
  list = curl_slist_append (config.headers, value);
  if (list == NULL) {
    nbdkit_error ("header: curl_slist_append: %m");
    return -1;
  }
  config.headers = list;
  return 0;
}

/* Keys whose value is stored as given. */
static const struct {
  const char *key;
  char **field;
} string_keys[] = {
  { "url", &config.url },
  { "user", &config.user },
  { "cookiefile", &config.cookiefile },
  { "cookiejar", &config.cookiejar },
  { "user-agent", &config.user_agent },
  { "proxy", &config.proxy },
  { "proxy-user", &config.proxy_user },
  { "cainfo", &config.cainfo },
  { "capath", &config.capath },
  { "ssl-cipher-list", &config.ssl_cipher_list },
  { "tls13-ciphers", &config.tls13_ciphers },
  { "unix-socket-path", &config.unix_socket_path },
  { "header-script", &config.header_script },
  { "cookie-script", &config.cookie_script },
};

static const struct {
  const char *key;
  bool *field;
} bool_keys[] = {
  { "sslverify", &config.sslverify },
  { "followlocation", &config.followlocation },
  { "tcp-keepalive", &config.tcp_keepalive },
  { "tcp-nodelay", &config.tcp_nodelay },
};

int
curl_config_key (const char *key, const char *value)
{
  size_t i;

  for (i = 0; i < sizeof string_keys / sizeof string_keys[0]; i++)
    if (strcmp (key, string_keys[i].key) == 0)
      return set_string (string_keys[i].field, key, value);
  for (i = 0; i < sizeof bool_keys / sizeof bool_keys[0]; i++)
    if (strcmp (key, bool_keys[i].key) == 0)
      return set_bool (bool_keys[i].field, key, value);

  if (strcmp (key, "password") == 0)
    return set_secret (&config.password, key, value);
  if (strcmp (key, "proxy-password") == 0)
    return set_secret (&config.proxy_password, key, value);
  if (strcmp (key, "cookie") == 0) {
    if (config.cookie != NULL) {
      nbdkit_error ("cookie=%s: cookie= can be given only once "
                    "(join several cookies with \"; \")", value);
      return -1;
    }
    return set_secret (&config.cookie, key, value);
  }
  if (strcmp (key, "header") == 0)
    return add_header (value);
  if (strcmp (key, "header-script-renew") == 0)
    return set_renew (&config.header_script_renew, key, value);
  if (strcmp (key, "cookie-script-renew") == 0)
    return set_renew (&config.cookie_script_renew, key, value);
  if (strcmp (key, "protocols") == 0)
    return set_protocols (value);
  if (strcmp (key, "ssl-version") == 0)
    return set_ssl_version (value);
  if (strcmp (key, "timeout") == 0)
    return set_timeout (value);
  if (strcmp (key, "connections") == 0)
    return set_connections (value);

  nbdkit_error ("unknown parameter '%s'", key);
  return -1;
}

/* The URL must parse (libcurl guesses a missing scheme, as it does when
 * given the URL to fetch).
 */
static int
check_url (void)
{
  CURLU *u;
  CURLUcode rc;
  char *scheme = NULL;

  u = curl_url ();
  if (u == NULL) {
    nbdkit_error ("curl_url: %m");
    return -1;
  }
  rc = curl_url_set (u, CURLUPART_URL, config.url,
                     CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME);
  if (rc == CURLUE_OK)
    rc = curl_url_get (u, CURLUPART_SCHEME, &scheme, 0);
  curl_url_cleanup (u);
  if (rc != CURLUE_OK) {
    nbdkit_error ("url=%s: invalid URL: %s",
                  config.url, curl_url_strerror (rc));
    return -1;
  }
  config.http_url = strcasecmp (scheme, "http") == 0 ||
                    strcasecmp (scheme, "https") == 0;
  curl_free (scheme);
  return 0;
}

/* The scripts replace header= and cookie=, and renewing needs a script. */
static int
check_scripts (void)
{
  if (config.header_script && config.headers) {
    nbdkit_error ("header-script= cannot be used with header=");
    return -1;
  }
  if (config.cookie_script && config.cookie) {
    nbdkit_error ("cookie-script= cannot be used with cookie=");
    return -1;
  }
  if (config.header_script_renew > 0 && config.header_script == NULL) {
    nbdkit_error ("header-script-renew=%u needs header-script=",
                  config.header_script_renew);
    return -1;
  }
  if (config.cookie_script_renew > 0 && config.cookie_script == NULL) {
    nbdkit_error ("cookie-script-renew=%u needs cookie-script=",
                  config.cookie_script_renew);
    return -1;
  }
  return 0;
}

int
curl_config_check (void)
{
  struct curl_handle *h;

  if (config.url == NULL) {
    nbdkit_error ("you must supply the url=<URL> parameter");
    return -1;
  }
  if (check_url () == -1)
    return -1;
  if (check_scripts () == -1)
    return -1;
  if (config.password != NULL && config.user == NULL)
    nbdkit_debug ("password= without user=: the user must be in the URL");

  /* Apply every option to one handle now, so that a value libcurl
   * refuses (a protocol it was built without, say) is reported before
   * nbdkit starts serving.
   */
  h = pool_new_handle ();
  if (h == NULL)
    return -1;
  pool_free_handle (h);
  return 0;
}

void
curl_config_free (void)
{
  size_t i;

  for (i = 0; i < sizeof string_keys / sizeof string_keys[0]; i++) {
    free (*string_keys[i].field);
    *string_keys[i].field = NULL;
  }
  free (config.password);
  free (config.proxy_password);
  free (config.cookie);
  free (config.protocols);
  curl_slist_free_all (config.headers);
  config.password = config.proxy_password = config.cookie = NULL;
  config.protocols = NULL;
  config.headers = NULL;
}
