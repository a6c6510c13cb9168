/* SPDX-License-Identifier: BSD-3-Clause
 * The server's private header: every cross-file symbol of the nbdkit
 * program, grouped by the file that defines it.
 */

#ifndef NBDKIT_INTERNAL_H
#define NBDKIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#define NBDKIT_API_VERSION 2
#include "nbdkit-plugin.h"
#include "nbdkit-filter.h"
#include "vector.h"

struct connection;
struct context;
struct backend;

/* The largest READ or WRITE payload accepted (nbd-protocol.md "Size
 * constraints" asks for at least 32 MiB).
 */
#define MAX_REQUEST_SIZE (64 * 1024 * 1024)

/* Default number of request threads per connection (parallel plugins). */
#define DEFAULT_THREADS 16

#define debug(fs, ...)                                          \
  do {                                                          \
    if (config.verbose)                                         \
      nbdkit_debug ((fs), ##__VA_ARGS__);                       \
  } while (0)

/* main.c */
enum log_to {
  LOG_TO_DEFAULT,               /* stderr, or syslog once forked */
  LOG_TO_STDERR,
  LOG_TO_SYSLOG,
  LOG_TO_NULL,
};

enum tls_mode { TLS_OFF = 0, TLS_ON = 1, TLS_REQUIRE = 2 };

/* Everything the command line sets.  Filled in by main.c, never changed
 * once the server starts serving.
 */
struct config {
  const char *program_name;
  /* Listeners. */
  const char *ipaddr;           /* -i */
  const char *port;             /* -p, NULL = 10809 */
  int address_family;           /* -4/-6: AF_INET, AF_INET6, AF_UNSPEC */
  char *unixsocket;             /* -U PATH (or the generated one for -U -) */
  char *unixsocket_tmpdir;      /* -U -: the private dir to remove at exit */
  bool listen_stdin;            /* -s */
  bool vsock;                   /* --vsock */
  bool socket_activation;       /* LISTEN_FDS was given (activation.c) */
  unsigned listen_fds;          /* socket activation: listening sockets */
  int control_fd;               /* socket activation: the worker's control
                                   socket (nbdkit-worker(7)), or -1 */
  /* Behaviour. */
  bool foreground;              /* -f, or implied */
  const char *pidfile;          /* -P */
  const char *exportname;       /* -e (for --run only) */
  bool readonly;                /* -r */
  unsigned threads;             /* -t, 0 = default */
  bool oldstyle;                /* -o */
  bool no_sr;                   /* --no-sr */
  unsigned mask_handshake;      /* --mask-handshake */
  bool verbose;                 /* -v */
  const char *run;              /* --run */
  bool exit_with_parent;        /* --exit-with-parent */
  enum log_to log_to;           /* --log */
  bool forked;                  /* true once we forked into the background */
  const char *user, *group;     /* -u, -g */
  const char *selinux_label;    /* --selinux-label */
  bool swap;                    /* --swap */
  /* TLS (see tls.c). */
  enum tls_mode tls;
  const char *tls_certificates;
  const char *tls_psk;
  bool tls_verify_peer;
  const char *tls_priority;
  /* Limits (connection-limits.c). */
  unsigned handshake_timeout;   /* --handshake-timeout, seconds, 0 = none */
  unsigned max_connections;     /* --max-connections */
  unsigned poll_max;            /* --poll-max, µs, 0 = never poll */
};
extern struct config config;
extern struct backend *top;     /* outermost filter, or the plugin */

/* quit.c */
extern volatile int quit;
/* Whether quit is set: atomic, since a signal handler or any thread may
 * set it while other threads look.
 */
static inline bool
quitting (void)
{
  return __atomic_load_n (&quit, __ATOMIC_ACQUIRE);
}
extern int quit_fd;             /* becomes readable when quit is set */
extern void set_up_quit_pipe (void);
extern void close_quit_pipe (void);
extern void handle_quit (int sig);
extern void set_quit (void);

/* activation.c: socket activation (sd_listen_fds(3)). */
extern void activation_check (void);

/* usergroup.c: -u and -g. */
extern void usergroup_resolve (void);
extern void usergroup_change (void);

/* ready.c: everything between "listening" and "serving". */
extern void server_ready (void);

/* signals.c */
extern void set_up_signals (void);

/* log.c */
extern void log_verror (const char *fs, va_list args);
extern void log_capture_errors (char *buf, size_t len);
extern void log_stderr_verror (const char *fs, va_list args);
extern void log_syslog_verror (const char *fs, va_list args);

/* threadlocal.c: per-thread context for messages and errors. */
extern int start_detached_thread (void *(*fn) (void *), void *arg);
extern void threadlocal_set_name (const char *name);
extern const char *threadlocal_get_name (void);
extern void threadlocal_set_instance (size_t instance);
extern size_t threadlocal_get_instance (void);
extern void threadlocal_set_error (int err);
extern int threadlocal_get_error (void);
extern void threadlocal_set_conn (struct connection *conn);
extern struct connection *threadlocal_get_conn (void);
extern void threadlocal_set_context (struct context *c);
extern struct context *threadlocal_get_context (void);
extern void *threadlocal_buffer (size_t size);
extern void threadlocal_free_buffer (void);

/* debug.c: debug messages and -D flags */
struct debug_flag {
  char *name;                   /* plugin or filter name */
  char *flag;                   /* flag name */
  int value;
  bool used;
};
DEFINE_VECTOR_TYPE (debug_flag_list, struct debug_flag)
extern debug_flag_list debug_flags;
extern void add_debug_flag (const char *arg);
extern void apply_debug_flags (void *dl, const char *name);
extern void free_debug_flags (void);
extern int server_debug_flag (const char *flag, int def);
extern int nbdkit_debug_backend_controlpath;
extern int nbdkit_debug_backend_datapath;

/* locks.c: the thread model. */
extern void lock_init_thread_model (void);
extern const char *name_of_thread_model (int model);
extern int thread_model;        /* effective model of the whole chain */
extern void lock_connection (void);
extern void unlock_connection (void);
extern void lock_request (void);
extern void unlock_request (void);

/* sockets.c */
DEFINE_VECTOR_TYPE (int_vector, int)
extern int_vector bind_unix_socket (void);
extern int_vector bind_tcpip_socket (void);
extern int_vector bind_vsock (void);
extern int_vector activation_listeners (void);

/* The main loop polls a small set of sources: the quit pipe and, in
 * worker mode, the control socket and its timer (the listening sockets
 * are polled by the acceptor thread, acceptor.c).
 * Handlers run in the main thread; a source is polled for POLLIN unless
 * poll_source_set_events says otherwise.
 */
typedef void (*poll_handler) (int fd, short revents, void *opaque);
extern void poll_source_add (int fd, poll_handler handler, void *opaque);
extern void poll_source_set_events (int fd, short events);
extern void poll_source_remove (int fd);
extern void serve_loop (const int_vector *listeners);

/* acceptor.c */
extern void acceptor_start (const int_vector *listeners);
extern void acceptor_run (void);
extern void acceptor_finish (void);
extern void stop_accepting (void);
extern int replace_listeners (int *fds, size_t n, const char **why);

/* connection-limits.c */
#define DEFAULT_HANDSHAKE_TIMEOUT 10
#define DEFAULT_POLL_MAX 50      /* µs (read-poll.c) */
#define MAX_POLL_MAX 10000
#define DEFAULT_MAX_CONNECTIONS 1024
extern void connection_limits_init (void);
extern bool connection_limits_admit (void);
extern void connection_limits_handshake_begin (struct connection *conn);
extern void connection_limits_handshake_end (struct connection *conn);

/* connections.c */
struct connection;

/* Flags to conn->send. */
#define SEND_MORE 1             /* more data follows immediately */

typedef int (*connection_recv_function) (struct connection *conn,
                                         void *buf, size_t len);
typedef int (*connection_send_function) (struct connection *conn,
                                         const void *buf, size_t len,
                                         int flags);
typedef void (*connection_close_function) (struct connection *conn);

/* A connection's status only ever goes down (the values are ordered). */
enum conn_status {
  CONN_DEAD = -1,               /* failed: stop at once */
  CONN_CLOSING = 0,             /* finish requests in flight, then close */
  CONN_OPEN = 1,                /* serving */
};

/* Why a connection ended (connection-closed, nbdkit-worker(7)). */
enum conn_close_reason {
  CLOSE_UNKNOWN = 0,            /* decided when it closes */
  CLOSE_BY_CLIENT,
  CLOSE_BY_DISCONNECT,
  CLOSE_BY_ERROR,
  CLOSE_BY_STOP,
};

/* Where the newstyle handshake of a new connection starts. */
enum handshake_stage {
  HANDSHAKE_GREETING,           /* nothing said yet: send the greeting */
  HANDSHAKE_OPTIONS,            /* a supervisor did the greeting */
};

/* The handshake state a supervisor hands over with a client socket
 * (control-handover.c).  connection_start takes the pointers.
 */
struct handshake_resume {
  enum handshake_stage stage;
  uint32_t client_flags;
  bool structured_replies;
  bool meta_context_base_allocation;
  char *meta_context_exportname;
  char *option;                 /* raw bytes of the option to answer next */
  size_t option_len;
  /* The supervisor relays an established TLS session (its end is the
   * plaintext side): the connection counts as TLS with this identity.
   */
  bool tls;
  char *tls_identity;
};

/* Requests counted by type for the worker's statistics. */
enum counted_request {
  COUNT_READ, COUNT_WRITE, COUNT_FLUSH, COUNT_TRIM, COUNT_ZERO,
  COUNT_BLOCK_STATUS, COUNT_CACHE,
  NR_COUNTED_REQUESTS
};

/* Written only by the connection's request threads (relaxed atomics, no
 * lock), read when the supervisor asks.
 */
struct conn_counters {
  uint64_t requests[NR_COUNTED_REQUESTS];
  uint64_t bytes_read;          /* data read by the client */
  uint64_t bytes_written;       /* data written by the client */
  uint64_t errors;              /* requests answered with an error */
};

struct worker_stats {
  uint64_t connections_active, connections_total;
  struct conn_counters counters;
};

struct connection {
  uint64_t id;                  /* unique in this process, never reused */
  int sockin, sockout;
  pthread_mutex_t read_lock;    /* one reader of requests at a time */
  pthread_mutex_t write_lock;   /* one writer of replies at a time */
  pthread_mutex_t status_lock;
  enum conn_status status;
  enum conn_close_reason close_reason;
  /* Output held back to go out in one sendmsg (connections-io.c): a
   * reply header until its payload, in HELD; in the transmission phase,
   * whole replies while more requests are waiting (BATCHING), in a
   * larger buffer.
   */
  char held[512];
  char *out;                    /* HELD or WBUF */
  char *wbuf;
  size_t out_len, out_cap;
  bool batching;
  int status_pipe[2];           /* wakes request threads on close */
  unsigned nworkers;             /* the most request threads allowed */

  /* Request threads are started on demand (connections.c). */
  pthread_mutex_t workers_lock;
  pthread_t *workers;           /* [nworkers]; [0] is unused */
  unsigned workers_started;     /* including the connection's own thread */
  unsigned workers_idle;        /* threads not busy with a request */
  /* Whether requests wait or are slow, so that more threads help
   * (protocol.c), and what it measured until then.
   */
  bool parallel;
  int64_t serving_since;        /* ns, CLOCK_MONOTONIC; 0: not serving */
  pid_t serving_tid;            /* the thread serving it */
  int64_t seen_sleeping;        /* the watchdog saw that request asleep */
  unsigned requests_seen, window_requests, window_waits, slow_windows;
  int64_t window_cpu_us;
  bool workers_closed;          /* joined: no more may start */

  /* Peer. */
  struct sockaddr_storage peer_addr;
  socklen_t peer_addrlen;
  int64_t peer_pid, peer_uid, peer_gid;   /* -1 if not known */
  uint64_t since;               /* connection time, µs since the epoch */

  /* Handshake state (handshake-newstyle.c). */
  enum handshake_stage handshake_stage;
  uint32_t client_flags;
  char *pending_option;         /* handed over: read before the socket */
  size_t pending_option_len, pending_option_pos;
  char *exportname;             /* canonical name of the open export */
  bool structured_replies;
  bool meta_context_base_allocation;
  char *meta_context_exportname; /* export named in SET_META_CONTEXT */
  uint64_t exportsize;
  uint16_t eflags;
  bool using_tls;
  char *tls_username;           /* PSK user or client certificate DN */
  char *tls_psk_username;       /* PSK user, if PSK was used */
  char *tls_dn, *tls_issuer_dn; /* verified client certificate's DNs */
  void *tls_credentials;        /* held by the session (tls.c) */
  struct context *top_context;  /* open chain in the transmission phase */
  const char *default_exportname; /* cached default_export answer */

  /* Limits (connection-limits.c): the monotonic time in ns by which
   * the handshake must be done (0 without --handshake-timeout), whether
   * the handshake is in progress, and whether the connection has been
   * timed out or evicted.
   */
  int64_t handshake_deadline;
  bool in_handshake;
  bool limit_dropped;

  /* Worker mode: reported in connection-opened / -closed. */
  bool opened;                  /* reached the transmission phase */
  struct conn_counters counters;

  /* Strings interned for the lifetime of the connection. */
  string_vector interns;

  /* I/O: plain socket or TLS. */
  void *crypto_session;
  bool tls_gathering;           /* records are gathered (tls-io.c) */
  char *tls_out;                /* the gathered records */
  size_t tls_out_len;
  bool read_ahead;              /* requests read through RBUF */
  char *rbuf;                   /* buffered requests (connections-io.c) */
  size_t rbuf_pos, rbuf_len;
  /* Polling for requests (read-poll.c): the window in ns, the waits
   * to let pass without polling after a poll found nothing, whether
   * this is not a socket at all, and how often polling found a request.
   */
  int64_t poll_ns;
  unsigned poll_skip, poll_backoff;
  bool poll_off;
  uint64_t polls, polls_found;  /* for the debug message at the end */
  connection_recv_function recv;
  connection_send_function send;
  connection_close_function close;
};

/* Whether request counters are kept (only in worker mode). */
extern bool counters_enabled;

/* read-poll.c */
extern ssize_t read_polling (struct connection *conn, void *buf, size_t len);
extern void read_poll_report (struct connection *conn);

extern uint64_t connection_start (int sockin, int sockout,
                                  struct handshake_resume *resume);
extern int connection_status_fd (struct connection *conn);
extern enum conn_status connection_get_status (struct connection *conn);
extern void connection_set_status (struct connection *conn,
                                   enum conn_status value);
extern void connection_disconnect (struct connection *conn, bool force,
                                   enum conn_close_reason why);
extern int connection_disconnect_by_id (uint64_t id, bool force);
extern void connection_disconnect_all (bool force,
                                       enum conn_close_reason why);
extern bool connection_request_buffered (struct connection *conn);
extern void connection_drop_input (struct connection *conn);
extern bool connection_may_take_request (struct connection *conn);
extern bool connection_input_pending (struct connection *conn);
extern int connection_flush_output (struct connection *conn);
extern void connection_start_transmission (struct connection *conn);
/* request-threads.c */
extern void *connection_worker (void *vconn);
extern void connection_join_workers (struct connection *conn);
extern void connection_add_worker (struct connection *conn);

/* connection-parallel.c */
struct request_cost {
  bool watched, sampled;
  struct rusage ru;
};
extern void request_cost_begin (struct connection *conn,
                                struct request_cost *c);
extern void request_cost_end (struct connection *conn,
                              struct request_cost *c);

extern bool connection_serve_here (int sockin, int sockout);
extern struct connection *connection_accept (int sock);
extern void connection_abandon (struct connection *conn);
extern void serve_connection (struct connection *conn);
extern int write_all (int fd, const void *buf, size_t len);

/* connection-threads.c */
extern int connection_thread_start (struct connection *conn);
extern void connection_thread_begin (void);
extern void connection_thread_end (void);
extern void connection_serve_accepted (struct connection *conn);
extern int pass_accept_role (void);
extern bool connection_threads_wait (unsigned seconds);
extern unsigned connection_threads_running (void);

extern void connection_stats (struct worker_stats *stats);
extern void connection_for_each_locked (void (*fn) (struct connection *,
                                                    void *),
                                        void *opaque);
extern void connection_for_each_opened (void (*fn) (struct connection *,
                                                    void *),
                                        void *opaque);
extern struct connection *connection_new_probe (void);
extern void connection_free_probe (struct connection *conn);
extern const char *connection_close_reason_name (enum conn_close_reason r);
extern void connection_request_started (struct connection *conn);
extern void connection_request_done (struct connection *conn);

/* connections-io.c: plain socket I/O. */
extern void connection_set_raw_io (struct connection *conn);
extern int conn_recv_full (struct connection *conn, void *buf, size_t len,
                           const char *fs, ...)
  __attribute__ ((__format__ (__printf__, 4, 5)));
extern int conn_discard (struct connection *conn, uint64_t len);

/* handshake.c */

/* What a router needs to know about the default export (the ready
 * event).
 */
struct export_summary {
  char *name;
  char *description;            /* NULL if the plugin has none */
  int64_t size;
  uint16_t eflags;
  bool can_extents;
  uint32_t minimum, preferred, maximum;
};
extern int protocol_handshake (struct connection *conn);
extern int protocol_summarize_default_export (struct export_summary *s);
extern void export_summary_free (struct export_summary *s);
extern int protocol_open_export (struct connection *conn,
                                 const char *exportname);
extern void protocol_close_export (struct connection *conn);

/* handshake-oldstyle.c */
extern int protocol_handshake_oldstyle (struct connection *conn);

/* handshake-newstyle.c */
extern uint16_t protocol_newstyle_gflags (void);
extern int protocol_handshake_newstyle_greeting (struct connection *conn);
extern int protocol_handshake_newstyle_options (struct connection *conn);

/* handshake-replies.c: replies to newstyle options.  Each returns 0, or
 * -1 if the reply could not be sent.
 */
extern int option_reply (struct connection *conn, uint32_t option,
                         uint32_t reply, const void *data, size_t len);
extern int option_reply_ack (struct connection *conn, uint32_t option);
extern int option_reply_error (struct connection *conn, uint32_t option,
                               uint32_t reply, const char *fs, ...)
  __attribute__ ((__format__ (__printf__, 4, 5)));
extern int option_reply_info_export (struct connection *conn,
                                     uint32_t option);
extern int option_reply_info_string (struct connection *conn,
                                     uint32_t option, uint16_t type,
                                     const char *str);
extern int option_reply_info_block_size (struct connection *conn,
                                         uint32_t option);
extern int option_reply_meta_context (struct connection *conn,
                                      uint32_t option, uint32_t id,
                                      const char *name);

/* protocol.c */
extern bool protocol_recv_request_send_reply (struct connection *conn);
extern uint32_t errno_to_nbd_error (int err);

/* replies.c */
extern int send_simple_reply (struct connection *conn, uint64_t handle,
                              uint16_t cmd, const char *buf, uint32_t count,
                              uint32_t error);
extern int send_structured_reply_read (struct connection *conn,
                                       uint64_t handle, uint16_t flags,
                                       const char *buf, uint32_t count,
                                       uint64_t offset,
                                       const struct nbdkit_extents *holes);
extern int send_structured_reply_block_status (struct connection *conn,
                                               uint64_t handle,
                                               uint32_t count, uint64_t offset,
                                               uint16_t flags,
                                               const struct nbdkit_extents *);
extern int send_structured_reply_error (struct connection *conn,
                                        uint64_t handle, uint16_t cmd,
                                        uint32_t error);

/* tls.c */
extern int tls_init (void);
extern void tls_free (void);
extern int tls_upgrade (struct connection *conn);
extern int tls_reload (void);

/* control.c: worker mode (nbdkit-worker(7)).  Every function is a no-op
 * without a control socket.
 */
struct json_object;
extern void control_init (int fd);
extern bool control_active (void);
extern void control_ready (void);
extern void control_connection_opened (struct connection *conn);
extern void control_connection_closed (struct connection *conn,
                                       enum conn_close_reason why);
extern void control_stopping (const char *reason);
extern bool control_draining (void);
extern void control_set_draining (void);
extern void control_close (void);

/* control-queue.c: outgoing messages, never blocking the sender. */
extern void control_queue_init (int fd);
extern void control_queue_configure (void);
extern void control_queue_start (void);
extern void control_queue_flush (void);
extern void control_queue_close (bool drain);
extern void control_send (struct json_object *msg);
extern void control_reserve_reply (void);
extern void control_send_reply (struct json_object *reply);

/* control-json.c: building messages. */
extern char *control_error_text (const char *fs, ...)
  __attribute__ ((__format__ (__printf__, 1, 2)));
extern struct json_object *control_message (const char *type);
extern struct json_object *control_json_ready (void);
extern void control_json_add_stats (struct json_object *msg);
extern struct json_object *control_json_connection (struct connection *conn,
                                                    bool live);

/* control-commands.c */
extern void control_handle_message (const char *buf, size_t len,
                                    bool truncated, int *fds, size_t nfds);
extern void control_stop (bool graceful, unsigned timeout,
                          const char *reason);
extern void control_tick (void);

/* control-handover.c */
extern int control_hand_over (struct json_object *cmd, int fd,
                              struct json_object *reply, char **error);

/* captive.c */
extern void run_command (const int_vector *socks);

/* usage.c */
extern void usage (void);
extern void display_version (void);
extern void dump_config (void);
extern void usage_error (const char *fs, ...)
  __attribute__ ((__format__ (__printf__, 1, 2), __noreturn__));

/* modules.c: the chain from the command line. */
extern void load_backends (const char *plugin_name,
                           const string_vector *filter_names);
extern void configure_backends (int argc, char *argv[], int first,
                                bool dump_plugin);

/* extents.c */
extern const struct nbdkit_extent *extents_array (const struct nbdkit_extents *, size_t *len);
extern struct nbdkit_extents *extents_new_internal (uint64_t start,
                                                    uint64_t end);

/* exports.c */
extern int exports_resolve_default (struct nbdkit_exports *exports,
                                    struct backend *b, int readonly);

/* public.c */
extern int parse_plugin_key_value (const char *arg, char **key,
                                   const char **value);

/* backend.c: the chain of filters over a plugin. */

/* What a backend layer can do.  `plugins.c` and `filters.c` fill this in;
 * `backend.c` wraps every call with the checks and caching common to all
 * layers.
 */
struct backend {
  struct backend *next;         /* the layer below, NULL for the plugin */
  size_t i;                     /* 0 = plugin, increasing outward */
  const char *type;             /* "plugin" or "filter" */
  char *name;                   /* short name from the plugin struct */
  char *filename;
  void *dl;

  void (*free) (struct backend *);
  int (*thread_model) (struct backend *);
  const char *(*plugin_name) (struct backend *);
  void (*usage) (struct backend *);
  const char *(*version) (struct backend *);
  void (*dump_fields) (struct backend *);
  void (*config) (struct backend *, const char *key, const char *value);
  void (*config_complete) (struct backend *);
  const char *(*magic_config_key) (struct backend *);
  void (*get_ready) (struct backend *);
  void (*after_fork) (struct backend *);
  void (*cleanup) (struct backend *);

  int (*preconnect) (struct backend *, int readonly);
  int (*list_exports) (struct backend *, int readonly, int is_tls,
                       struct nbdkit_exports *exports);
  const char *(*default_export) (struct backend *, int readonly, int is_tls);
  void *(*open) (struct context *, int readonly, const char *exportname,
                 int is_tls);
  int (*prepare) (struct context *);
  int (*finalize) (struct context *);
  void (*close) (struct context *);

  const char *(*export_description) (struct context *);
  int64_t (*get_size) (struct context *);
  int (*block_size) (struct context *,
                     uint32_t *minimum, uint32_t *preferred,
                     uint32_t *maximum);
  int (*can_write) (struct context *);
  int (*can_flush) (struct context *);
  int (*is_rotational) (struct context *);
  int (*can_trim) (struct context *);
  int (*can_zero) (struct context *);
  int (*can_fast_zero) (struct context *);
  int (*can_extents) (struct context *);
  int (*can_fua) (struct context *);
  int (*can_multi_conn) (struct context *);
  int (*can_cache) (struct context *);

  int (*pread) (struct context *, void *buf, uint32_t count, uint64_t offset,
                uint32_t flags, int *err);
  int (*pwrite) (struct context *, const void *buf, uint32_t count,
                 uint64_t offset, uint32_t flags, int *err);
  int (*flush) (struct context *, uint32_t flags, int *err);
  int (*trim) (struct context *, uint32_t count, uint64_t offset,
               uint32_t flags, int *err);
  int (*zero) (struct context *, uint32_t count, uint64_t offset,
               uint32_t flags, int *err);
  int (*extents) (struct context *, uint32_t count, uint64_t offset,
                  uint32_t flags, struct nbdkit_extents *extents, int *err);
  int (*cache) (struct context *, uint32_t count, uint64_t offset,
                uint32_t flags, int *err);
};

/* One open layer of the chain for one connection (or a filter's own
 * background connection).  It starts with the operations table so that a
 * context is also the nbdkit_next a filter above receives.
 */
struct context {
  struct nbdkit_next_ops next;  /* must be first */
  void *handle;                 /* from the layer's open */
  struct backend *b;
  struct context *c_next;       /* the layer below, or NULL */
  struct connection *conn;      /* NULL for a background context */

  unsigned char state;          /* CONTEXT_OPEN | CONTEXT_CONNECTED ... */
  bool readonly;                /* opened read-only */

  /* Cached answers, -1 until first asked. */
  int64_t exportsize;
  int can_write, can_flush, is_rotational, can_trim, can_zero;
  int can_fast_zero, can_fua, can_multi_conn, can_extents, can_cache;
  uint32_t minimum_block_size, preferred_block_size, maximum_block_size;
  bool block_size_known;
};

#define CONTEXT_OPEN      1     /* open succeeded */
#define CONTEXT_CONNECTED 2     /* prepare succeeded */
#define CONTEXT_FAILED    4     /* prepare or finalize failed */

extern void backend_init (struct backend *b, struct backend *next, size_t i,
                          const char *filename, void *dl, const char *type);
extern void backend_load (struct backend *b, const char *name,
                          void (*load) (void));
extern void backend_unload (struct backend *b, void (*unload) (void));

extern int backend_list_exports (struct backend *b, int readonly,
                                 struct nbdkit_exports *exports);
extern const char *backend_default_export (struct backend *b, int readonly);
extern struct context *backend_open (struct backend *b, int readonly,
                                     const char *exportname, int is_tls);
extern int backend_prepare (struct context *c);
extern int backend_finalize (struct context *c);
extern void backend_close (struct context *c);
extern bool backend_valid_range (struct context *c,
                                 uint64_t offset, uint32_t count);

extern const char *backend_export_description (struct context *c);
extern int64_t backend_get_size (struct context *c);
extern int backend_block_size (struct context *c, uint32_t *minimum,
                               uint32_t *preferred, uint32_t *maximum);
extern int backend_can_write (struct context *c);
extern int backend_can_flush (struct context *c);
extern int backend_is_rotational (struct context *c);
extern int backend_can_trim (struct context *c);
extern int backend_can_zero (struct context *c);
extern int backend_can_fast_zero (struct context *c);
extern int backend_can_extents (struct context *c);
extern int backend_can_fua (struct context *c);
extern int backend_can_multi_conn (struct context *c);
extern int backend_can_cache (struct context *c);

extern int backend_pread (struct context *c, void *buf, uint32_t count,
                          uint64_t offset, uint32_t flags, int *err);
extern int backend_pwrite (struct context *c, const void *buf, uint32_t count,
                           uint64_t offset, uint32_t flags, int *err);
extern int backend_flush (struct context *c, uint32_t flags, int *err);
extern int backend_trim (struct context *c, uint32_t count, uint64_t offset,
                         uint32_t flags, int *err);
extern int backend_zero (struct context *c, uint32_t count, uint64_t offset,
                         uint32_t flags, int *err);
extern int backend_emulate_zero (struct context *c, uint32_t count,
                                 uint64_t offset, uint32_t flags, int *err);
extern int backend_extents (struct context *c, uint32_t count,
                            uint64_t offset, uint32_t flags,
                            struct nbdkit_extents *extents, int *err);
extern int backend_cache (struct context *c, uint32_t count, uint64_t offset,
                          uint32_t flags, int *err);

/* plugins.c */
extern struct backend *plugin_register (size_t index, const char *filename,
                                        void *dl,
                                        struct nbdkit_plugin *(*plugin_init)
                                        (void));

/* filters.c */
extern struct backend *filter_register (struct backend *next, size_t index,
                                        const char *filename, void *dl,
                                        struct nbdkit_filter *(*filter_init)
                                        (void));

/* Apply FN to every backend from the outermost to the plugin. */
#define for_each_backend(b) for (b = top; b != NULL; b = b->next)

#endif /* NBDKIT_INTERNAL_H */
