/* SPDX-License-Identifier: BSD-3-Clause
 * TLS with GnuTLS (nbd-protocol.md "TLS support"): load X.509
 * certificates or a PSK file at startup, upgrade a connection after
 * NBD_OPT_STARTTLS, and the encrypted recv/send/close that then replace
 * the plain ones from connections.c.
 */

#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/stat.h>

#include "internal.h"
#include "cleanup.h"
#include "utils.h"

#if HAVE_GNUTLS

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/* TLS 1.2 is the oldest version the protocol lets us offer by default
 * (nbd-protocol.md "TLS versions"); 1.3 is preferred when both sides
 * have it.  PSK needs its key exchanges added explicitly.
 */
#define DEFAULT_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define PSK_KEY_EXCHANGES ":+ECDHE-PSK:+DHE-PSK:+PSK"

/* GnuTLS ranks ChaCha20-Poly1305 above AES-128-GCM, and TLS 1.3 with an
 * external PSK (SHA-256 only) rules out AES-256-GCM, so PSK sessions end
 * up with ChaCha20 even where AES-GCM runs in hardware and is an order
 * of magnitude faster.  There, choose the cipher ourselves with ChaCha20
 * ranked last.
 */
#define PREFER_AES_GCM ":%SERVER_PRECEDENCE:-CHACHA20-POLY1305:+CHACHA20-POLY1305"

/* A payload at least this large is never copied into the cork buffer. */
#define LARGE_SEND (64 * 1024)

/* One user of the --tls-psk file. */
struct psk_user {
  char *name;
  gnutls_datum_t key;           /* binary, decoded from hex */
};
DEFINE_VECTOR_TYPE (psk_user_list, struct psk_user)

/* The credentials being loaded (by tls_init or tls_reload, in one
 * thread); load_credentials then moves them into a tls_credentials.
 */
static psk_user_list psk_users = empty_vector;
static gnutls_psk_server_credentials_t psk_creds;
static gnutls_certificate_credentials_t x509_creds;

/* A loaded set of credentials, shared by every session that started
 * while it was current (GnuTLS allows that) and freed when the last of
 * them has closed and reload-tls has replaced it.
 */
struct tls_credentials {
  unsigned refs;
  psk_user_list psk_users;
  gnutls_psk_server_credentials_t psk;
  gnutls_certificate_credentials_t x509;
};
static struct tls_credentials *current_creds;
static pthread_mutex_t creds_lock = PTHREAD_MUTEX_INITIALIZER;

static gnutls_priority_t priority;
static char *default_priority;  /* when --tls-priority is not given */
static int session_debug;       /* -D nbdkit.tls.session=1 */

/* Filled in by the callbacks during one handshake (gnutls_session_get_ptr). */
struct handshake_state {
  const struct tls_credentials *creds;
  const struct psk_user *psk_user;
  char reason[512];             /* why we refused the client, if we did */
};

static void
set_reason (gnutls_session_t session, const char *fs, ...)
  __attribute__ ((__format__ (__printf__, 2, 3)));

static void
set_reason (gnutls_session_t session, const char *fs, ...)
{
  struct handshake_state *hs = gnutls_session_get_ptr (session);
  va_list args;

  if (hs == NULL)
    return;
  va_start (args, fs);
  vsnprintf (hs->reason, sizeof hs->reason, fs, args);
  va_end (args);
}

/* -D nbdkit.tls.log=N: GnuTLS's own messages, shown with -v. */
static void
gnutls_log (int level, const char *msg)
{
  size_t len = strlen (msg);

  if (len > 0 && msg[len - 1] == '\n')
    len--;
  nbdkit_debug ("gnutls %d: %.*s", level, (int) len, msg);
}

/* Open FILENAME just to report a precise error now rather than a vague
 * one from GnuTLS.  A missing optional file returns 0 and sets *EXISTS.
 */
static int
check_readable (const char *filename, bool required, bool *exists)
{
  int fd = open (filename, O_RDONLY | O_CLOEXEC);

  *exists = fd >= 0;
  if (fd >= 0) {
    close (fd);
    return 0;
  }
  if (errno == ENOENT && !required)
    return 0;
  nbdkit_error ("TLS: %s: %m", filename);
  return -1;
}

/* The --tls-psk file: "username:hexkey" lines, as psktool(1) writes. */

static void
free_psk_users (psk_user_list *users)
{
  for (size_t i = 0; i < users->len; ++i) {
    free (users->ptr[i].name);
    if (users->ptr[i].key.data) {
      explicit_bzero (users->ptr[i].key.data, users->ptr[i].key.size);
      free (users->ptr[i].key.data);
    }
  }
  psk_user_list_reset (users);
}

