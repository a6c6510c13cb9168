/* SPDX-License-Identifier: BSD-3-Clause
 * TLS on the shared listener: the daemon's credentials (--tls-certificates,
 * --tls-psk), the non-blocking STARTTLS handshake driven by the event
 * loop, and the I/O layer the option phase reads and writes through
 * (plain socket or GnuTLS records), so router.c need not care which.
 */

#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "router.h"
#include "cleanup.h"

#if HAVE_GNUTLS

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/* TLS 1.2 and 1.3 only (nbd-protocol.md "TLS versions"); PSK needs its
 * key exchanges named.  Where the CPU has AES and carry-less multiply,
 * AES-GCM beats ChaCha20, which GnuTLS would otherwise pick for PSK.
 */
#define PRIORITY_BASE "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define PRIORITY_PSK ":+ECDHE-PSK:+DHE-PSK:+PSK"
#define PRIORITY_AES_FIRST \
  ":%SERVER_PRECEDENCE:-CHACHA20-POLY1305:+CHACHA20-POLY1305"

/* Shared by the sessions that use them: a reload puts new ones in
 * place while handshakes and relays keep theirs.
 */
struct router_tls {
  unsigned refs;
  gnutls_certificate_credentials_t x509;        /* NULL without a dir */
  gnutls_psk_server_credentials_t psk;          /* NULL without a file */
  gnutls_priority_t priority;
};

static bool
cpu_has_aes (void)
{
#if defined (__x86_64__) || defined (__i386__)
  __builtin_cpu_init ();
  return __builtin_cpu_supports ("aes") && __builtin_cpu_supports ("pclmul");
#else
  return false;
#endif
}

/* The PSK file is read by GnuTLS at each handshake (so a renewed file
 * takes effect at once); check now that it is readable and holds at
 * least one "username:hexkey" line, as psktool(1) writes.
 */
static int
psk_file_check (struct context *ctx, const char *path)
{
  FILE *fp = fopen (path, "r");
  char line[2048];
  int users = 0;

  if (fp == NULL) {
    log_error (ctx, "--tls-psk=%s: %m", path);
    return -EINVAL;
  }
  while (fgets (line, sizeof line, fp)) {
    char *colon = strchr (line, ':');
    size_t hex;

    if (colon == NULL || colon == line)
      continue;
    hex = strspn (colon + 1, "0123456789abcdefABCDEF");
    if (hex > 0 && hex % 2 == 0 && strchr ("\r\n", colon[1 + hex]))
      users++;
  }
  fclose (fp);
  if (users == 0) {
    log_error (ctx, "--tls-psk=%s: no 'username:hexkey' line "
             "(make the file with psktool(1))", path);
    return -EINVAL;
  }
  return 0;
}

static int
x509_load (struct context *ctx, struct router_tls *t, const char *dir)
{
  CLEANUP_FREE char *ca = NULL, *crl = NULL, *cert = NULL, *key = NULL;
  int r;

  if (asprintf (&ca, "%s/ca-cert.pem", dir) == -1 ||
      asprintf (&crl, "%s/ca-crl.pem", dir) == -1 ||
      asprintf (&cert, "%s/server-cert.pem", dir) == -1 ||
      asprintf (&key, "%s/server-key.pem", dir) == -1)
    return -ENOMEM;
  if (gnutls_certificate_allocate_credentials (&t->x509) < 0)
    return -ENOMEM;
  r = gnutls_certificate_set_x509_trust_file (t->x509, ca,
                                              GNUTLS_X509_FMT_PEM);
  if (r <= 0) {
    log_error (ctx, "--tls-certificates=%s: %s: %s", dir, ca,
             r == 0 ? "no certificate in the file" : gnutls_strerror (r));
    return -EINVAL;
  }
  if (access (crl, F_OK) == 0 &&
      (r = gnutls_certificate_set_x509_crl_file (t->x509, crl,
                                                 GNUTLS_X509_FMT_PEM)) < 0) {
    log_error (ctx, "--tls-certificates=%s: %s: %s", dir, crl,
             gnutls_strerror (r));
    return -EINVAL;
  }
  r = gnutls_certificate_set_x509_key_file (t->x509, cert, key,
                                            GNUTLS_X509_FMT_PEM);
  if (r < 0) {
    log_error (ctx, "--tls-certificates=%s: %s, %s: %s", dir,
             cert, key, gnutls_strerror (r));
    return -EINVAL;
  }
  gnutls_certificate_set_known_dh_params (t->x509, GNUTLS_SEC_PARAM_MEDIUM);
  return 0;
}

