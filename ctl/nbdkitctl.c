/* SPDX-License-Identifier: BSD-3-Clause
 * The nbdkitctl program: parse the command line into struct ctl_config,
 * connect to the bus, and run one verb from the verb table.
 */

#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbdkitctl.h"
#include "errors.h"
#include "utils.h"

struct ctl_config config = {
  .ask_password = true,
};

typedef int (*verb_fn) (sd_bus *bus, int argc, char **argv);
typedef int (*verb_check_fn) (int argc, char **argv);

/* What a verb accepts besides its positional arguments. */
enum verb_flags {
  VERB_EXPORT_OPTIONS = 1 << 0, /* --filter, -r, --listen, --tls... */
  VERB_FORCE = 1 << 1,          /* --force */
  VERB_NO_BUS = 1 << 2,         /* runs without connecting */
};

struct verb {
  const char *name;
  int min_args, max_args;       /* positional arguments after the verb */
  verb_fn fn;
  verb_check_fn check;          /* optional: arguments, before connecting */
  unsigned flags;
  const char *usage;            /* arguments, for --help */
  const char *summary;
};

#define ANY INT_MAX

static const struct verb verbs[] = {
  { "add-export", 2, ANY, verb_add_export, check_add_export,
    VERB_EXPORT_OPTIONS,
    "NAME [OPTIONS] PLUGIN [key=value]...",
    "Define a new export (and start it, unless --start=manual)" },
  { "remove-export", 1, 1, verb_remove_export, NULL, VERB_FORCE,
    "NAME [--force]",
    "Remove an export; --force disconnects its clients" },
  { "update-export", 1, ANY, verb_update_export, NULL,
    VERB_EXPORT_OPTIONS,
    "NAME [OPTIONS] [key=value]...",
    "Change an export's settings, filters or parameters" },
  { "list-exports", 0, 0, verb_list_exports, NULL, 0, "",
    "List the exports and their states" },
  { "list", 0, 0, verb_list_exports, NULL, 0, "", "Alias of list-exports" },
  { "show-export", 1, 1, verb_show_export, NULL, 0, "NAME",
    "Show every property of one export" },
  { "status", 0, 1, verb_status, NULL, 0, "[NAME]",
    "The daemon's status, or with NAME the same as show-export" },
  { "start", 1, 1, verb_start_stop, NULL, 0, "NAME",
    "Start an export's worker" },
  { "stop", 1, 1, verb_start_stop, NULL, 0, "NAME",
    "Stop an export's worker" },
  { "restart", 1, 1, verb_start_stop, NULL, 0, "NAME",
    "Restart an export's worker" },
  { "list-connections", 0, 1, verb_list_connections, NULL, 0, "[NAME]",
    "List the clients connected to every export, or to NAME" },
  { "disconnect", 2, 2, verb_disconnect, check_disconnect, VERB_FORCE,
    "NAME ID [--force]",
    "Disconnect one client (ID from list-connections)" },
  { "list-plugins", 0, 0, verb_list_plugins, NULL, 0, "",
    "List the installed plugins" },
  { "list-filters", 0, 0, verb_list_plugins, NULL, 0, "",
    "List the installed filters" },
  { "monitor", 0, 0, verb_monitor, NULL, 0, "",
    "Print exports added and removed, state changes and connections" },
  { "uri", 1, 1, verb_uri, NULL, 0, "NAME",
    "Print the URIs a client uses to reach an export" },
};

enum {
  OPT_VERSION = CHAR_MAX + 1,
  OPT_SYSTEM,
  OPT_USER,
  OPT_GROUP,
  OPT_JSON,
  OPT_NO_ASK_PASSWORD,
  OPT_FILTER,
  OPT_LISTEN,
  OPT_TLS,
  OPT_TLS_CERTIFICATES,
  OPT_TLS_PSK,
  OPT_TLS_VERIFY_PEER,
  OPT_TLS_ALLOW,
  OPT_DESCRIPTION,
  OPT_START,
  OPT_IDLE_TIMEOUT,
  OPT_THREADS,
  OPT_SECRET,
  OPT_TRANSIENT,
  OPT_FORCE,
};

