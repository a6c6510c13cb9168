/* SPDX-License-Identifier: BSD-3-Clause
 * What the TLS files share, all typed with GnuTLS: the refcounted
 * credentials (tls.c), the --tls-psk users (tls-psk.c), X.509 loading
 * and client identities (tls-x509.c).  Only built with GnuTLS.
 */

#ifndef NBDKIT_TLS_INTERNAL_H
#define NBDKIT_TLS_INTERNAL_H

#include <gnutls/gnutls.h>

#include "internal.h"

/* One user of the --tls-psk file. */
struct psk_user {
  char *name;
  gnutls_datum_t key;           /* binary, decoded from hex */
};
DEFINE_VECTOR_TYPE (psk_user_list, struct psk_user)

/* A loaded set of credentials, shared by every session that started
 * while it was current (GnuTLS allows that) and freed when the last of
 * them has closed and reload-tls has replaced it.  Only the PSK or only
 * the X.509 fields are used, as the command line says.
 */
struct tls_credentials {
  unsigned refs;
  psk_user_list psk_users;
  gnutls_psk_server_credentials_t psk;
  gnutls_certificate_credentials_t x509;
};

/* Filled in by the callbacks during one handshake
 * (gnutls_session_get_ptr).
 */
struct tls_handshake_state {
  const struct tls_credentials *creds;
  const struct psk_user *psk_user;
  char reason[512];             /* why we refused the client, if we did */
};

/* tls.c */
extern void tls_set_reason (gnutls_session_t session, const char *fs, ...)
  __attribute__ ((__format__ (__printf__, 2, 3)));

/* tls-io.c: the encrypted recv and send of CONN once SESSION is up,
 * and the end of the session (close_notify) before the socket closes.
 */
extern void tls_io_start (struct connection *conn, gnutls_session_t session);
extern void tls_io_end (struct connection *conn);

/* tls-psk.c: fill C->psk_users and C->psk from the --tls-psk file. */
extern int tls_psk_load (struct tls_credentials *c);
extern void tls_psk_free (struct tls_credentials *c);

/* tls-x509.c: fill C->x509 from the certificates directory. */
extern int tls_x509_load (struct tls_credentials *c);
extern void tls_x509_free (struct tls_credentials *c);
extern void tls_x509_client_identity (struct connection *conn,
                                      gnutls_session_t session);

#endif /* NBDKIT_TLS_INTERNAL_H */
