/* SPDX-License-Identifier: BSD-3-Clause
 * The pool of libcurl handles shared by every client connection.  A
 * handle keeps its server connection alive between requests, so the
 * pool size (connections=) bounds the connections made to the server.
 * Handles are created on first need and live until unload.
 */

#include <config.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "vector.h"
#include "curl-internal.h"

DEFINE_VECTOR_TYPE (handle_vector, struct curl_handle *);

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
/* Handles not in use, protected by pool_lock. */
static handle_vector idle = empty_vector;
/* Handles that exist (idle or in use), protected by pool_lock. */
static unsigned nr_handles;

/* Cookies (when the cookie engine is on), DNS answers and TLS sessions
 * are shared by all handles, so a cookie one handle receives is sent by
 * all, and the cookiejar= file gets them all.  Created by pool_init.
 */
static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

static void
share_lock (CURL *c, curl_lock_data data, curl_lock_access access,
            void *opaque)
{
  pthread_mutex_lock (&share_locks[data]);
}

static void
share_unlock (CURL *c, curl_lock_data data, void *opaque)
{
  pthread_mutex_unlock (&share_locks[data]);
}

int
pool_init (void)
{
  CURLSHcode rc = CURLSHE_OK;
  size_t i;

  for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init (&share_locks[i], NULL);
  share = curl_share_init ();
  if (share == NULL) {
    nbdkit_error ("curl_share_init: failed");
    return -1;
  }
  if (rc == CURLSHE_OK)
    rc = curl_share_setopt (share, CURLSHOPT_LOCKFUNC, share_lock);
  if (rc == CURLSHE_OK)
    rc = curl_share_setopt (share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  if (rc == CURLSHE_OK)
    rc = curl_share_setopt (share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
  if (rc == CURLSHE_OK)
    rc = curl_share_setopt (share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  if (rc == CURLSHE_OK)
    rc = curl_share_setopt (share, CURLSHOPT_SHARE,
                            CURL_LOCK_DATA_SSL_SESSION);
  if (rc != CURLSHE_OK) {
    nbdkit_error ("curl_share_setopt: %s", curl_share_strerror (rc));
    return -1;
  }
  return 0;
}

/* Set a string option only if the parameter was given. */
#define SET_STRING(opt, value, key)                             \
  do {                                                          \
    if ((value) != NULL &&                                      \
        set_option_ptr (h, opt, #opt, (value), key) == -1)      \
      goto fail;                                                \
  } while (0)

static int
set_option_ptr (struct curl_handle *h, CURLoption opt, const char *optname,
                const void *value, const char *key)
{
  CURLcode rc = curl_easy_setopt (h->c, opt, value);

  if (rc != CURLE_OK) {
    nbdkit_error ("%s: %s: %s", key, optname, curl_easy_strerror (rc));
    return -1;
  }
  return 0;
}

static int
set_option_long (struct curl_handle *h, CURLoption opt, const char *optname,
                 long value, const char *key)
{
  CURLcode rc = curl_easy_setopt (h->c, opt, value);

  if (rc != CURLE_OK) {
    nbdkit_error ("%s: %s: %s", key, optname, curl_easy_strerror (rc));
    return -1;
  }
  return 0;
}

#define SET_LONG(opt, value, key)                                       \
  do {                                                                  \
    if (set_option_long (h, opt, #opt, (long) (value), key) == -1)      \
      goto fail;                                                        \
  } while (0)

/* Apply the connection, authentication and TLS parameters. */
static int
apply_config (struct curl_handle *h)
{
  SET_STRING (CURLOPT_URL, config.url, "url");
  SET_LONG (CURLOPT_VERBOSE, curl_debug_verbose != 0, "-D curl.verbose");
  SET_LONG (CURLOPT_NOSIGNAL, 1, "url");
  SET_LONG (CURLOPT_FAILONERROR, 0, "url");
  SET_LONG (CURLOPT_FOLLOWLOCATION, config.followlocation, "followlocation");
  SET_STRING (CURLOPT_PROTOCOLS_STR, config.protocols, "protocols");
  SET_STRING (CURLOPT_REDIR_PROTOCOLS_STR, config.protocols, "protocols");
  SET_STRING (CURLOPT_USERNAME, config.user, "user");
  SET_STRING (CURLOPT_PASSWORD, config.password, "password");
  SET_STRING (CURLOPT_COOKIE, config.cookie, "cookie");
  SET_STRING (CURLOPT_COOKIEFILE, config.cookiefile, "cookiefile");
  SET_STRING (CURLOPT_COOKIEJAR, config.cookiejar, "cookiejar");
  SET_STRING (CURLOPT_HTTPHEADER, config.headers, "header");
  SET_STRING (CURLOPT_USERAGENT, config.user_agent, "user-agent");
  SET_STRING (CURLOPT_PROXY, config.proxy, "proxy");
  SET_STRING (CURLOPT_PROXYUSERNAME, config.proxy_user, "proxy-user");
  SET_STRING (CURLOPT_PROXYPASSWORD, config.proxy_password, "proxy-password");
  SET_LONG (CURLOPT_SSL_VERIFYPEER, config.sslverify, "sslverify");
  SET_LONG (CURLOPT_SSL_VERIFYHOST, config.sslverify ? 2 : 0, "sslverify");
  SET_STRING (CURLOPT_CAINFO, config.cainfo, "cainfo");
  SET_STRING (CURLOPT_CAPATH, config.capath, "capath");
  if (config.ssl_version != CURL_SSLVERSION_DEFAULT)
    SET_LONG (CURLOPT_SSLVERSION, config.ssl_version, "ssl-version");
  SET_STRING (CURLOPT_SSL_CIPHER_LIST, config.ssl_cipher_list,
              "ssl-cipher-list");
  SET_STRING (CURLOPT_TLS13_CIPHERS, config.tls13_ciphers, "tls13-ciphers");
  SET_LONG (CURLOPT_TCP_KEEPALIVE, config.tcp_keepalive, "tcp-keepalive");
  SET_LONG (CURLOPT_TCP_NODELAY, config.tcp_nodelay, "tcp-nodelay");
  if (config.timeout > 0)
    SET_LONG (CURLOPT_TIMEOUT, config.timeout, "timeout");
  SET_STRING (CURLOPT_UNIX_SOCKET_PATH, config.unix_socket_path,
              "unix-socket-path");
  SET_STRING (CURLOPT_ERRORBUFFER, h->errbuf, "url");
  SET_STRING (CURLOPT_SHARE, share, "url");
  return 0;

 fail:
  return -1;
}

struct curl_handle *
pool_new_handle (void)
{
  struct curl_handle *h = calloc (1, sizeof *h);

  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  h->c = curl_easy_init ();
  if (h->c == NULL) {
    nbdkit_error ("curl_easy_init: failed to create a libcurl handle");
    free (h);
    return NULL;
  }
  if (apply_config (h) == -1) {
    pool_free_handle (h);
    return NULL;
  }
  return h;
}

/* curl_easy_cleanup also writes the cookiejar= file, if any. */
void
pool_free_handle (struct curl_handle *h)
{
  if (h == NULL)
    return;
  curl_easy_cleanup (h->c);
  free (h);
}

/* Take an idle handle, create one if fewer than connections= exist,
 * or wait until another thread puts one back.
 */
struct curl_handle *
pool_get (void)
{
  struct curl_handle *h;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool_lock);
    while (idle.len == 0 && nr_handles >= config.connections)
      pthread_cond_wait (&pool_cond, &pool_lock);
    if (idle.len > 0) {
      h = idle.ptr[--idle.len];
      return h;
    }
    /* Reserve the place now so that concurrent callers wait. */
    nr_handles++;
  }

  h = pool_new_handle ();
  if (h == NULL) {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool_lock);
    nr_handles--;
    pthread_cond_signal (&pool_cond);
    return NULL;
  }
  nbdkit_debug ("curl: created handle %u of at most %u",
                nr_handles, config.connections);
  return h;
}

void
pool_put (struct curl_handle *h)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&pool_lock);

  /* If the idle list cannot grow, drop the handle: a later pool_get
   * makes a new one.
   */
  if (handle_vector_append (&idle, h) == -1) {
    nbdkit_debug ("curl: cannot keep an idle handle: %m");
    pool_free_handle (h);
    nr_handles--;
  }
  pthread_cond_signal (&pool_cond);
}

void
pool_unload (void)
{
  size_t i;

  for (i = 0; i < idle.len; i++)
    pool_free_handle (idle.ptr[i]);
  free (idle.ptr);
  idle.ptr = NULL;
  idle.len = idle.cap = 0;
  nr_handles = 0;
  if (share != NULL)
    curl_share_cleanup (share);
  share = NULL;
}
