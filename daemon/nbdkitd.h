/* SPDX-License-Identifier: BSD-3-Clause
 * nbdkitd's private header: the daemon context, export definitions and
 * runtime state, and the functions each daemon/ file provides to the others.
 */

#ifndef NBDKITD_H
#define NBDKITD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "vector.h"
#include "errors.h"

#define NBDKITD_BUS_NAME     "org.nbdkit.Daemon1"
#define NBDKITD_MANAGER_PATH "/org/nbdkit/Daemon1"
#define NBDKITD_EXPORT_PREFIX "/org/nbdkit/Daemon1/export"
#define NBDKITD_MANAGER_IFACE "org.nbdkit.Daemon1.Manager"
#define NBDKITD_EXPORT_IFACE "org.nbdkit.Daemon1.Export"

#define POLKIT_ACTION_MANAGE "org.nbdkit.daemon1.manage-exports"
#define POLKIT_ACTION_DISCONNECT "org.nbdkit.daemon1.disconnect-clients"

/* NBD export names are strings of at most 4096 bytes (nbd-protocol.md,
 * "Option types": NBD_OPT_EXPORT_NAME).
 */
#define EXPORT_NAME_MAX 4096
/* The shared listener: clients in the option phase at once, and the
 * default of --handshake-timeout (seconds).
 */
#define ROUTER_MAX_CLIENTS 256
#define DEFAULT_HANDSHAKE_TIMEOUT 10
/* A secret read from a caller's file descriptor. */
#define SECRET_MAX 65536

DEFINE_VECTOR_TYPE (int_vector, int)

enum start_policy { START_BOOT, START_ON_DEMAND, START_MANUAL };
enum tls_mode { TLS_MODE_OFF, TLS_MODE_ON, TLS_MODE_REQUIRE };
enum export_state {
  EXPORT_INACTIVE, EXPORT_STARTING, EXPORT_RUNNING, EXPORT_STOPPING,
  EXPORT_FAILED,
};

/* One key=value parameter, in command-line order.  A secret's value is
 * kept only in memory and reaches the worker through a pipe.
 */
struct param {
  char *key;
  char *value;
  bool secret;
};
DEFINE_VECTOR_TYPE (param_vector, struct param)

/* What an export is: everything stored in its JSON file. */
struct export_def {
  char *name;
  char *description;
  char *plugin;
  string_vector filters;
  param_vector params;
  bool readonly;
  string_vector listeners;      /* tcp:HOST:PORT, unix:PATH, vsock:PORT, shared */
  enum tls_mode tls;
  char *tls_certificates;
  char *tls_psk;
  bool tls_verify_peer;
  string_vector tls_allow;      /* shared listener: PSK users / X.509 DNs
                                 * allowed; empty: any TLS client */
  uint32_t threads;             /* 0: nbdkit's default */
  char *user;
  char *group;
  enum start_policy start;
  uint32_t idle_timeout;        /* seconds, on-demand; 0: never stop */
  bool persist;
};

/* The name of a descriptor in the service manager's file-descriptor
 * store (nbdkitd --fd-store, fdstore.c): "" while not stored.
 */
#define FDSTORE_NAME_MAX 40

/* A listening socket the daemon owns for one export. */
struct listener {
  char *address;                /* as given: tcp:..., unix:..., vsock:... */
  int fd;
  sd_event_source *watch;       /* on-demand: the first client starts the worker */
  char fdname[FDSTORE_NAME_MAX];
};
DEFINE_VECTOR_TYPE (listener_vector, struct listener)

/* The counters reported by the worker (nbdkit-worker(7) "stats"). */
struct export_counters {
  uint32_t active;
  uint64_t total, requests, bytes_read, bytes_written, errors;
};

/* What the worker's ready event says about the export, for the router. */
struct export_info {
  bool valid;
  uint64_t size;
  uint16_t eflags;
  char *description;
  uint32_t min_block, pref_block, max_block;
};

struct worker;
struct context;
struct add_job;

