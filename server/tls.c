/* SPDX-License-Identifier: BSD-3-Clause
 * TLS with GnuTLS (nbd-protocol.md "TLS support"): the refcounted
 * credentials (loaded by tls-psk.c or tls-x509.c) and reload-tls, the
 * priority string, upgrading a connection after NBD_OPT_STARTTLS, and
 * the encrypted recv/send/close that then replace the plain ones.
 */

#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/auxv.h>

#include "internal.h"
#include "utils.h"

#if HAVE_GNUTLS

#include <gnutls/x509.h>

#include "tls-internal.h"

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

/* The credentials new sessions use (replaced by reload-tls). */
static struct tls_credentials *current_creds;
static pthread_mutex_t creds_lock = PTHREAD_MUTEX_INITIALIZER;

static gnutls_priority_t priority;
static char *default_priority;  /* when --tls-priority is not given */
static int session_debug;       /* -D nbdkit.tls.session=1 */

/* Why a callback refused the client of SESSION, for the log. */
void
tls_set_reason (gnutls_session_t session, const char *fs, ...)
{
  struct tls_handshake_state *hs = gnutls_session_get_ptr (session);
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

static void
credentials_free (struct tls_credentials *c)
{
  tls_x509_free (c);
  tls_psk_free (c);
  free (c);
}

/* Load the PSK file or the certificates named on the command line. */
static struct tls_credentials *
load_credentials (void)
{
  struct tls_credentials *c = calloc (1, sizeof *c);

  if (c == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  c->refs = 1;
  if ((config.tls_psk ? tls_psk_load (c) : tls_x509_load (c)) == -1) {
    credentials_free (c);
    return NULL;
  }
  return c;
}

static void
credentials_unref (struct tls_credentials *c)
{
  if (c == NULL || __atomic_sub_fetch (&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
    return;
  credentials_free (c);
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

/* End the session (tls-io.c), then drop its credentials and close the
 * socket.
 */
static void
tls_close (struct connection *conn)
{
  tls_io_end (conn);
  credentials_unref (conn->tls_credentials);
  conn->tls_credentials = NULL;
  if (conn->sockin >= 0)
    close (conn->sockin);
  if (conn->sockout >= 0 && conn->sockout != conn->sockin)
    close (conn->sockout);
  conn->sockin = conn->sockout = -1;
}

/* The client's identity once the handshake succeeded: the PSK username,
 * or the subject and issuer DNs of its verified certificate.
 * conn->tls_username is whichever of the PSK user or subject DN exists,
 * for messages.
 */
static void
record_client_identity (struct connection *conn, gnutls_session_t session,
                        const struct tls_handshake_state *hs)
{
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
  tls_x509_client_identity (conn, session);
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
                       const struct tls_handshake_state *hs, int r)
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
  struct tls_handshake_state hs = { .creds = creds, .psk_user = NULL };
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

  conn->tls_credentials = creds;
  tls_io_start (conn, session);
  conn->close = tls_close;
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