static const struct option long_options[] = {
  { "help", no_argument, NULL, 'h' },
  { "version", no_argument, NULL, OPT_VERSION },
  { "system", no_argument, NULL, OPT_SYSTEM },
  /* --user alone picks the session bus; --user=U is the export's user. */
  { "user", optional_argument, NULL, OPT_USER },
  { "group", required_argument, NULL, OPT_GROUP },
  { "json", optional_argument, NULL, OPT_JSON },
  { "quiet", no_argument, NULL, 'q' },
  { "no-ask-password", no_argument, NULL, OPT_NO_ASK_PASSWORD },
  { "filter", required_argument, NULL, OPT_FILTER },
  { "readonly", no_argument, NULL, 'r' },
  { "read-only", no_argument, NULL, 'r' },
  { "listen", required_argument, NULL, OPT_LISTEN },
  { "tls", required_argument, NULL, OPT_TLS },
  { "tls-certificates", required_argument, NULL, OPT_TLS_CERTIFICATES },
  { "tls-psk", required_argument, NULL, OPT_TLS_PSK },
  { "tls-verify-peer", no_argument, NULL, OPT_TLS_VERIFY_PEER },
  { "tls-allow", required_argument, NULL, OPT_TLS_ALLOW },
  { "description", required_argument, NULL, OPT_DESCRIPTION },
  { "start", required_argument, NULL, OPT_START },
  { "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
  { "threads", required_argument, NULL, OPT_THREADS },
  { "secret", required_argument, NULL, OPT_SECRET },
  { "transient", no_argument, NULL, OPT_TRANSIENT },
  { "force", no_argument, NULL, OPT_FORCE },
  { NULL },
};

static const char short_options[] = "hqrt:u:g:";

static const char *const tls_modes[] = { "off", "on", "require", NULL };
static const char *const start_policies[] = {
  "boot", "on-demand", "manual", NULL
};

int
error_log (int r, const char *fmt, ...)
{
  va_list ap;

  fputs ("nbdkitctl: ", stderr);
  va_start (ap, fmt);
  errno = r < 0 ? -r : r;
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  return r < 0 ? r : -r;
}

/* An export name for messages: quoted, since the default export's name
 * is the empty string.  Returns a static buffer, enough for one use.
 */
const char *
export_label (const char *name)
{
  static char buf[128];

  if (strlen (name) > sizeof buf - 3)
    snprintf (buf, sizeof buf, "\"%.*s...\"", (int) sizeof buf - 6, name);
  else
    snprintf (buf, sizeof buf, "\"%s\"", name);
  return buf;
}

static void
usage_general (void)
{
  size_t i;

  printf ("Usage: nbdkitctl [OPTIONS] VERB [ARGS]...\n"
          "Control nbdkitd, the NBD export service, over D-Bus.\n\n"
          "Verbs:\n");
  for (i = 0; i < ARRAY_SIZE (verbs); ++i)
    printf ("  %-18s %s\n", verbs[i].name, verbs[i].summary);
  printf ("\nOptions:\n"
          "  -h --help              Show this help, or a verb's with VERB\n"
          "     --version           Show the version\n"
          "     --system            Talk to nbdkitd on the system bus "
          "(default)\n"
          "     --user              Talk to nbdkitd on the session bus\n"
          "     --json[=pretty|short]  Print JSON\n"
          "  -q --quiet             No headers or informational messages\n"
          "     --no-ask-password   Never ask for authorization "
          "interactively\n"
          "\nSee nbdkitctl(1) and 'nbdkitctl VERB --help'.\n");
}

static void
usage_export_options (void)
{
  printf ("\nExport options:\n"
          "  --filter=FILTER         Add a filter (outermost first); "
          "--filter= clears\n"
          "  -r --readonly           Read-only export\n"
          "  --listen=tcp:HOST:PORT|unix:PATH|vsock:PORT|shared\n"
          "                          A listener (repeatable; default "
          "shared)\n"
          "  --tls=off|on|require    TLS mode\n"
          "  --tls-certificates=DIR  X.509 certificates directory\n"
          "  --tls-psk=FILE          PSK file\n"
          "  --tls-verify-peer       Require a client certificate\n"
          "  --tls-allow=ID          Shared listener: a PSK user or X.509 DN\n"
          "                          allowed (repeatable; --tls-allow= clears)\n"
          "  --description=TEXT      Description shown to clients\n"
          "  --start=boot|on-demand|manual  When the worker starts\n"
          "  --idle-timeout=SECS     on-demand: stop after SECS idle\n"
          "  --threads=N             Worker threads\n"
          "  -u --user=USER          Run the worker as USER\n"
          "  -g --group=GROUP        Run the worker as GROUP\n"
          "  --secret=KEY=FILE|-     Pass KEY's value from FILE or stdin\n"
          "  --transient             Not stored; removed when nbdkitctl "
          "exits\n");
}

static void
usage_verb (const struct verb *v)
{
  printf ("Usage: nbdkitctl [OPTIONS] %s %s\n%s.\n",
          v->name, v->usage, v->summary);
  if (v->flags & VERB_EXPORT_OPTIONS)
    usage_export_options ();
  if (v->flags & VERB_FORCE)
    printf ("\n  --force                 %s\n",
            strcmp (v->name, "disconnect") == 0
            ? "Close the connection without waiting for requests"
            : "Disconnect connected clients instead of failing");
  printf ("\nSee nbdkitctl(1).\n");
}

static const struct verb *
find_verb (const char *name)
{
  size_t i;

  for (i = 0; i < ARRAY_SIZE (verbs); ++i)
    if (strcmp (verbs[i].name, name) == 0)
      return &verbs[i];
  return NULL;
}

/* The options that only make sense with add-export / update-export. */
static int
parse_export_option (int c, const char *arg)
{
  struct export_options *o = &config.export;
  char *s;

  config.export_options_given = true;
  switch (c) {
  case OPT_FILTER:
    o->filters_set = true;
    if (*arg == '\0')           /* --filter= clears the list */
      return 0;
    if ((s = strdup (arg)) == NULL || string_vector_append (&o->filters, s))
      return error_log (-ENOMEM, "%m");
    return 0;
  case 'r': o->readonly = o->readonly_set = true; return 0;
  case OPT_LISTEN:
    o->listeners_set = true;
    return parse_listen (arg, &o->listeners);
  case OPT_TLS:
    o->tls = arg;
    return check_choice ("--tls", arg, tls_modes);
  case OPT_TLS_CERTIFICATES: o->tls_certificates = arg; return 0;
  case OPT_TLS_PSK: o->tls_psk = arg; return 0;
  case OPT_TLS_VERIFY_PEER:
    o->tls_verify_peer = o->tls_verify_peer_set = true;
    return 0;
  case OPT_TLS_ALLOW:
    o->tls_allow_set = true;
    if (*arg == '\0')           /* --tls-allow= clears the list */
      return 0;
    if ((s = strdup (arg)) == NULL || string_vector_append (&o->tls_allow, s))
      return error_log (-ENOMEM, "%m");
    return 0;
  case OPT_DESCRIPTION: o->description = arg; return 0;
  case OPT_START:
    o->start = arg;
    return check_choice ("--start", arg, start_policies);
  case OPT_IDLE_TIMEOUT:
    o->idle_timeout_set = true;
    return parse_u32 ("--idle-timeout", arg, &o->idle_timeout);
  case 't':
  case OPT_THREADS:
    o->threads_set = true;
    return parse_u32 ("--threads", arg, &o->threads);
  case 'u': case OPT_USER: o->user = arg; return 0;
  case 'g': case OPT_GROUP: o->group = arg; return 0;
  case OPT_SECRET: return parse_secret (arg, &o->secrets);
  case OPT_TRANSIENT: o->transient = true; return 0;
  default: abort ();
  }
}

static int
parse_json_mode (const char *arg)
{
  if (arg == NULL)
    config.json = isatty (STDOUT_FILENO) ? JSON_PRETTY : JSON_SHORT;
  else if (strcmp (arg, "pretty") == 0)
    config.json = JSON_PRETTY;
  else if (strcmp (arg, "short") == 0)
    config.json = JSON_SHORT;
  else
    return error_log (-EINVAL, "--json: expected pretty or short, not "
                      "\"%s\"", arg);
  return 0;
}

/* Returns 1 to run a verb, 0 to exit successfully, or -errno. */
static int
parse_argv (int argc, char *argv[], bool *help)
{
  int c, r;

  while ((c = getopt_long (argc, argv, short_options, long_options,
                           NULL)) != -1) {
    switch (c) {
    case 'h': *help = true; break;
    case OPT_VERSION:
      printf ("nbdkitctl %s\n", PACKAGE_VERSION);
      return 0;
    case OPT_SYSTEM: config.user_bus = false; break;
    case OPT_USER:
      if (optarg == NULL) {
        config.user_bus = true;
        break;
      }
      if ((r = parse_export_option (c, optarg)) < 0)
        return r;
      break;
    case OPT_JSON:
      if ((r = parse_json_mode (optarg)) < 0)
        return r;
      break;
    case 'q': config.quiet = true; break;
    case OPT_NO_ASK_PASSWORD: config.ask_password = false; break;
    case OPT_FORCE: config.force = true; break;
    case '?':
      return -EINVAL;           /* getopt printed why */
    default:
      if ((r = parse_export_option (c, optarg)) < 0)
        return r;
      break;
    }
  }

  if (optind < argc) {
    config.verb = argv[optind];
    config.args = &argv[optind + 1];
    config.nr_args = argc - optind - 1;
  }
  return 1;
}

/* Check the verb's arguments and options against its table entry. */
static int
check_verb (const struct verb *v)
{
  if (config.nr_args < v->min_args)
    return error_log (-EINVAL, "%s: too few arguments (usage: nbdkitctl %s "
                      "%s)", v->name, v->name, v->usage);
  if (config.nr_args > v->max_args)
    return error_log (-EINVAL, "%s: too many arguments (usage: nbdkitctl %s "
                      "%s)", v->name, v->name, v->usage);
  if (config.export_options_given && !(v->flags & VERB_EXPORT_OPTIONS))
    return error_log (-EINVAL, "%s: export options (--filter, --listen, "
                      "--tls, ...) are only for add-export and "
                      "update-export", v->name);
  if (config.force && !(v->flags & VERB_FORCE))
    return error_log (-EINVAL, "%s: --force is only for remove-export and "
                      "disconnect", v->name);
  if (config.export.transient && strcmp (v->name, "add-export") != 0)
    return error_log (-EINVAL, "%s: --transient is only for add-export",
                      v->name);
  if (v->check)
    return v->check (config.nr_args + 1, config.args - 1);
  return 0;
}

static int
connect_bus (sd_bus **bus)
{
  int r;

  r = config.user_bus ? sd_bus_open_user (bus) : sd_bus_open_system (bus);
  if (r < 0) {
    bus_error_set_context (NULL);
    error_log (r, "cannot connect to the %s bus: %m (is nbdkitd's bus "
               "running?)", config.user_bus ? "session" : "system");
    return -ENOTCONN;
  }
  /* Interactive authorization only makes sense with someone to ask. */
  sd_bus_set_allow_interactive_authorization (*bus,
                                              config.ask_password
                                              && isatty (STDIN_FILENO));
  return 0;
}

static int
run_verb (const struct verb *v)
{
  sd_bus *bus = NULL;
  int r;

  if (!(v->flags & VERB_NO_BUS) && (r = connect_bus (&bus)) < 0)
    return r;
  r = v->fn (bus, config.nr_args + 1, config.args - 1);
  polkit_agent_close ();
  sd_bus_flush_close_unref (bus);
  return r;
}

int
main (int argc, char *argv[])
{
  const struct verb *v = NULL;
  bool help = false;
  int r;

  nbdkitd_errors_register ();

  r = parse_argv (argc, argv, &help);
  if (r <= 0)
    goto out;

  if (config.verb && (v = find_verb (config.verb)) == NULL) {
    r = error_log (-EINVAL, "unknown verb \"%s\" (see nbdkitctl --help)",
                   config.verb);
    goto out;
  }
  if (help) {
    if (v)
      usage_verb (v);
    else
      usage_general ();
    r = 0;
    goto out;
  }
  if (v == NULL) {
    r = error_log (-EINVAL, "a verb is required (see nbdkitctl --help)");
    goto out;
  }
  if ((r = check_verb (v)) < 0)
    goto out;

  r = run_verb (v);

 out:
  export_options_free (&config.export);
  param_vector_free_all (&config.params);
  if (r >= 0)
    return EXIT_OK;
  return errno_to_exit (r);
}