struct export {
  struct context *ctx;
  struct export_def def;
  char *path;                   /* D-Bus object path */
  char *broken_file;            /* definition could not be parsed */
  enum export_state state;
  char *last_error;
  listener_vector listeners;
  bool shared;                  /* reached through the daemon's listener */
  struct worker *worker;        /* NULL when no worker runs */
  struct worker *retired;       /* replaced workers serving their last
                                 * clients (worker-retire.c) */
  struct export_counters counters;      /* what the properties show: */
  struct export_counters retired_base;  /* exited retired workers' */
  struct export_counters last_main;     /* the last worker's, once gone */
  struct export_info info;
  unsigned quick_failures;      /* consecutive short-lived workers */
  uint64_t last_start_usec;
  sd_event_source *restart_timer;
  sd_event_source *idle_timer;
  sd_bus_track *track;          /* transient: the creating client */
  uint64_t counters_emitted_usec;
  sd_event_source *counters_timer;
  bool boot_pending;            /* READY=1 waits for this boot export */
  bool restart_pending;         /* start again when the worker has gone */
  bool updating;                /* an Update is validating */
  struct add_job *adding;       /* AddExport waits for this first worker;
                                 * not in the registry until it is ready */
  bool removing;                /* removed once its worker has stopped */
  sd_bus_message *remove_call;  /* RemoveExport, replied to then */
};
DEFINE_VECTOR_TYPE (export_vector, struct export *)

struct config {
  bool user_bus;
  char *state_dir;
  char *runtime_dir;
  string_vector listen;          /* --listen addresses for the shared listener */
  uint64_t idle_timeout_usec;    /* 0: never exit when idle */
  unsigned handshake_timeout;    /* seconds a shared-listener client has to
                                  * pick an export; 0: no limit */
  int verbose;
  char *nbdkit;                  /* the nbdkit binary for workers */
  char *tls_certificates;        /* the shared listener's X.509 directory */
  char *tls_psk;                 /* the shared listener's PSK file */
  bool fd_store;                 /* --fd-store: restart keeps the workers */
};

/* One name, version and description of an installed plugin or filter. */
struct module_info {
  char *name;
  char *version;
  char *description;
};
DEFINE_VECTOR_TYPE (module_vector, struct module_info)

struct router_conn;
DEFINE_VECTOR_TYPE (router_conn_vector, struct router_conn *)

struct polkit_query;
struct catalogue_probe;
struct router_tls;

struct context {
  struct config config;
  sd_event *event;
  sd_bus *bus;
  sd_bus_slot *manager_slot;
  export_vector exports;
  export_vector adding;         /* AddExport: first worker starting */
  string_vector pending_names;  /* AddExport calls still validating */
  struct polkit_query *polkit_queries;
  listener_vector shared;        /* the daemon's own listeners */
  router_conn_vector router_conns;
  struct router_tls *tls;       /* the shared listener's credentials */
  module_vector plugins, filters;
  bool catalogue_valid;
  struct catalogue_probe *catalogue_probe;  /* ListPlugins/Filters running */
  sd_event_source *idle_timer;
  sd_event_source *stop_timer;
  bool bus_ready;               /* the name is owned */
  bool ready_sent;              /* READY=1 was sent */
  bool restoring;               /* the stored exports are being restored */
  bool exiting;
  bool handing_off;             /* --fd-store exit: workers keep running */
  unsigned pending_calls;
};

/* main.c */
extern void context_done (struct context *ctx);
extern void context_check_idle (struct context *ctx);
extern void context_reload (struct context *ctx);
extern void context_reload_tls (struct context *ctx);

/* shared-tls.c */
extern int shared_tls_load_saved (struct context *ctx);
extern int method_set_tls (sd_bus_message *m, void *userdata,
                           sd_bus_error *error);
extern int property_get_shared_tls (sd_bus *bus, const char *path,
                                    const char *interface,
                                    const char *property,
                                    sd_bus_message *reply, void *userdata,
                                    sd_bus_error *error);
