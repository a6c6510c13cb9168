/* SPDX-License-Identifier: BSD-3-Clause
 * The curl plugin's private header: its configuration (config.c), the
 * pool of libcurl handles shared by all clients (pool.c) and the HTTP,
 * FTP or file requests made on one handle (request.c).
 */

#ifndef NBDKIT_CURL_INTERNAL_H
#define NBDKIT_CURL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

/* Everything config.c parsed from the command line; read-only once
 * config_complete has succeeded.  Strings are owned (freed at unload).
 */
struct curl_config {
  char *url;                    /* [url=]URL, required */
  char *user;                   /* user= */
  char *password;               /* password=, after nbdkit_read_password */
  char *cookie;                 /* cookie=, after nbdkit_read_password */
  char *cookiefile;             /* cookiefile= ("" enables cookies) */
  char *cookiejar;              /* cookiejar= */
  struct curl_slist *headers;   /* header= (repeatable) */
  char *header_script;          /* header-script= */
  unsigned header_script_renew; /* header-script-renew= seconds, 0 never */
  char *cookie_script;          /* cookie-script= */
  unsigned cookie_script_renew; /* cookie-script-renew= seconds, 0 never */
  char *user_agent;             /* user-agent= */
  char *protocols;              /* protocols=, checked, for *_PROTOCOLS_STR */
  char *proxy;                  /* proxy= */
  char *proxy_user;             /* proxy-user= */
  char *proxy_password;         /* proxy-password= */
  char *cainfo;                 /* cainfo= ("" means no default store) */
  char *capath;                 /* capath= */
  char *ssl_cipher_list;        /* ssl-cipher-list= */
  char *tls13_ciphers;          /* tls13-ciphers= */
  char *unix_socket_path;       /* unix-socket-path= */
  long ssl_version;             /* ssl-version=, a CURL_SSLVERSION_* */
  long timeout;                 /* timeout= seconds, 0 for libcurl's */
  bool sslverify;               /* sslverify=, default true */
  bool followlocation;          /* followlocation=, default true */
  bool tcp_keepalive;           /* tcp-keepalive=, default false */
  bool tcp_nodelay;             /* tcp-nodelay=, default true */
  unsigned connections;         /* connections=, size of the handle pool */
  bool http_url;                /* the URL's scheme is http or https */
};

extern struct curl_config config;

/* -D curl.verbose=1: libcurl's own tracing (CURLOPT_VERBOSE) to stderr. */
extern int curl_debug_verbose;
/* -D curl.scripts=1: log what header-script and cookie-script print. */
extern int curl_debug_scripts;

/* config.c */
extern int curl_config_key (const char *key, const char *value);
extern int curl_config_check (void);
extern void curl_config_free (void);
#define curl_config_help \
  "[url=]<URL>               (required) The disk image URL to serve.\n" \
  "user=<USER>               The user to log in as.\n" \
  "password=<PASSWORD>       The password (or -, +FILE, -FD).\n" \
  "cookie=<COOKIE>           Cookies for HTTP/HTTPS (or -, +FILE, -FD).\n" \
  "cookiefile=<FILENAME>     Enable cookies, reading them from a file.\n" \
  "cookiejar=<FILENAME>      Enable cookies, saved to the file at exit.\n" \
  "header=<HEADER>           Add or remove an HTTP/HTTPS header.\n" \
  "header-script=<SCRIPT>    Script printing the HTTP/HTTPS headers.\n" \
  "header-script-renew=<SECS> Rerun header-script after SECS seconds.\n" \
  "cookie-script=<SCRIPT>    Script printing the HTTP/HTTPS cookie.\n" \
  "cookie-script-renew=<SECS> Rerun cookie-script after SECS seconds.\n" \
  "user-agent=<USER-AGENT>   Send this User-Agent for HTTP/HTTPS.\n" \
  "followlocation=false      Do not follow redirects.\n" \
  "protocols=PROTO,PROTO,..  Limit the protocols allowed.\n" \
  "proxy=<PROXY>             Set the proxy URL.\n" \
  "proxy-user=<USER>         The proxy user.\n" \
  "proxy-password=<PASSWORD> The proxy password (or -, +FILE, -FD).\n" \
  "sslverify=false           Do not verify the remote TLS certificate.\n" \
  "cainfo=<CAINFO>           Certificate authority bundle file.\n" \
  "capath=<CAPATH>           Directory of CA certificates.\n" \
  "ssl-version=<VERSION>     Minimum TLS/SSL version.\n" \
  "ssl-cipher-list=C1:C2:..  TLS/SSL cipher suites to use.\n" \
  "tls13-ciphers=C1:C2:..    TLS 1.3 cipher suites to use.\n" \
  "tcp-keepalive=true        Enable TCP keepalives.\n" \
  "tcp-nodelay=false         Enable Nagle's algorithm.\n" \
  "timeout=<SECS>            Timeout for each request (0: libcurl's).\n" \
  "unix-socket-path=<PATH>   Connect to this Unix socket, not TCP.\n" \
  "connections=<N>           Handles (server connections) shared by all\n" \
  "                          clients (default 4)."

/* pool.c: at most config.connections handles exist; pool_get waits for
 * a free one.  Each handle has every configured option applied.
 */
struct curl_handle {
  CURL *c;
  char errbuf[CURL_ERROR_SIZE];
  /* Per-request state used by the libcurl callbacks in request.c. */
  char *rbuf;                   /* read: destination */
  size_t rwant, rgot;           /* read: bytes wanted, bytes received */
  const char *wbuf;             /* write: source */
  size_t wlen, wpos;            /* write: length, bytes sent */
  bool accept_ranges;           /* "Accept-Ranges: bytes" seen */
  int64_t range_start;          /* Content-Range start, or -1 */
  int64_t range_total;          /* Content-Range total, or -1 */
  unsigned generation;          /* script results applied (scripts.c) */
};

extern int pool_init (void);
extern struct curl_handle *pool_new_handle (void);
extern void pool_free_handle (struct curl_handle *h);
extern struct curl_handle *pool_get (void);
extern void pool_put (struct curl_handle *h);
extern void pool_unload (void);

/* scripts.c: around each request on a pool handle (after pool_get):
 * reruns header-script/cookie-script when due and applies their latest
 * results to H.  Between begin and end, scripts_headers () is the
 * header list in force.
 */
extern int scripts_begin_request (struct curl_handle *h);
extern void scripts_end_request (void);
extern struct curl_slist *scripts_headers (void);
extern void scripts_unload (void);

/* request.c: each returns -1 after nbdkit_error, with *err set. */
extern int request_size (struct curl_handle *h, int64_t *size);
extern int request_read (struct curl_handle *h, void *buf, uint32_t count,
                         uint64_t offset, int *err);
extern int request_write (struct curl_handle *h, const void *buf,
                          uint32_t count, uint64_t offset, int64_t size,
                          int *err);

#endif /* NBDKIT_CURL_INTERNAL_H */