static int
psk_load (struct context *ctx, struct router_tls *t, const char *path)
{
  int r = psk_file_check (ctx, path);

  if (r < 0)
    return r;
  if (gnutls_psk_allocate_server_credentials (&t->psk) < 0)
    return -ENOMEM;
  r = gnutls_psk_set_server_credentials_file (t->psk, path);
  if (r < 0) {
    log_error (ctx, "--tls-psk=%s: %s", path, gnutls_strerror (r));
    return -EINVAL;
  }
  gnutls_psk_set_server_known_dh_params (t->psk, GNUTLS_SEC_PARAM_MEDIUM);
  return 0;
}

static void
credentials_unref (struct router_tls *t)
{
  if (t == NULL || __atomic_sub_fetch (&t->refs, 1, __ATOMIC_ACQ_REL) > 0)
    return;
  if (t->x509)
    gnutls_certificate_free_credentials (t->x509);
  if (t->psk)
    gnutls_psk_free_server_credentials (t->psk);
  if (t->priority)
    gnutls_priority_deinit (t->priority);
  free (t);
}

/* The relay's reference, dropped when it ends (another thread). */
void
router_tls_release (struct router_tls *t)
{
  credentials_unref (t);
}

/* Read --tls-certificates and --tls-psk into new credentials. */
static int
credentials_load (struct context *ctx, struct router_tls **ret)
{
  const struct config *cfg = &ctx->config;
  CLEANUP_FREE char *prio = NULL;
  struct router_tls *t = calloc (1, sizeof *t);
  int r = 0;

  if (t == NULL)
    return -ENOMEM;
  t->refs = 1;
  if (cfg->tls_certificates)
    r = x509_load (ctx, t, cfg->tls_certificates);
  if (r == 0 && cfg->tls_psk)
    r = psk_load (ctx, t, cfg->tls_psk);
  if (r == 0 && asprintf (&prio, "%s%s%s", PRIORITY_BASE,
                          cpu_has_aes () ? PRIORITY_AES_FIRST : "",
                          t->psk ? PRIORITY_PSK : "") == -1)
    r = -ENOMEM;
  if (r == 0 && (r = gnutls_priority_init (&t->priority, prio, NULL)) < 0) {
    t->priority = NULL;
    log_error (ctx, "TLS priority \"%s\": %s", prio, gnutls_strerror (r));
    r = -EINVAL;
  }
  if (r < 0) {
    credentials_unref (t);
    return r;
  }
  *ret = t;
  return 0;
}

/* Load the shared listener's credentials, if any were configured.
 * Errors are logged; the daemon exits with status 1.
 */
int
router_tls_init (struct context *ctx)
{
  struct router_tls *t;
  int r;

  if (!ctx->config.tls_certificates && !ctx->config.tls_psk)
    return 0;
  r = credentials_load (ctx, &t);
  if (r < 0)
    return r;
  ctx->tls = t;
  export_options_set_shared_tls (t->x509 != NULL, t->psk != NULL);
  log_info (ctx, "shared listener: STARTTLS with %s%s%s", t->x509 ? "X.509" : "",
            t->x509 && t->psk ? " and " : "", t->psk ? "PSK" : "");
  return 0;
}

/* Reload and SIGHUP: read the files again.  New handshakes use the new
 * credentials; sessions in progress and relays keep the old ones until
 * they end.  On error the old ones stay.
 */
int
router_tls_reload (struct context *ctx)
{
  struct router_tls *t;
  int r;

  if (ctx->tls == NULL)
    return 0;
  r = credentials_load (ctx, &t);
  if (r < 0) {
    log_warning (ctx, "shared listener: the TLS credentials could not be "
                 "read again, keeping the old ones");
    return r;
  }
  credentials_unref (ctx->tls);
  ctx->tls = t;
  log_info (ctx, "shared listener: TLS credentials reloaded");
  return 0;
}