extern void context_update_status (struct context *ctx);
extern void context_check_stopped (struct context *ctx);
extern void log_msg (struct context *ctx, int level, const char *fs, ...)
  __attribute__ ((format (printf, 3, 4)));
#define log_error(ctx, ...) log_msg ((ctx), 3, __VA_ARGS__)
#define log_warning(ctx, ...) log_msg ((ctx), 4, __VA_ARGS__)
#define log_info(ctx, ...) log_msg ((ctx), 6, __VA_ARGS__)
#define log_debug(ctx, ...) log_msg ((ctx), 7, __VA_ARGS__)

/* registry.c */
extern const char *export_state_to_string (enum export_state s);
extern const char *start_policy_to_string (enum start_policy p);
extern int start_policy_from_string (const char *s);
extern const char *tls_mode_to_string (enum tls_mode m);
extern int tls_mode_from_string (const char *s);
extern void export_def_init (struct export_def *def);
extern void export_def_done (struct export_def *def);
extern int export_def_copy (struct export_def *dst, const struct export_def *src);
extern int export_name_validate (const char *name, sd_bus_error *error);
extern struct export *export_registry_find (struct context *ctx, const char *name);
extern struct export *export_registry_find_path (struct context *ctx, const char *path);
extern int export_new (struct context *ctx, struct export_def *def,
                       struct export **ret);
extern int export_registry_insert (struct context *ctx, struct export *e);
extern int export_registry_add (struct context *ctx, struct export_def *def,
                                struct export **ret);
extern void export_registry_remove (struct context *ctx, struct export *e);
extern void export_free (struct export *e);
extern void export_def_swap (struct export_def *a, struct export_def *b);
/* What differs between two definitions: the worker's command line (a dry
 * run and a restart), its listeners (a restart), or only what the daemon
 * itself uses (description, start policy, idle timeout).
 */
#define DEF_CHANGE_COMMAND   1u
#define DEF_CHANGE_LISTENERS 2u
#define DEF_CHANGE_OTHER     4u
extern unsigned export_def_compare (const struct export_def *a,
                                    const struct export_def *b);
extern void export_set_state (struct export *e, enum export_state s);
extern void export_set_last_error (struct export *e, const char *msg);
extern bool export_is_shared (const struct export_def *def);
extern bool export_name_pending (struct context *ctx, const char *name);

/* options.c */
extern int export_options_parse (sd_bus_message *m, struct export_def *def,
                                 bool for_update, bool *no_interaction,
                                 int_vector *secret_fds, string_vector *secret_keys,
                                 sd_bus_error *error);
extern int export_params_read (sd_bus_message *m, param_vector *params);
extern int export_def_check (const struct export_def *def, sd_bus_error *error);
extern void export_options_set_shared_tls (bool x509, bool psk);
extern int secrets_read (struct export_def *def, const int_vector *fds,
                         const string_vector *keys, sd_bus_error *error);

/* store.c */
extern int store_save (struct context *ctx, const struct export_def *def);
/* Replace DIR/FILE with TEXT (mode 0600) so that a crash leaves the old
 * or the new contents.
 */
extern int write_atomically (const char *dir, const char *file,
                             const char *text);
extern int store_delete (struct context *ctx, const char *name);
extern int store_load_all (struct context *ctx);
extern char *store_file_label (const char *name);

/* polkit.c */
extern int polkit_authorize (struct context *ctx, sd_bus_message *m,
                             const char *action, bool interactive,
                             sd_bus_message_handler_t handler,
                             sd_bus_error *error);
extern void polkit_queries_free (struct context *ctx);

/* spawn.c */
struct spawn_fd { int fd; const char *name; };
typedef void (*spawn_line_fn) (void *opaque, const char *line);
typedef void (*spawn_exit_fn) (void *opaque, const siginfo_t *si);
struct spawn;
extern int spawn_process (struct context *ctx, char **argv,
                          const struct spawn_fd *fds, size_t nfds,
                          spawn_line_fn on_line, spawn_exit_fn on_exit,
                          void *opaque, struct spawn **ret);
