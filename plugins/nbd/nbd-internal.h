/* SPDX-License-Identifier: BSD-3-Clause
 * The nbd plugin's private header: its configuration, how it connects to
 * the upstream server (connect.c) and how requests are forwarded over
 * one upstream connection (forward.c).
 */

#ifndef NBDKIT_NBD_INTERNAL_H
#define NBDKIT_NBD_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>

#include <libnbd.h>

#include "vector.h"


/* How the plugin reaches the upstream server: exactly one per run. */
enum upstream_mode {
  MODE_NONE = 0,
  MODE_SOCKET,                  /* socket=PATH: Unix domain socket */
  MODE_TCP,                     /* hostname=HOST [port=PORT] */
  MODE_VSOCK,                   /* vhost-cid=CID [port=PORT] */
  MODE_URI,                     /* [uri=]URI */
  MODE_SOCKET_FD,               /* socket-fd=FD: an inherited socket */
  MODE_COMMAND,                 /* command=PROG [arg=ARG]...: a subprocess */
};

/* Everything params.c parsed from the command line; read-only once
 * config_complete has succeeded.
 */
struct nbd_params {
  enum upstream_mode mode;
  char *socket;                 /* absolute path, MODE_SOCKET */
  char *hostname;               /* MODE_TCP */
  const char *port;             /* port= as given, or NULL for the default */
  uint32_t cid;                 /* MODE_VSOCK */
  uint32_t vsock_port;          /* MODE_VSOCK */
  char *uri;                    /* MODE_URI */
  int socket_fd;                /* MODE_SOCKET_FD, -1 once handed over */
  string_vector command;        /* MODE_COMMAND: argv, NULL-terminated */
  const char *export;           /* export=NAME, "" by default */
  unsigned retry;               /* extra connection attempts */
  bool shared;                  /* one upstream connection for all clients */
  bool dynamic_export;          /* pass the client's export name upstream */
  int tls;                      /* LIBNBD_TLS_*, -1 if tls= not given */
  char *tls_certificates;       /* absolute path or NULL */
  int tls_verify;               /* -1 if not given, else a bool */
  const char *tls_username;     /* NULL if not given */
  char *tls_psk;                /* absolute path or NULL */
};

extern struct nbd_params params;

/* -D nbd.verbose=1: route libnbd's own debug messages to nbdkit_debug. */
extern int nbd_debug_verbose;

/* params.c */
extern int nbdplug_config (const char *key, const char *value);
extern int nbdplug_config_complete (void);
extern void nbdplug_params_free (void);
#define nbdplug_config_help \
  "[uri=]<URI>            URI of the NBD server (nbd://, nbds://, nbd+unix://,\n" \
  "                       nbds+unix://, nbd+vsock://).\n" \
  "socket=<SOCKNAME>      Unix socket of the NBD server.\n" \
  "hostname=<HOST>        Host name of the NBD server (TCP).\n" \
  "vhost-cid=<CID>        AF_VSOCK context ID of the NBD server.\n" \
  "port=<PORT>            TCP port or service name, or vsock port\n" \
  "                       (default 10809).\n" \
  "socket-fd=<FD>         An inherited socket connected to the NBD server.\n" \
  "command=<COMMAND>      Run this NBD server with socket activation.\n" \
  "arg=<ARG>              An argument for command= (repeat for more).\n" \
  "export=<NAME>          Export name to ask the server for (default \"\").\n" \
  "dynamic-export=<BOOL>  Ask the server for the client's export name.\n" \
  "retry=<N>              Retry a failed connection N times, 1 s apart.\n" \
  "shared=<BOOL>          One server connection for all clients.\n" \
  "tls=off|on|require     Whether to use TLS towards the server.\n" \
  "tls-certificates=<DIR> X.509 client certificates directory.\n" \
  "tls-verify=<BOOL>      Check the server's certificate (default true).\n" \
  "tls-username=<NAME>    User name for X.509 or PSK.\n" \
  "tls-psk=<FILE>         Pre-shared keys file."

/* connect.c */
extern struct nbd_handle *upstream_connect (const char *export,
                                            bool negotiate_only);
extern int upstream_errno (int err);

/* forward.c: one upstream connection with an owner thread, and the
 * requests that client threads send over it concurrently.
 */
struct request;

struct upstream {
  struct nbd_handle *nbd;
  int wake[2];                  /* pipe: wakes the owner out of poll */
  pthread_t owner;
  struct request *queue;        /* lock-free list of requests to send */
  bool idle;                    /* the owner is (about to be) in poll */
  bool stopping;                /* set (atomically) to end the owner */
};

enum request_op {
  REQUEST_PREAD, REQUEST_PWRITE, REQUEST_FLUSH, REQUEST_TRIM, REQUEST_ZERO,
  REQUEST_EXTENTS, REQUEST_CACHE,
};

/* A request on the stack of the client thread that waits for it. */
struct request {
  enum request_op op;
  void *buf;                    /* pread, pwrite */
  uint32_t count;
  uint64_t offset;
  uint32_t flags;               /* LIBNBD_CMD_FLAG_* */
  struct nbdkit_extents *extents; /* extents */
  /* Filled in by forward.c. */
  struct request *next;         /* in the queue */
  sem_t done;                   /* posted when answered */
  int err;                      /* errno, 0 if it succeeded */
  bool unsent;                  /* refused before reaching the server */
  char message[256];            /* why, if unsent */
};

extern struct upstream *upstream_start (struct nbd_handle *nbd);
extern void upstream_stop (struct upstream *u);
extern int upstream_request (struct upstream *u, struct request *r,
                             const char *what);

#endif /* NBDKIT_NBD_INTERNAL_H */