/* SetTLS changed the configuration: load it, or drop TLS on the shared
 * listener when none is configured.  Handshakes and relays in progress
 * keep what they have.  On error the old credentials stay.
 */
int
router_tls_configure (struct context *ctx)
{
  struct router_tls *t = NULL;
  int r;

  if (ctx->config.tls_certificates || ctx->config.tls_psk) {
    r = credentials_load (ctx, &t);
    if (r < 0)
      return r;
  }
  credentials_unref (ctx->tls);
  ctx->tls = t;
  export_options_set_shared_tls (t && t->x509, t && t->psk);
  return 0;
}

void
router_tls_free (struct context *ctx)
{
  credentials_unref (ctx->tls);
  ctx->tls = NULL;
}

bool
router_tls_available (const struct context *ctx)
{
  return ctx->tls != NULL;
}

bool
router_tls_has_x509 (const struct context *ctx)
{
  return ctx->tls && ctx->tls->x509;
}

/* The I/O layer. */

static ssize_t
tls_result (ssize_t n)
{
  if (n >= 0)
    return n;
  if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
    return -EAGAIN;
  if (n == GNUTLS_E_PREMATURE_TERMINATION)
    return 0;
  return -ECONNRESET;
}

ssize_t
router_io_recv (struct router_conn *c, void *buf, size_t len)
{
  ssize_t n;

  if (c->tls_session)
    return tls_result (gnutls_record_recv (c->tls_session, buf, len));
  do
    n = recv (c->fd, buf, len, MSG_DONTWAIT);
  while (n == -1 && errno == EINTR);
  return n == -1 ? -errno : n;
}

/* After GNUTLS_E_AGAIN the caller repeats the call with the same data
 * (the router's output buffer does not move while output is pending).
 */
ssize_t
router_io_send (struct router_conn *c, const void *buf, size_t len)
{
  ssize_t n;

  if (c->tls_session)
    return tls_result (gnutls_record_send (c->tls_session, buf, len));
  do
    n = send (c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n == -1 && errno == EINTR);
  return n == -1 ? -errno : n;
}

/* Decrypted bytes GnuTLS holds that epoll cannot see. */
bool
router_io_pending (struct router_conn *c)
{
  return c->tls_session && gnutls_record_check_pending (c->tls_session) > 0;
}

/* STARTTLS was acknowledged and the ACK has gone out in plaintext:
 * start the server side of the handshake on the non-blocking socket.
 */