static int
hex_value (char c)
{
  return isdigit ((unsigned char) c) ? c - '0'
    : tolower ((unsigned char) c) - 'a' + 10;
}

/* Parse one non-empty line into *USER.  The key is never echoed. */
static int
parse_psk_line (const char *file, size_t lineno, char *line,
                struct psk_user *user)
{
  char *colon = strchr (line, ':');
  const char *hex;
  size_t hexlen, i;

  if (colon == NULL) {
    nbdkit_error ("--tls-psk: %s:%zu: expected USERNAME:HEXKEY "
                  "(the format psktool writes)", file, lineno);
    return -1;
  }
  *colon = '\0';
  hex = colon + 1;
  hexlen = strlen (hex);
  if (*line == '\0') {
    nbdkit_error ("--tls-psk: %s:%zu: the username is empty", file, lineno);
    return -1;
  }
  for (i = 0; i < hexlen && isxdigit ((unsigned char) hex[i]); ++i)
    ;
  if (hexlen == 0 || i < hexlen || hexlen % 2 != 0) {
    nbdkit_error ("--tls-psk: %s:%zu: the key of user \"%s\" must be a "
                  "non-empty, even-length hexadecimal string",
                  file, lineno, line);
    return -1;
  }
  for (i = 0; i < psk_users.len; ++i)
    if (strcmp (psk_users.ptr[i].name, line) == 0) {
      nbdkit_error ("--tls-psk: %s:%zu: user \"%s\" appears twice",
                    file, lineno, line);
      return -1;
    }

  user->name = strdup (line);
  user->key.size = hexlen / 2;
  user->key.data = malloc (user->key.size);
  if (user->name == NULL || user->key.data == NULL) {
    nbdkit_error ("malloc: %m");
    free (user->name);
    free (user->key.data);
    return -1;
  }
  for (i = 0; i < user->key.size; ++i)
    user->key.data[i] = hex_value (hex[2*i]) << 4 | hex_value (hex[2*i+1]);
  return 0;
}

static int
load_psk_file (const char *file)
{
  FILE *fp = fopen (file, "re");
  char *line = NULL;
  size_t cap = 0, lineno = 0;
  ssize_t len;
  int r = 0;

  if (fp == NULL) {
    nbdkit_error ("--tls-psk: %s: %m", file);
    return -1;
  }
  while (r == 0 && (len = getline (&line, &cap, fp)) != -1) {
    struct psk_user user;

    lineno++;
    while (len > 0 && isspace ((unsigned char) line[len - 1]))
      line[--len] = '\0';
    if (len == 0)
      continue;
    r = parse_psk_line (file, lineno, line, &user);
    if (r == 0 && psk_user_list_append (&psk_users, user) == -1) {
      nbdkit_error ("realloc: %m");
      free (user.name);
      free (user.key.data);
      r = -1;
    }
  }
  if (line) {
    explicit_bzero (line, cap);
    free (line);
  }
  if (r == 0 && ferror (fp)) {
    nbdkit_error ("--tls-psk: %s: read error: %m", file);
    r = -1;
  }
  fclose (fp);
  if (r == 0 && psk_users.len == 0) {
    nbdkit_error ("--tls-psk: %s: the file has no users", file);
    r = -1;
  }
  return r;
}

/* GnuTLS asks for the key of the user the client named. */
static int
psk_lookup (gnutls_session_t session, const gnutls_datum_t *username,
            gnutls_datum_t *key)
{
  struct handshake_state *hs = gnutls_session_get_ptr (session);
  char printable[128];
  size_t i, j;

  if (hs == NULL || hs->creds == NULL)
    return -1;
  for (i = 0; i < hs->creds->psk_users.len; ++i) {
    const struct psk_user *u = &hs->creds->psk_users.ptr[i];
    if (strlen (u->name) == username->size &&
        memcmp (u->name, username->data, username->size) == 0) {
      key->data = gnutls_malloc (u->key.size);
      if (key->data == NULL)
        return -1;
      memcpy (key->data, u->key.data, u->key.size);
      key->size = u->key.size;
      if (hs)
        hs->psk_user = u;
      return 0;
    }
  }

  /* The name is client input: show it safely. */
  for (i = j = 0; i < username->size && j < sizeof printable - 5; ++i) {
    unsigned char c = username->data[i];
    if (isprint (c) && c != '\\' && c != '"')
      printable[j++] = c;
    else
      j += snprintf (&printable[j], 5, "\\x%02x", c);
  }
  printable[j] = '\0';
  set_reason (session, "PSK user \"%s\" is not in %s", printable,
              config.tls_psk);
  return -1;
}