extern pid_t spawn_pid (const struct spawn *s);
extern int spawn_adopt (struct context *ctx, pid_t pid, int err_fd,
                        spawn_line_fn on_line, spawn_exit_fn on_exit,
                        void *opaque, struct spawn **ret);
extern int spawn_err_fd (const struct spawn *s);
extern void spawn_detach (struct spawn *s);
extern void spawn_free (struct spawn *s);
extern int spawn_capture (struct context *ctx, char **argv, char **out,
                          int *status);

/* command.c */
extern int nbdkit_argv_build (struct context *ctx, const struct export_def *def,
                              const char *const *mode_args, int first_extra_fd,
                              int_vector *secret_pipes, string_vector *argv);
extern void nbdkit_argv_free (int_vector *secret_pipes, string_vector *argv);
extern bool export_worker_has_tls (const struct export_def *def);

/* validate.c */
typedef void (*validate_done_fn) (void *opaque, int r, const char *err_name,
                                  const char *message);
extern int validate_export (struct context *ctx, const struct export_def *def,
                            validate_done_fn done, void *opaque);
extern const char *validate_error_name (const char *message);
extern char *validate_error_text (const char *output);

/* catalogue.c */
extern int catalogue_reply (struct context *ctx, sd_bus_message *m,
                            bool filters);
extern void catalogue_free (struct context *ctx);
extern void catalogue_done (struct context *ctx);

/* manager-object.c */
extern void add_export_worker_ready (struct export *e);
extern void add_export_worker_failed (struct export *e, const char *message);
extern void add_exports_abandon (struct context *ctx);
extern int manager_object_register (struct context *ctx);
extern int manager_emit_export_count (struct context *ctx);

/* export-object.c */
extern int export_object_register (struct context *ctx);
extern void export_emit_changed (struct export *e, const char *prop, ...)
  __attribute__ ((sentinel));
extern void export_counters_changed (struct export *e);
extern void export_emit_all_changed (struct export *e);
extern int export_remove (struct export *e);
extern int export_remove_graceful (struct export *e, sd_bus_message *m);
extern void export_remove_finish (struct export *e);

/* export-update.c */
extern int method_update (sd_bus_message *m, void *userdata, sd_bus_error *error);

/* worker.c */
extern int worker_start (struct export *e);
extern int worker_stop (struct export *e, bool graceful);
extern void worker_free (struct worker *w);
extern bool worker_running (const struct export *e);
extern int worker_send_command (struct export *e, const char *type,
                                sd_bus_message *reply_to, int fd,
                                const char *extra_json);
extern int export_start_by_policy (struct export *e);
extern void export_idle_check (struct export *e);
extern int worker_restart (struct export *e);
extern int worker_replace (struct export *e);
extern bool export_has_workers (const struct export *e);
extern void export_recount (struct export *e);

/* listeners.c */
extern int shared_listeners_open (struct context *ctx);
extern int listener_open (const char *address, int *fd, sd_bus_error *error);
extern int listeners_open (const string_vector *addresses, listener_vector *out,
                           sd_bus_error *error);
extern void listeners_close (listener_vector *v);
extern int export_listeners_open (struct export *e, sd_bus_error *error);
extern void export_listeners_close (struct export *e);
extern int export_listeners_watch (struct export *e, bool on);
extern int listener_address_validate (const char *address, sd_bus_error *error);

/* router.c */
extern int router_listen (struct context *ctx, size_t idx);
extern void router_free_all (struct context *ctx);
extern void router_export_ready (struct export *e);
extern void router_export_gone (struct export *e);
extern unsigned router_active (const struct context *ctx);
extern bool router_has_pending (const struct export *e);

/* router-tls.c */
extern int router_tls_init (struct context *ctx);
extern void router_tls_free (struct context *ctx);
extern int router_tls_reload (struct context *ctx);
extern int router_tls_configure (struct context *ctx);

#endif /* NBDKITD_H */
