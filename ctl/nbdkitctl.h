/* SPDX-License-Identifier: BSD-3-Clause
 * nbdkitctl's private header: the command-line configuration, the exit
 * codes, and the functions each ctl/ file provides to the others.
 */

#ifndef NBDKITCTL_H
#define NBDKITCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>
#include <systemd/sd-bus.h>

#include "vector.h"

#define BUS_NAME      "org.nbdkit.Daemon1"
#define MANAGER_PATH  "/org/nbdkit/Daemon1"
#define EXPORT_PREFIX "/org/nbdkit/Daemon1/export"
#define MANAGER_IFACE "org.nbdkit.Daemon1.Manager"
#define EXPORT_IFACE  "org.nbdkit.Daemon1.Export"

/* Exit codes, one per error class (documented in nbdkitctl(1)). */
enum ctl_exit {
  EXIT_OK = 0,
  EXIT_GENERIC = 1,             /* anything not classified below */
  EXIT_INVALID = 2,             /* bad command line, InvalidParameter */
  EXIT_NOT_FOUND = 3,           /* NoSuchExport, NoSuchPlugin, NoSuchFilter */
  EXIT_EXISTS = 4,              /* ExportExists, AddressInUse */
  EXIT_DENIED = 5,              /* AccessDenied, InteractiveAuthorization... */
  EXIT_UNREACHABLE = 6,         /* no bus, daemon not running, no reply */
  EXIT_WORKER_FAILED = 7,       /* PluginFailed */
  EXIT_BUSY = 8,                /* Busy: clients are connected */
};

enum json_mode { JSON_OFF, JSON_SHORT, JSON_PRETTY };

/* One key=value parameter of the plugin/filter stack, in order. */
struct param {
  char *key;
  char *value;
};
DEFINE_VECTOR_TYPE (param_vector, struct param)

/* A --secret=KEY=FILE: the key and an open descriptor of the value. */
struct secret {
  char *key;
  int fd;
};
DEFINE_VECTOR_TYPE (secret_vector, struct secret)

/* The options of add-export and update-export.  For update-export only
 * what was given is sent, so every scalar has a "set" flag.
 */
struct export_options {
  string_vector filters;
  bool filters_set;
  bool readonly, readonly_set;
  string_vector listeners;
  bool listeners_set;
  const char *tls;
  const char *tls_certificates;
  const char *tls_psk;
  bool tls_verify_peer, tls_verify_peer_set;
  string_vector tls_allow;      /* PSK users / X.509 DNs (shared listener) */
  bool tls_allow_set;
  const char *description;
  const char *start;
  uint32_t idle_timeout;
  bool idle_timeout_set;
  uint32_t threads;
  bool threads_set;
  const char *user;
  const char *group;
  secret_vector secrets;
  bool transient;
};

/* Everything the command line says, filled by parse_argv, then frozen. */
struct ctl_config {
  bool user_bus;                /* --user: the session bus */
  enum json_mode json;
  bool quiet;
  bool ask_password;            /* cleared by --no-ask-password */
  bool force;                   /* remove-export, disconnect */
  const char *verb;
  char **args;                  /* the verb's arguments */
  int nr_args;
  struct export_options export;
  bool export_options_given;    /* any of the above was on the command line */
  param_vector params;          /* add-export: PLUGIN's key=value list */
  uint64_t connection_id;       /* disconnect */
};

extern struct ctl_config config;

/* bus.c */
extern int bus_call_method (sd_bus *bus, const char *path,
                            const char *iface, const char *member,
                            sd_bus_message **reply, const char *types, ...);
extern int bus_new_method_call (sd_bus *bus, sd_bus_message **m,
                                const char *path, const char *iface,
                                const char *member);
extern int bus_call (sd_bus *bus, sd_bus_message *m, sd_bus_message **reply);
extern int export_path (sd_bus *bus, const char *name, char **path);

/* nbdkitctl.c */
extern int error_log (int r, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
extern const char *export_label (const char *name);

/* errors.c */
extern void bus_error_set_context (const char *export_name);
extern int bus_error_report (int r, const sd_bus_error *error);
extern enum ctl_exit errno_to_exit (int r);

/* args.c */
extern int parse_plugin_params (const char *plugin, char **args, int nr,
                                param_vector *params);
extern int parse_listen (const char *arg, string_vector *listeners);
extern int parse_secret (const char *arg, secret_vector *secrets);
extern int parse_u32 (const char *what, const char *arg, uint32_t *ret);
extern int check_choice (const char *what, const char *arg,
                         const char *const *choices);
extern void export_options_free (struct export_options *o);
extern void param_vector_free_all (param_vector *v);

/* options-message.c */
extern int append_params (sd_bus_message *m, const param_vector *params);
extern int append_strings (sd_bus_message *m, const string_vector *v);
extern int append_export_options (sd_bus_message *m,
                                  const struct export_options *o,
                                  const param_vector *update_params);

/* output.c */
struct table;
extern struct table *table_new (const char *first_header, ...);
extern int table_add_row (struct table *t, const char *first_cell, ...);
extern void table_print (struct table *t, FILE *fp);
extern void table_free (struct table *t);
extern int json_from_message (sd_bus_message *m, struct json_object **ret);
extern void json_print (struct json_object *obj);
extern char *format_timestamp_usec (uint64_t usec);
extern int print_properties (struct json_object *props,
                             const char *const *labels);

/* verbs-exports.c */
extern int check_add_export (int argc, char **argv);
extern int verb_add_export (sd_bus *bus, int argc, char **argv);
extern int verb_remove_export (sd_bus *bus, int argc, char **argv);
extern int verb_update_export (sd_bus *bus, int argc, char **argv);
extern int verb_list_exports (sd_bus *bus, int argc, char **argv);
extern int verb_show_export (sd_bus *bus, int argc, char **argv);
extern int verb_start_stop (sd_bus *bus, int argc, char **argv);
extern int verb_uri (sd_bus *bus, int argc, char **argv);
extern int export_get_properties (sd_bus *bus, const char *name,
                                  struct json_object **props);

/* verbs-daemon.c */
extern int verb_status (sd_bus *bus, int argc, char **argv);
extern int verb_list_plugins (sd_bus *bus, int argc, char **argv);
extern int verb_list_connections (sd_bus *bus, int argc, char **argv);
extern int check_disconnect (int argc, char **argv);
extern int verb_disconnect (sd_bus *bus, int argc, char **argv);

/* monitor.c */
extern int verb_monitor (sd_bus *bus, int argc, char **argv);
extern int wait_until_interrupted (sd_bus *bus, const char *name);

/* polkit-agent.c */
extern void polkit_agent_open_if_enabled (void);
extern void polkit_agent_close (void);

#endif /* NBDKITCTL_H */