static int
init_psk (void)
{
  int r;

  if (load_psk_file (config.tls_psk) == -1)
    return -1;
  r = gnutls_psk_allocate_server_credentials (&psk_creds);
  if (r < 0) {
    nbdkit_error ("gnutls_psk_allocate_server_credentials: %s",
                  gnutls_strerror (r));
    return -1;
  }
  gnutls_psk_set_server_credentials_function2 (psk_creds, psk_lookup);
  gnutls_psk_set_server_known_dh_params (psk_creds, GNUTLS_SEC_PARAM_MEDIUM);
  if (config.tls_verify_peer)
    fprintf (stderr, "%s: warning: --tls-verify-peer has no effect with "
             "--tls-psk: the pre-shared key already authenticates "
             "the client\n", config.program_name);
  debug ("TLS: using pre-shared keys from %s (%zu user%s)",
         config.tls_psk, psk_users.len, psk_users.len == 1 ? "" : "s");
  return 0;
}

/* X.509 certificates. */

/* Called during the handshake under --tls-verify-peer: check the client's
 * chain against ca-cert.pem (and ca-crl.pem) and that it may act as a
 * TLS client.  Non-zero refuses the client with an alert.
 */
static int
verify_client_certificate (gnutls_session_t session)
{
  gnutls_typed_vdata_st purpose = {
    .type = GNUTLS_DT_KEY_PURPOSE_OID,
    .data = (void *) GNUTLS_KP_TLS_WWW_CLIENT,
  };
  unsigned status = 0;
  gnutls_datum_t text = { NULL, 0 };
  int r;

  r = gnutls_certificate_verify_peers (session, &purpose, 1, &status);
  if (r < 0) {
    set_reason (session, "cannot verify the client certificate: %s",
                gnutls_strerror (r));
    return -1;
  }
  if (status == 0)
    return 0;
  if (gnutls_certificate_verification_status_print (status, GNUTLS_CRT_X509,
                                                    &text, 0) == 0) {
    size_t len = strlen ((char *) text.data);
    while (len > 0 && isspace (text.data[len - 1]))
      len--;
    set_reason (session, "client certificate rejected: %.*s",
                (int) len, text.data);
    gnutls_free (text.data);
  }
  else
    set_reason (session, "client certificate rejected (status 0x%x)", status);
  return -1;
}

/* Warn at startup about a server certificate clients will refuse. */
static void
check_server_certificate_dates (const char *file)
{
  gnutls_x509_crt_t *crts = NULL;
  unsigned n = 0;
  time_t now = time (NULL), t;

  if (gnutls_certificate_get_x509_crt (x509_creds, 0, &crts, &n) < 0)
    return;
  if (n > 0) {
    if ((t = gnutls_x509_crt_get_expiration_time (crts[0])) != -1 && t < now)
      fprintf (stderr, "%s: warning: %s expired on %s", config.program_name,
               file, ctime (&t));
    if ((t = gnutls_x509_crt_get_activation_time (crts[0])) != -1 && t > now)
      fprintf (stderr, "%s: warning: %s is not valid until %s",
               config.program_name, file, ctime (&t));
  }
  for (unsigned i = 0; i < n; ++i)
    gnutls_x509_crt_deinit (crts[i]);
  gnutls_free (crts);
}