int
router_tls_start (struct router_conn *c)
{
  struct router_tls *t = c->ctx->tls;
  gnutls_session_t s;
  int r;

  r = gnutls_init (&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
  if (r < 0)
    return -ENOMEM;
  r = gnutls_priority_set (s, t->priority);
  if (r >= 0 && t->x509) {
    r = gnutls_credentials_set (s, GNUTLS_CRD_CERTIFICATE, t->x509);
    /* A client certificate is asked for, never required: PSK clients
     * have none; tls-verify-peer exports check it after the handshake.
     */
    gnutls_certificate_server_set_request (s, GNUTLS_CERT_REQUEST);
  }
  if (r >= 0 && t->psk)
    r = gnutls_credentials_set (s, GNUTLS_CRD_PSK, t->psk);
  if (r < 0) {
    gnutls_deinit (s);
    return -EINVAL;
  }
  gnutls_transport_set_int (s, c->fd);
  c->tls_session = s;
  c->tls_creds = t;
  __atomic_add_fetch (&t->refs, 1, __ATOMIC_ACQ_REL);
  return 0;
}

/* The subject DN of a client certificate that verified against the
 * daemon's CA, or NULL.
 */
static char *
verified_client_dn (gnutls_session_t s)
{
  const gnutls_datum_t *certs;
  gnutls_datum_t dn = { NULL, 0 };
  gnutls_x509_crt_t crt;
  unsigned n = 0, status = 1;
  char *ret = NULL;

  certs = gnutls_certificate_get_peers (s, &n);
  if (certs == NULL || n == 0 ||
      gnutls_certificate_verify_peers2 (s, &status) < 0 || status != 0)
    return NULL;
  if (gnutls_x509_crt_init (&crt) < 0)
    return NULL;
  if (gnutls_x509_crt_import (crt, &certs[0], GNUTLS_X509_FMT_DER) == 0 &&
      gnutls_x509_crt_get_dn3 (crt, &dn, 0) == 0) {
    ret = strndup ((const char *) dn.data, dn.size);
    gnutls_free (dn.data);
  }
  gnutls_x509_crt_deinit (crt);
  return ret;
}

static void
record_identity (struct router_conn *c)
{
  gnutls_session_t s = c->tls_session;
  const char *user;

  if (gnutls_auth_get_type (s) == GNUTLS_CRD_PSK) {
    user = gnutls_psk_server_get_username (s);
    c->tls_identity = user ? strdup (user) : NULL;
    return;
  }
  c->tls_identity = verified_client_dn (s);
  c->tls_verified = c->tls_identity != NULL;
}

/* Drive the handshake.  Returns 1 when it is complete, 0 if it waits
 * for the socket (*EVENTS says which way), < 0 to close the client.
 */
int
router_tls_handshake (struct router_conn *c, uint32_t *events)
{
  int r;

  if (c->tls_session == NULL && (r = router_tls_start (c)) < 0)
    return r;
  r = gnutls_handshake (c->tls_session);
  if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
    *events = gnutls_record_get_direction (c->tls_session) ? EPOLLOUT
      : EPOLLIN;
    return 0;
  }
  if (r < 0) {
    log_info (c->ctx, "shared listener: TLS handshake failed: %s",
              gnutls_strerror (r));
    return -EPROTO;
  }
  record_identity (c);
  log_debug (c->ctx, "shared listener: TLS client %s%s",
             c->tls_identity ? c->tls_identity : "(anonymous)",
             c->tls_verified ? " (certificate verified)" : "");
  return 1;
}

void
router_tls_conn_free (struct router_conn *c)
{
  if (c->tls_session)
    gnutls_deinit (c->tls_session);
  c->tls_session = NULL;
  credentials_unref (c->tls_creds);
  c->tls_creds = NULL;
  free (c->tls_identity);
  c->tls_identity = NULL;
}

#else /* !HAVE_GNUTLS */

/* Built without GnuTLS: --tls-certificates and --tls-psk are refused and
 * STARTTLS on the shared listener is answered NBD_REP_ERR_POLICY.
 */

int
router_tls_init (struct context *ctx)
{
  if (!ctx->config.tls_certificates && !ctx->config.tls_psk)
    return 0;
  fprintf (stderr, "nbdkitd: this nbdkitd was built without GnuTLS: "
           "--tls-certificates and --tls-psk are not available\n");
  return -ENOTSUP;
}

void router_tls_free (struct context *ctx) { }
int router_tls_reload (struct context *ctx) { return 0; }
int
router_tls_configure (struct context *ctx)
{
  return ctx->config.tls_certificates || ctx->config.tls_psk ? -ENOTSUP : 0;
}
bool router_tls_available (const struct context *ctx) { return false; }
bool router_tls_has_x509 (const struct context *ctx) { return false; }

ssize_t
router_io_recv (struct router_conn *c, void *buf, size_t len)
{
  ssize_t n;

  do
    n = recv (c->fd, buf, len, MSG_DONTWAIT);
  while (n == -1 && errno == EINTR);
  return n == -1 ? -errno : n;
}

ssize_t
router_io_send (struct router_conn *c, const void *buf, size_t len)
{
  ssize_t n;

  do
    n = send (c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n == -1 && errno == EINTR);
  return n == -1 ? -errno : n;
}

bool router_io_pending (struct router_conn *c) { return false; }
int router_tls_start (struct router_conn *c) { return -ENOTSUP; }

int
router_tls_handshake (struct router_conn *c, uint32_t *events)
{
  return -ENOTSUP;
}

void router_tls_conn_free (struct router_conn *c) { free (c->tls_identity); }

int
router_relay_start (void *session, struct router_tls *creds, int client_fd,
                    int worker_fd)
{
  close (client_fd);
  close (worker_fd);
  return -ENOTSUP;
}

void router_tls_release (struct router_tls *t) { }

#endif /* !HAVE_GNUTLS */
