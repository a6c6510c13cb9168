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

#endif /* NBDKITD_ROUTER_H */