/* Load ca-cert.pem, ca-crl.pem, server-cert.pem and server-key.pem. */
static int
load_certificates (const char *dir)
{
  CLEANUP_FREE char *ca = NULL, *crl = NULL, *cert = NULL, *key = NULL;
  bool have_ca, have_crl, have_cert, have_key;
  int r;

  if (asprintf (&ca, "%s/ca-cert.pem", dir) == -1 ||
      asprintf (&crl, "%s/ca-crl.pem", dir) == -1 ||
      asprintf (&cert, "%s/server-cert.pem", dir) == -1 ||
      asprintf (&key, "%s/server-key.pem", dir) == -1) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  if (check_readable (ca, config.tls_verify_peer, &have_ca) == -1 ||
      check_readable (crl, false, &have_crl) == -1 ||
      check_readable (cert, true, &have_cert) == -1 ||
      check_readable (key, true, &have_key) == -1)
    return -1;

  r = gnutls_certificate_allocate_credentials (&x509_creds);
  if (r < 0) {
    nbdkit_error ("gnutls_certificate_allocate_credentials: %s",
                  gnutls_strerror (r));
    return -1;
  }
  /* Check a CRL's signature against the CA as it is loaded. */
  gnutls_certificate_set_flags (x509_creds, GNUTLS_CERTIFICATE_VERIFY_CRLS);

  if (have_ca) {
    r = gnutls_certificate_set_x509_trust_file (x509_creds, ca,
                                                GNUTLS_X509_FMT_PEM);
    if (r <= 0) {
      nbdkit_error ("TLS: %s: %s", ca,
                    r == 0 ? "no certificate found" : gnutls_strerror (r));
      return -1;
    }
    debug ("TLS: loaded %d CA certificate%s from %s", r, r == 1 ? "" : "s",
           ca);
  }
  if (have_crl) {
    r = gnutls_certificate_set_x509_crl_file (x509_creds, crl,
                                              GNUTLS_X509_FMT_PEM);
    if (r < 0) {
      nbdkit_error ("TLS: %s: %s%s", crl, gnutls_strerror (r),
                    r == GNUTLS_E_CRL_VERIFICATION_ERROR
                    ? " (it must be signed by the CA in ca-cert.pem, whose "
                    "certificate must allow CRL signing)" : "");
      return -1;
    }
    debug ("TLS: loaded the revocation list %s", crl);
  }
  r = gnutls_certificate_set_x509_key_file (x509_creds, cert, key,
                                            GNUTLS_X509_FMT_PEM);
  if (r < 0) {
    nbdkit_error ("TLS: %s, %s: %s", cert, key, gnutls_strerror (r));
    return -1;
  }
  check_server_certificate_dates (cert);
  gnutls_certificate_set_known_dh_params (x509_creds, GNUTLS_SEC_PARAM_MEDIUM);
  if (config.tls_verify_peer)
    gnutls_certificate_set_verify_function (x509_creds,
                                            verify_client_certificate);
  return 0;
}

