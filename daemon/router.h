/* SPDX-License-Identifier: BSD-3-Clause
 * One client on the shared listener while the daemon speaks its option
 * phase (router.c: connections and I/O; router-options.c: the options).
 */

#ifndef NBDKITD_ROUTER_H
#define NBDKITD_ROUTER_H

#include "nbdkitd.h"
#include "nbd-protocol.h"

enum router_state {
  ROUTER_CLIENT_FLAGS,          /* waiting for the 4-byte client flags */
  ROUTER_OPTIONS,               /* reading options */
  ROUTER_TLS_HANDSHAKE,         /* after STARTTLS (router-tls.c) */
  ROUTER_CLOSING,               /* close once the output has gone out */
  ROUTER_WAITING,               /* an export was picked; its worker starts */
  ROUTER_HANDING_OVER,          /* sent to the worker, waiting for its reply */
};

struct router_conn {
  struct context *ctx;
  int fd;                       /* -1 once handed over */
  sd_event_source *source;      /* EPOLLIN while reading, EPOLLOUT while
                                 * output is pending */
  sd_event_source *deadline;    /* --handshake-timeout */
  enum router_state state;
  uint32_t client_flags;
  bool structured_replies;
  /* The option being read: header and data. */
  unsigned char buf[sizeof (struct nbd_new_option) + NBD_MAX_OPTION_LENGTH];
  size_t len;
  /* Replies not yet sent: out[out_off .. out_len). */
  unsigned char *out;
  size_t out_off, out_len, out_cap;
  struct export *target;        /* ROUTER_WAITING, ROUTER_HANDING_OVER */
  /* After STARTTLS: the session (a gnutls_session_t), the client's
   * identity (PSK username or certificate subject DN, NULL if none) and
   * whether its certificate verified against the daemon's CA.
   */
  void *tls_session;
  struct router_tls *tls_creds;  /* the credentials it uses (a reference) */
  bool tls_started;             /* STARTTLS was answered */
  char *tls_identity;
  bool tls_verified;
  uint32_t tls_wait;            /* the handshake waits for EPOLLIN/OUT */
};

/* router.c */
extern int router_send_reply (struct router_conn *c, uint32_t option,
                              uint32_t reply, const void *data, size_t len);
extern int router_send_error (struct router_conn *c, uint32_t option,
                              uint32_t reply, const char *msg);
extern int router_pick (struct router_conn *c, uint32_t option,
                        struct export *e);

/* router-options.c */
extern int router_option (struct router_conn *c);

/* router-tls.c: the I/O layer (plain or TLS) and the STARTTLS upgrade.
 * recv/send return bytes, 0 for end of file (recv), -EAGAIN, or another
 * negative errno.
 */
extern bool router_tls_available (const struct context *ctx);
extern bool router_tls_has_x509 (const struct context *ctx);
extern ssize_t router_io_recv (struct router_conn *c, void *buf, size_t len);
extern ssize_t router_io_send (struct router_conn *c, const void *buf,
                               size_t len);
extern bool router_io_pending (struct router_conn *c);
extern int router_tls_start (struct router_conn *c);
extern int router_tls_handshake (struct router_conn *c, uint32_t *events);
extern void router_tls_conn_free (struct router_conn *c);
extern void router_tls_release (struct router_tls *t);

/* router-relay.c: after the hand-over of a TLS client, a thread moves
 * the bytes between the client's TLS session and the worker's socket.
 * Takes the session, its credentials' reference and both descriptors.
 */
extern int router_relay_start (void *tls_session, struct router_tls *creds,
                               int client_fd, int worker_fd);

#endif /* NBDKITD_ROUTER_H */
