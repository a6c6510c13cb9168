/* SPDX-License-Identifier: BSD-3-Clause
 * TLS with X.509 certificates: find the certificates directory, load the
 * CA, CRL, server certificate and key, warn about their dates, verify
 * client certificates under --tls-verify-peer and record their DNs.
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
#include <sys/stat.h>

#include "internal.h"
#include "cleanup.h"

#if HAVE_GNUTLS

#include <gnutls/x509.h>

#include "tls-internal.h"

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
    tls_set_reason (session, "cannot verify the client certificate: %s",
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
    tls_set_reason (session, "client certificate rejected: %.*s",
                    (int) len, text.data);
    gnutls_free (text.data);
  }
  else
    tls_set_reason (session, "client certificate rejected (status 0x%x)",
                    status);
  return -1;
}

/* Warn at startup about a server certificate clients will refuse. */
static void
check_server_certificate_dates (gnutls_certificate_credentials_t x509,
                                const char *file)
{
  gnutls_x509_crt_t *crts = NULL;
  unsigned n = 0;
  time_t now = time (NULL), t;

  if (gnutls_certificate_get_x509_crt (x509, 0, &crts, &n) < 0)
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
load_certificates (struct tls_credentials *c, const char *dir)
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

  r = gnutls_certificate_allocate_credentials (&c->x509);
  if (r < 0) {
    nbdkit_error ("gnutls_certificate_allocate_credentials: %s",
                  gnutls_strerror (r));
    return -1;
  }
  /* Check a CRL's signature against the CA as it is loaded. */
  gnutls_certificate_set_flags (c->x509, GNUTLS_CERTIFICATE_VERIFY_CRLS);

  if (have_ca) {
    r = gnutls_certificate_set_x509_trust_file (c->x509, ca,
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
    r = gnutls_certificate_set_x509_crl_file (c->x509, crl,
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
  r = gnutls_certificate_set_x509_key_file (c->x509, cert, key,
                                            GNUTLS_X509_FMT_PEM);
  if (r < 0) {
    nbdkit_error ("TLS: %s, %s: %s", cert, key, gnutls_strerror (r));
    return -1;
  }
  check_server_certificate_dates (c->x509, cert);
  gnutls_certificate_set_known_dh_params (c->x509, GNUTLS_SEC_PARAM_MEDIUM);
  if (config.tls_verify_peer)
    gnutls_certificate_set_verify_function (c->x509,
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

/* What is loaded so far is freed by tls_x509_free, also on failure. */
int
tls_x509_load (struct tls_credentials *c)
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
  if (load_certificates (c, dir) == -1)
    return -1;
  debug ("TLS: using X.509 certificates from %s%s", dir,
         config.tls_certificates ? "" : " (the built-in default)");
  return 0;
}

void
tls_x509_free (struct tls_credentials *c)
{
  if (c->x509)
    gnutls_certificate_free_credentials (c->x509);
  c->x509 = NULL;
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

/* Under --tls-verify-peer, the subject and issuer DNs of the client's
 * verified certificate; the subject DN is also conn->tls_username.
 */
void
tls_x509_client_identity (struct connection *conn, gnutls_session_t session)
{
  const gnutls_datum_t *certs;
  unsigned n = 0;
  gnutls_x509_crt_t crt;

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

#endif /* HAVE_GNUTLS */