static bool
is_directory (const char *path)
{
  struct stat st;

  return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

/* Without --tls-certificates: root uses SYSCONFDIR/pki/nbdkit, anyone
 * else $HOME/.pki/nbdkit then $XDG_CONFIG_HOME/pki/nbdkit (by default
 * $HOME/.config/pki/nbdkit).  The first directory that exists is used.
 */
static char *
default_certificates_dir (void)
{
  const char *home = getenv ("HOME");
  const char *xdg = getenv ("XDG_CONFIG_HOME");
  char *tried[2] = { NULL, NULL };
  char *found = NULL;
  size_t i;

  if (geteuid () == 0) {
    if (is_directory (SYSCONFDIR "/pki/nbdkit"))
      return strdup (SYSCONFDIR "/pki/nbdkit");
    nbdkit_error ("TLS: no certificates directory: %s does not exist; "
                  "use --tls-certificates=DIR or --tls-psk=FILE "
                  "(see nbdkit-tls(1))", SYSCONFDIR "/pki/nbdkit");
    return NULL;
  }

  if (home == NULL || *home == '\0') {
    struct passwd *pw = getpwuid (getuid ());
    home = pw ? pw->pw_dir : "/";
  }
  if (asprintf (&tried[0], "%s/.pki/nbdkit", home) == -1 ||
      (xdg && *xdg ? asprintf (&tried[1], "%s/pki/nbdkit", xdg)
       : asprintf (&tried[1], "%s/.config/pki/nbdkit", home)) == -1) {
    nbdkit_error ("asprintf: %m");
    free (tried[0]);
    return NULL;
  }
  for (i = 0; i < 2 && found == NULL; ++i)
    if (is_directory (tried[i])) {
      found = tried[i];
      tried[i] = NULL;
    }
  if (found == NULL)
    nbdkit_error ("TLS: no certificates directory: neither %s nor %s "
                  "exists; use --tls-certificates=DIR or --tls-psk=FILE "
                  "(see nbdkit-tls(1))", tried[0], tried[1]);
  free (tried[0]);
  free (tried[1]);
  return found;
}

static int
init_certificates (void)
{
  CLEANUP_FREE char *dir = NULL;

  if (config.tls_certificates) {
    if (!is_directory (config.tls_certificates)) {
      nbdkit_error ("--tls-certificates: %s: not a directory",
                    config.tls_certificates);
      return -1;
    }
    dir = strdup (config.tls_certificates);
  }
  else
    dir = default_certificates_dir ();
  if (dir == NULL)
    return -1;
  if (load_certificates (dir) == -1)
    return -1;
  debug ("TLS: using X.509 certificates from %s%s", dir,
         config.tls_certificates ? "" : " (the built-in default)");
  return 0;
}

/* Free what a failed load left behind. */
static void
free_loading (void)
{
  if (x509_creds)
    gnutls_certificate_free_credentials (x509_creds);
  x509_creds = NULL;
  if (psk_creds)
    gnutls_psk_free_server_credentials (psk_creds);
  psk_creds = NULL;
  free_psk_users (&psk_users);
}

/* Load the PSK file or the certificates named on the command line. */
static struct tls_credentials *
load_credentials (void)
{
  struct tls_credentials *c;

  if (config.tls_psk ? init_psk () : init_certificates ()) {
    free_loading ();
    return NULL;
  }
  c = calloc (1, sizeof *c);
  if (c == NULL) {
    nbdkit_error ("calloc: %m");
    free_loading ();
    return NULL;
  }
  c->refs = 1;
  c->psk_users = psk_users;
  c->psk = psk_creds;
  c->x509 = x509_creds;
  psk_users = (psk_user_list) empty_vector;
  psk_creds = NULL;
  x509_creds = NULL;
  return c;
}

static void
credentials_unref (struct tls_credentials *c)
{
  if (c == NULL || __atomic_sub_fetch (&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
    return;
  if (c->x509)
    gnutls_certificate_free_credentials (c->x509);
  if (c->psk)
    gnutls_psk_free_server_credentials (c->psk);
  free_psk_users (&c->psk_users);
  free (c);
}

/* The current credentials, with a reference for a new session. */
static struct tls_credentials *
credentials_get (void)
{
  struct tls_credentials *c;

  pthread_mutex_lock (&creds_lock);
  c = current_creds;
  if (c)
    __atomic_add_fetch (&c->refs, 1, __ATOMIC_ACQ_REL);
  pthread_mutex_unlock (&creds_lock);
  return c;
}

/* AES instructions and carry-less multiply make AES-GCM fast. */
static bool
cpu_has_fast_aes_gcm (void)
{
#if defined (__x86_64__) || defined (__i386__)
  __builtin_cpu_init ();
  return __builtin_cpu_supports ("aes") && __builtin_cpu_supports ("pclmul");
#elif defined (__aarch64__) && defined (HWCAP_AES) && defined (HWCAP_PMULL)
  unsigned long hwcap = getauxval (AT_HWCAP);
  return (hwcap & HWCAP_AES) && (hwcap & HWCAP_PMULL);
#else
  return false;
#endif
}

static const char *
priority_string (void)
{
  if (config.tls_priority)
    return config.tls_priority;
  if (asprintf (&default_priority, "%s%s%s", DEFAULT_PRIORITY,
                cpu_has_fast_aes_gcm () ? PREFER_AES_GCM : "",
                config.tls_psk ? PSK_KEY_EXCHANGES : "") == -1) {
    nbdkit_error ("asprintf: %m");
    return NULL;
  }
  return default_priority;
}

int
tls_init (void)
{
  const char *prio, *errpos = NULL;
  int log_level = server_debug_flag ("tls_log", 0);
  int r;

  session_debug = server_debug_flag ("tls_session", 0);
  if (log_level > 0) {
    gnutls_global_set_log_function (gnutls_log);
    gnutls_global_set_log_level (log_level);
  }

  current_creds = load_credentials ();
  if (current_creds == NULL) {
    tls_free ();
    return -1;
  }

  prio = priority_string ();
  if (prio == NULL) {
    tls_free ();
    return -1;
  }
  r = gnutls_priority_init (&priority, prio, &errpos);
  if (r < 0) {
    if (errpos)
      nbdkit_error ("--tls-priority: \"%s\": not a valid GnuTLS priority "
                    "string from \"%s\" on (see gnutls_priority_init(3))",
                    prio, errpos);
    else
      nbdkit_error ("--tls-priority: \"%s\": %s", prio, gnutls_strerror (r));
    priority = NULL;
    tls_free ();
    return -1;
  }
  debug ("TLS: %s mode, GnuTLS %s, priority \"%s\"",
         config.tls == TLS_REQUIRE ? "required" : "optional",
         gnutls_check_version (NULL), prio);
  return 0;
}

void
tls_free (void)
{
  if (priority)
    gnutls_priority_deinit (priority);
  priority = NULL;
  free (default_priority);
  default_priority = NULL;
  free_loading ();
  pthread_mutex_lock (&creds_lock);
  credentials_unref (current_creds);
  current_creds = NULL;
  pthread_mutex_unlock (&creds_lock);
}

/* reload-tls (nbdkit-worker(7)): new handshakes use the new credentials;
 * sessions keep the ones they started with.  On failure the old ones
 * stay.
 */
int
tls_reload (void)
{
  struct tls_credentials *c = load_credentials (), *old;

  if (c == NULL)
    return -1;
  pthread_mutex_lock (&creds_lock);
  old = current_creds;
  current_creds = c;
  pthread_mutex_unlock (&creds_lock);
  credentials_unref (old);
  debug ("TLS: credentials reloaded");
  return 0;
}

/* Encrypted I/O with the same contracts as raw_recv, raw_send_socket and
 * raw_close in connections.c.
 */

/* Map a fatal GnuTLS error to errno for the caller's message; socket
 * errors keep the errno of the failed system call.
 */
static int
tls_io_error (const char *fn, ssize_t r, int saved_errno)
{
  if ((r == GNUTLS_E_PULL_ERROR || r == GNUTLS_E_PUSH_ERROR) && saved_errno) {
    errno = saved_errno;
    return -1;
  }
  nbdkit_error ("%s: %s", fn, gnutls_strerror (r));
  errno = EPROTO;
  return -1;
}

static int
tls_recv (struct connection *conn, void *vbuf, size_t len)
{
  gnutls_session_t session = conn->crypto_session;
  char *buf = vbuf;
  size_t done = 0;

  while (done < len) {
    ssize_t r;

    errno = 0;
    r = gnutls_record_recv (session, buf + done, len - done);
    if (r > 0) {
      done += r;
      continue;
    }
    /* A peer that closes the socket without close_notify between
     * messages has still ended cleanly as far as NBD is concerned.
     */
    if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION) {
      if (done == 0)
        return 0;
      errno = EBADMSG;
      return -1;
    }
    if (r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_AGAIN)
      continue;
    if (r == GNUTLS_E_REHANDSHAKE) {
      nbdkit_error ("the client asked for TLS renegotiation, "
                    "which is not supported");
      errno = EPROTO;
      return -1;
    }
    if (!gnutls_error_is_fatal (r)) {
      debug ("gnutls_record_recv: %s, ignoring", gnutls_strerror (r));
      continue;
    }
    return tls_io_error ("gnutls_record_recv", r, errno);
  }
  return 1;
}

static int
send_all (gnutls_session_t session, const char *buf, size_t len)
{
  while (len > 0) {
    ssize_t r;

    errno = 0;
    r = gnutls_record_send (session, buf, len);
    if (r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_AGAIN)
      continue;
    if (r < 0)
      return tls_io_error ("gnutls_record_send", r, errno);
    buf += r;
    len -= r;
  }
  return 0;
}

static int
uncork (gnutls_session_t session)
{
  int r;

  do {
    errno = 0;
    r = gnutls_record_uncork (session, GNUTLS_RECORD_WAIT);
  } while (r == GNUTLS_E_INTERRUPTED || r == GNUTLS_E_AGAIN);
  return r < 0 ? tls_io_error ("gnutls_record_uncork", r, errno) : 0;
}

/* SEND_MORE corks the session so that a reply header and its payload
 * share TLS records.  A large payload is not copied into the cork
 * buffer: it tops up the pending record, which is flushed, and the rest
 * is encrypted straight from the caller's buffer.
 */
static int
tls_send (struct connection *conn, const void *vbuf, size_t len, int flags)
{
  gnutls_session_t session = conn->crypto_session;
  const char *buf = vbuf;

  if (len >= LARGE_SEND) {
    size_t corked = gnutls_record_check_corked (session);
    size_t max = gnutls_record_get_max_size (session);
    size_t fill = corked > 0 && corked < max ? MIN (len, max - corked) : 0;

    /* Uncorking also leaves corked mode, which may be on with nothing
     * pending; it is a no-op otherwise.
     */
    if (send_all (session, buf, fill) == -1 || uncork (session) == -1)
      return -1;
    buf += fill;
    len -= fill;
    if (send_all (session, buf, len) == -1)
      return -1;
    if (flags & SEND_MORE)
      gnutls_record_cork (session);
    return 0;
  }

  if (flags & SEND_MORE)
    gnutls_record_cork (session);
  if (send_all (session, buf, len) == -1)
    return -1;
  if (!(flags & SEND_MORE))
    return uncork (session);
  return 0;
}

/* Send close_notify without waiting: a peer that stopped reading must
 * not hold up the close, so the socket is made non-blocking first.
 */
static void
tls_close (struct connection *conn)
{
  gnutls_session_t session = conn->crypto_session;

  if (session) {
    int fl = fcntl (conn->sockout, F_GETFL), r;
    if (fl >= 0)
      fcntl (conn->sockout, F_SETFL, fl | O_NONBLOCK);
    do
      r = gnutls_bye (session, GNUTLS_SHUT_WR);
    while (r == GNUTLS_E_INTERRUPTED);
    if (r < 0)
      debug ("gnutls_bye: %s", gnutls_strerror (r));
    gnutls_deinit (session);
    conn->crypto_session = NULL;
  }
  credentials_unref (conn->tls_credentials);
  conn->tls_credentials = NULL;
  if (conn->sockin >= 0)
    close (conn->sockin);
  if (conn->sockout >= 0 && conn->sockout != conn->sockin)
    close (conn->sockout);
  conn->sockin = conn->sockout = -1;
}

/* Copy a DN of the client's certificate into a new string. */
static char *
certificate_dn (gnutls_x509_crt_t crt, bool issuer)
{
  gnutls_datum_t dn = { NULL, 0 };
  char *r = NULL;
  int e = issuer ? gnutls_x509_crt_get_issuer_dn3 (crt, &dn, 0)
    : gnutls_x509_crt_get_dn3 (crt, &dn, 0);

  if (e == 0) {
    r = strndup ((const char *) dn.data, dn.size);
    gnutls_free (dn.data);
  }
  return r;
}

/* The client's identity once the handshake succeeded: the PSK username,
 * or the subject and issuer DNs of its verified certificate.
 * conn->tls_username is whichever of the PSK user or subject DN exists,
 * for messages.
 */
static void
record_client_identity (struct connection *conn, gnutls_session_t session,
                        const struct handshake_state *hs)
{
  const gnutls_datum_t *certs;
  unsigned n = 0;
  gnutls_x509_crt_t crt;

  free (conn->tls_username);
  free (conn->tls_psk_username);
  free (conn->tls_dn);
  free (conn->tls_issuer_dn);
  conn->tls_username = conn->tls_psk_username = NULL;
  conn->tls_dn = conn->tls_issuer_dn = NULL;

  if (hs->psk_user) {
    conn->tls_psk_username = strdup (hs->psk_user->name);
    conn->tls_username = strdup (hs->psk_user->name);
    return;
  }
  if (!config.tls_verify_peer)
    return;
  certs = gnutls_certificate_get_peers (session, &n);
  if (certs == NULL || n == 0 || gnutls_x509_crt_init (&crt) < 0)
    return;
  if (gnutls_x509_crt_import (crt, &certs[0], GNUTLS_X509_FMT_DER) == 0) {
    conn->tls_dn = certificate_dn (crt, false);
    conn->tls_issuer_dn = certificate_dn (crt, true);
    if (conn->tls_dn)
      conn->tls_username = strdup (conn->tls_dn);
  }
  gnutls_x509_crt_deinit (crt);
}

/* -D nbdkit.tls.session=1: everything about a new session. */
static void
debug_session_details (gnutls_session_t session)
{
  const gnutls_datum_t *certs;
  unsigned n = 0;
  gnutls_x509_crt_t crt;
  gnutls_datum_t text = { NULL, 0 };
  const char *group = gnutls_group_get_name (gnutls_group_get (session));

  debug ("TLS session: version %s, cipher %s, MAC %s, key exchange group "
         "%s, authentication by %s",
         gnutls_protocol_get_name (gnutls_protocol_get_version (session)),
         gnutls_cipher_get_name (gnutls_cipher_get (session)),
         gnutls_mac_get_name (gnutls_mac_get (session)),
         group ? group : "(none)",
         gnutls_auth_get_type (session) == GNUTLS_CRD_PSK
         ? "pre-shared key" : "certificate");
  certs = gnutls_certificate_get_peers (session, &n);
  if (certs == NULL || n == 0 || gnutls_x509_crt_init (&crt) < 0)
    return;
  if (gnutls_x509_crt_import (crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
      gnutls_x509_crt_print (crt, GNUTLS_CRT_PRINT_ONELINE, &text) == 0) {
    debug ("TLS session: client certificate: %s", text.data);
    gnutls_free (text.data);
  }
  gnutls_x509_crt_deinit (crt);
}

static void
log_handshake_failure (gnutls_session_t session,
                       const struct handshake_state *hs, int r)
{
  const char *hint = "";

  if (hs->reason[0]) {
    nbdkit_error ("TLS handshake failed: %s", hs->reason);
    return;
  }
  if (r == GNUTLS_E_FATAL_ALERT_RECEIVED) {
    nbdkit_error ("TLS handshake failed: the client sent the alert \"%s\"",
                  gnutls_alert_get_name (gnutls_alert_get (session)));
    return;
  }
  if (r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR)
    hint = " (the client closed the connection)";
  else if (config.tls_psk && hs->psk_user)
    hint = " (is the client using the right key?)";
  else if (r == GNUTLS_E_INSUFFICIENT_CREDENTIALS)
    hint = config.tls_psk
      ? " (the client did not offer a pre-shared key)"
      : " (the client offered no method the certificates allow: "
      "is it set up for PSK?)";
  else if (config.tls_verify_peer &&
           (r == GNUTLS_E_NO_CERTIFICATE_FOUND ||
            r == GNUTLS_E_CERTIFICATE_REQUIRED))
    /* In TLS 1.3 clients only offer a certificate issued by a CA in
     * our ca-cert.pem, so "another CA" ends up here too.
     */
    hint = " (--tls-verify-peer requires a client certificate issued by "
      "the CA in ca-cert.pem)";
  nbdkit_error ("TLS handshake failed: %s%s", gnutls_strerror (r), hint);
}

int
tls_upgrade (struct connection *conn)
{
  gnutls_session_t session;
  struct tls_credentials *creds = credentials_get ();
  struct handshake_state hs = { .creds = creds, .psk_user = NULL };
  int r;

  if (creds == NULL) {
    nbdkit_error ("TLS: no credentials are loaded");
    return -1;
  }
  r = gnutls_init (&session, GNUTLS_SERVER | GNUTLS_NO_SIGNAL);
  if (r < 0) {
    nbdkit_error ("gnutls_init: %s", gnutls_strerror (r));
    credentials_unref (creds);
    return -1;
  }
  r = gnutls_priority_set (session, priority);
  if (r == 0)
    r = config.tls_psk
      ? gnutls_credentials_set (session, GNUTLS_CRD_PSK, creds->psk)
      : gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE, creds->x509);
  if (r < 0) {
    nbdkit_error ("TLS session setup: %s", gnutls_strerror (r));
    gnutls_deinit (session);
    credentials_unref (creds);
    return -1;
  }
  if (!config.tls_psk)
    gnutls_certificate_server_set_request (session, config.tls_verify_peer
                                           ? GNUTLS_CERT_REQUIRE
                                           : GNUTLS_CERT_IGNORE);
  gnutls_session_set_ptr (session, &hs);
  gnutls_transport_set_int2 (session, conn->sockin, conn->sockout);
  gnutls_handshake_set_timeout (session, GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);

  do
    r = gnutls_handshake (session);
  while (r < 0 && !gnutls_error_is_fatal (r));
  gnutls_session_set_ptr (session, NULL);
  if (r < 0) {
    log_handshake_failure (session, &hs, r);
    gnutls_deinit (session);
    credentials_unref (creds);
    return -1;
  }

  record_client_identity (conn, session, &hs);
  if (config.verbose) {
    char *desc = gnutls_session_get_desc (session);
    debug ("TLS: handshake complete: %s, %s%s%s", desc ? desc : "?",
           hs.psk_user ? "PSK user " : "client ",
           conn->tls_username ? conn->tls_username : "(anonymous)",
           hs.psk_user || !config.tls_verify_peer ? "" : " (verified)");
    gnutls_free (desc);
    if (session_debug)
      debug_session_details (session);
  }

  conn->crypto_session = session;
  conn->tls_credentials = creds;
  conn->recv = tls_recv;
  conn->send = tls_send;
  conn->close = tls_close;
  conn->using_tls = true;
  return 0;
}

#else /* !HAVE_GNUTLS */

/* Built without GnuTLS: --tls=on|require is refused at startup and
 * STARTTLS is answered NBD_REP_ERR_UNSUP (handshake-newstyle.c).
 */

int
tls_init (void)
{
  nbdkit_error ("--tls: this nbdkit was built without TLS support "
                "(GnuTLS); see nbdkit --dump-config");
  return -1;
}

void
tls_free (void)
{
}

int
tls_upgrade (struct connection *conn)
{
  nbdkit_error ("TLS is not supported by this build");
  return -1;
}

int
tls_reload (void)
{
  nbdkit_error ("TLS is not supported by this build");
  return -1;
}

#endif /* !HAVE_GNUTLS */
