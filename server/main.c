/* SPDX-License-Identifier: BSD-3-Clause
 * The nbdkit program: parse the command line into struct config, then
 * sequence the rest: load and configure the plugin and filters
 * (modules.c), bind listeners and serve.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/mman.h>

#include "internal.h"
#include "cleanup.h"
#include "utils.h"

struct config config = {
  .address_family = AF_UNSPEC,
  .mask_handshake = ~0U,
  .control_fd = -1,
  .handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT,
  .max_connections = DEFAULT_MAX_CONNECTIONS,
  .poll_max = DEFAULT_POLL_MAX,
};
struct backend *top;

/* Filters named on the command line, outermost first. */
static string_vector filter_names = empty_vector;

enum {
  HELP_OPTION = CHAR_MAX + 1,
  DUMP_CONFIG_OPTION,
  DUMP_PLUGIN_OPTION,
  EXIT_WITH_PARENT_OPTION,
  FILTER_OPTION,
  HANDSHAKE_TIMEOUT_OPTION,
  LOG_OPTION,
  LONG_OPTIONS_OPTION,
  MASK_HANDSHAKE_OPTION,
  MAX_CONNECTIONS_OPTION,
  NO_SR_OPTION,
  POLL_MAX_OPTION,
  RUN_OPTION,
  SELINUX_LABEL_OPTION,
  SHORT_OPTIONS_OPTION,
  SWAP_OPTION,
  TLS_OPTION,
  TLS_CERTIFICATES_OPTION,
  TLS_PSK_OPTION,
  TLS_VERIFY_PEER_OPTION,
  TLS_PRIORITY_OPTION,
  VSOCK_OPTION,
};

static const char short_options[] = "46D:e:fg:i:nop:P:rst:U:u:vV";
static const struct option long_options[] = {
  { "debug",            required_argument, NULL, 'D' },
  { "dump-config",      no_argument,       NULL, DUMP_CONFIG_OPTION },
  { "dump-plugin",      no_argument,       NULL, DUMP_PLUGIN_OPTION },
  { "exit-with-parent", no_argument,       NULL, EXIT_WITH_PARENT_OPTION },
  { "export",           required_argument, NULL, 'e' },
  { "export-name",      required_argument, NULL, 'e' },
  { "exportname",       required_argument, NULL, 'e' },
  { "filter",           required_argument, NULL, FILTER_OPTION },
  { "foreground",       no_argument,       NULL, 'f' },
  { "no-fork",          no_argument,       NULL, 'f' },
  { "group",            required_argument, NULL, 'g' },
  { "handshake-timeout", required_argument, NULL, HANDSHAKE_TIMEOUT_OPTION },
  { "help",             no_argument,       NULL, HELP_OPTION },
  { "ip-addr",          required_argument, NULL, 'i' },
  { "ipaddr",           required_argument, NULL, 'i' },
  { "ipv4-only",        no_argument,       NULL, '4' },
  { "ipv6-only",        no_argument,       NULL, '6' },
  { "log",              required_argument, NULL, LOG_OPTION },
  { "long-options",     no_argument,       NULL, LONG_OPTIONS_OPTION },
  { "mask-handshake",   required_argument, NULL, MASK_HANDSHAKE_OPTION },
  { "max-connections",  required_argument, NULL, MAX_CONNECTIONS_OPTION },
  { "new-style",        no_argument,       NULL, 'n' },
  { "newstyle",         no_argument,       NULL, 'n' },
  { "no-sr",            no_argument,       NULL, NO_SR_OPTION },
  { "old-style",        no_argument,       NULL, 'o' },
  { "oldstyle",         no_argument,       NULL, 'o' },
  { "pid-file",         required_argument, NULL, 'P' },
  { "pidfile",          required_argument, NULL, 'P' },
  { "poll-max",         required_argument, NULL, POLL_MAX_OPTION },
  { "port",             required_argument, NULL, 'p' },
  { "read-only",        no_argument,       NULL, 'r' },
  { "readonly",         no_argument,       NULL, 'r' },
  { "run",              required_argument, NULL, RUN_OPTION },
  { "selinux-label",    required_argument, NULL, SELINUX_LABEL_OPTION },
  { "short-options",    no_argument,       NULL, SHORT_OPTIONS_OPTION },
  { "single",           no_argument,       NULL, 's' },
  { "stdin",            no_argument,       NULL, 's' },
  { "swap",             no_argument,       NULL, SWAP_OPTION },
  { "threads",          required_argument, NULL, 't' },
  { "tls",              required_argument, NULL, TLS_OPTION },
  { "tls-certificates", required_argument, NULL, TLS_CERTIFICATES_OPTION },
  { "tls-priority",     required_argument, NULL, TLS_PRIORITY_OPTION },
  { "tls-psk",          required_argument, NULL, TLS_PSK_OPTION },
  { "tls-verify-peer",  no_argument,       NULL, TLS_VERIFY_PEER_OPTION },
  { "unix",             required_argument, NULL, 'U' },
  { "user",             required_argument, NULL, 'u' },
  { "verbose",          no_argument,       NULL, 'v' },
  { "version",          no_argument,       NULL, 'V' },
  { "vsock",            no_argument,       NULL, VSOCK_OPTION },
  { NULL },
};

static void
parse_tls_option (const char *arg)
{
  if (strcmp (arg, "require") == 0 || strcmp (arg, "required") == 0 ||
      strcmp (arg, "force") == 0)
    config.tls = TLS_REQUIRE;
  else {
    int r = nbdkit_parse_bool (arg);
    if (r == -1)
      exit (EXIT_FAILURE);
    config.tls = r ? TLS_ON : TLS_OFF;
  }
}

/* -p PORT for TCP: a number from 1 to 65535 or a TCP service name,
 * kept as its number (which the $uri of --run needs).  (--vsock ports
 * are 32 bit numbers, checked when binding.)
 */
static const char *
parse_port (const char *arg)
{
  static char number[8];
  unsigned port;

  if (arg[0] >= '0' && arg[0] <= '9') {
    if (nbdkit_parse_unsigned ("-p (--port)", arg, &port) == -1)
      exit (EXIT_FAILURE);
    if (port == 0 || port > 65535)
      usage_error ("-p (--port): %s is not a TCP port number (1 to 65535)",
                   arg);
  }
  else {
    struct servent *s = getservbyname (arg, "tcp");
    if (s == NULL)
      usage_error ("-p (--port): \"%s\" is not a port number or a known "
                   "TCP service name", arg);
    port = ntohs (s->s_port);
  }
  snprintf (number, sizeof number, "%u", port);
  return number;
}

/* An option taking a number of at least MIN. */
static void
parse_unsigned_option (const char *what, const char *arg, unsigned *dst,
                       unsigned min)
{
  if (nbdkit_parse_unsigned (what, arg, dst) == -1)
    exit (EXIT_FAILURE);
  if (*dst < min)
    usage_error ("%s must be at least %u", what, min);
}

static void
parse_log_option (const char *arg)
{
  if (strcmp (arg, "stderr") == 0)
    config.log_to = LOG_TO_STDERR;
  else if (strcmp (arg, "syslog") == 0)
    config.log_to = LOG_TO_SYSLOG;
  else if (strcmp (arg, "null") == 0)
    config.log_to = LOG_TO_NULL;
  else
    usage_error ("--log must be \"stderr\", \"syslog\" or \"null\"");
}

/* --long-options, --short-options (for bash completion). */
static void __attribute__ ((noreturn))
list_options (bool long_ones)
{
  if (long_ones)
    for (int i = 0; long_options[i].name != NULL; ++i)
      printf ("--%s\n", long_options[i].name);
  else
    for (int i = 0; short_options[i]; ++i)
      if (short_options[i] != ':')
        printf ("-%c\n", short_options[i]);
  exit (EXIT_SUCCESS);
}

/* Parse the options.  Returns the index of the plugin name in argv. */
static int
parse_options (int argc, char *argv[], bool *help, bool *dump_plugin,
               bool *version)
{
  int c;

  for (;;) {
    c = getopt_long (argc, argv, short_options, long_options, NULL);
    if (c == -1)
      break;

    switch (c) {
    case '4': config.address_family = AF_INET; break;
    case '6': config.address_family = AF_INET6; break;
    case 'D': add_debug_flag (optarg); break;
    case 'e': config.exportname = optarg; break;
    case 'f': config.foreground = true; break;
    case 'g': config.group = optarg; break;
    case 'i': config.ipaddr = optarg; break;
    case 'n': config.oldstyle = false; break;
    case 'o': config.oldstyle = true; break;
    case 'P': config.pidfile = nbdkit_absolute_path (optarg);
      if (config.pidfile == NULL)
        exit (EXIT_FAILURE);
      break;
    case 'p': config.port = optarg; break;
    case 'r': config.readonly = true; break;
    case 's': config.listen_stdin = true; break;
    case 't':
      parse_unsigned_option ("-t (--threads)", optarg, &config.threads, 1);
      break;
    case 'U':
      free (config.unixsocket);
      if (strcmp (optarg, "-") == 0)
        config.unixsocket = strdup ("-");
      else
        config.unixsocket = nbdkit_absolute_path (optarg);
      if (config.unixsocket == NULL)
        exit (EXIT_FAILURE);
      break;
    case 'u': config.user = optarg; break;
    case 'v': config.verbose = true; break;
    case 'V': *version = true; break;
    case DUMP_CONFIG_OPTION: dump_config (); exit (EXIT_SUCCESS);
    case DUMP_PLUGIN_OPTION: *dump_plugin = true; break;
    case EXIT_WITH_PARENT_OPTION: config.exit_with_parent = true; break;
    case FILTER_OPTION:
      if (string_vector_append (&filter_names, optarg) == -1) {
        perror ("realloc");
        exit (EXIT_FAILURE);
      }
      break;
    case HANDSHAKE_TIMEOUT_OPTION:
      parse_unsigned_option ("--handshake-timeout", optarg,
                             &config.handshake_timeout, 0);
      break;
    case HELP_OPTION: *help = true; break;
    case LOG_OPTION: parse_log_option (optarg); break;
    case LONG_OPTIONS_OPTION: list_options (true);
    case SHORT_OPTIONS_OPTION: list_options (false);
    case POLL_MAX_OPTION:
      parse_unsigned_option ("--poll-max", optarg, &config.poll_max, 0);
      if (config.poll_max > MAX_POLL_MAX)
        usage_error ("--poll-max must be at most %u (microseconds), not %u",
                     MAX_POLL_MAX, config.poll_max);
      break;
    case MASK_HANDSHAKE_OPTION:
      parse_unsigned_option ("--mask-handshake", optarg,
                             &config.mask_handshake, 0);
      break;
    case MAX_CONNECTIONS_OPTION:
      parse_unsigned_option ("--max-connections", optarg,
                             &config.max_connections, 1);
      break;
    case NO_SR_OPTION: config.no_sr = true; break;
    case RUN_OPTION: config.run = optarg; break;
    case SELINUX_LABEL_OPTION: config.selinux_label = optarg; break;
    case SWAP_OPTION: config.swap = true; break;
    case TLS_OPTION: parse_tls_option (optarg); break;
    case TLS_CERTIFICATES_OPTION: config.tls_certificates = optarg; break;
    case TLS_PSK_OPTION: config.tls_psk = optarg; break;
    case TLS_VERIFY_PEER_OPTION: config.tls_verify_peer = true; break;
    case TLS_PRIORITY_OPTION: config.tls_priority = optarg; break;
    case VSOCK_OPTION: config.vsock = true; break;
    default:
      /* getopt_long has printed the problem. */
      usage ();
      exit (EXIT_FAILURE);
    }
  }
  return optind;
}

/* Reject combinations of options that cannot work together. */
static void
check_option_conflicts (bool dump_plugin)
{
  int listeners = (config.port != NULL || config.ipaddr != NULL) +
    (config.unixsocket != NULL) + config.listen_stdin + config.vsock;

  if (config.vsock && config.unixsocket)
    usage_error ("--vsock and -U cannot be used together");
  if (config.listen_stdin &&
      (config.unixsocket || config.port || config.ipaddr || config.vsock ||
       config.run))
    usage_error ("-s cannot be used with -i, -p, -U, --vsock or --run");
  if (config.unixsocket && (config.port || config.ipaddr))
    usage_error ("-U cannot be used with -i or -p");
  if (dump_plugin && listeners > 0)
    usage_error ("--dump-plugin cannot be used with -i, -p, -s, -U or "
                 "--vsock");
  if (config.socket_activation &&
      (listeners > 0 || config.run))
    usage_error ("socket activation (LISTEN_FDS) cannot be used with "
                 "-i, -p, --run, -s, -U or --vsock");
  if (config.oldstyle && config.tls != TLS_OFF)
    usage_error ("--tls cannot be used with the oldstyle protocol (-o)");
  if (config.port && !config.vsock)
    config.port = parse_port (config.port);
}

/* -U -: a socket in a new private directory, removed at exit. */
static void
make_private_unix_socket (void)
{
  char tmpl[] = "/tmp/nbdkitXXXXXX";

  if (mkdtemp (tmpl) == NULL) {
    perror ("mkdtemp");
    exit (EXIT_FAILURE);
  }
  free (config.unixsocket);
  config.unixsocket_tmpdir = strdup (tmpl);
  if (config.unixsocket_tmpdir == NULL ||
      asprintf (&config.unixsocket, "%s/socket", tmpl) == -1) {
    perror ("asprintf");
    exit (EXIT_FAILURE);
  }
}

static void
remove_private_unix_socket (void)
{
  if (config.unixsocket_tmpdir) {
    unlink (config.unixsocket);
    rmdir (config.unixsocket_tmpdir);
  }
}

/* Open the listeners, become ready and serve until asked to quit. */
static void
serve (void)
{
  int_vector socks = empty_vector;
  int sockin = -1, sockout = -1;

  if (config.listen_stdin) {
    /* One connection on stdin/stdout; nothing else may use them. */
    int fd = open ("/dev/null", O_RDWR);
    sockin = dup (STDIN_FILENO);
    sockout = dup (STDOUT_FILENO);
    if (sockin == -1 || sockout == -1 || fd == -1) {
      perror ("dup");
      exit (EXIT_FAILURE);
    }
    dup2 (fd, STDIN_FILENO);
    dup2 (fd, STDOUT_FILENO);
    close (fd);
  }
  else if (config.socket_activation)
    socks = activation_listeners ();
  else if (config.unixsocket)
    socks = bind_unix_socket ();
  else if (config.vsock)
    socks = bind_vsock ();
  else
    socks = bind_tcpip_socket ();

  if (config.run)
    run_command (&socks);
  server_ready ();
  if (config.listen_stdin)
    connection_start (sockin, sockout, NULL);
  serve_loop (&socks);            /* closes the listeners */
  int_vector_reset (&socks);
}

/* Why the main loop ended, for the stopping event. */
static const char *
quit_reason (pid_t parent)
{
  if (config.exit_with_parent && getppid () != parent)
    return "parent";
  return "signal";
}

/* After the main loop: wait (bounded) for the connections, unload the
 * plugin and filters, remove what nbdkit made, and exit.
 */
static void __attribute__ ((noreturn))
shut_down (pid_t parent)
{
  debug ("shutting down");
  control_stopping (quit_reason (parent));
  if (!connection_threads_wait (5)) {
    /* A plugin call is stuck: unloading under it would crash. */
    remove_private_unix_socket ();
    exit (EXIT_SUCCESS);
  }
  top->cleanup (top);
  for (struct backend *b = top, *next; b != NULL; b = next) {
    next = b->next;
    b->free (b);
  }
  top = NULL;
  tls_free ();
  remove_private_unix_socket ();
  close_quit_pipe ();
  free (config.unixsocket);
  free (config.unixsocket_tmpdir);
  control_close ();
  string_vector_reset (&filter_names);
  exit (EXIT_SUCCESS);
}

/* --exit-with-parent and --swap, before anything is loaded. */
static void
set_up_process (pid_t parent)
{
  if (config.exit_with_parent) {
    if (prctl (PR_SET_PDEATHSIG, SIGTERM) == -1) {
      perror ("prctl: PR_SET_PDEATHSIG");
      exit (EXIT_FAILURE);
    }
    /* The parent may have died before the prctl took effect. */
    if (getppid () != parent) {
      fprintf (stderr, "%s: --exit-with-parent: the parent process has "
               "already exited\n", config.program_name);
      exit (EXIT_FAILURE);
    }
  }

  if (config.swap && mlockall (MCL_CURRENT | MCL_FUTURE) == -1) {
    perror ("mlockall");
    exit (EXIT_FAILURE);
  }
}

/* --version with a plugin: nbdkit's version, then each layer's. */
static void __attribute__ ((noreturn))
display_versions (void)
{
  struct backend *b;

  display_version ();
  for_each_backend (b) {
    const char *v = b->version (b);
    printf ("%s %s\n", b->name, v ? v : "(no version)");
  }
  exit (EXIT_SUCCESS);
}

int
main (int argc, char *argv[])
{
  bool help = false, dump_plugin = false, version = false;
  int first;
  const char *plugin_name;
  pid_t parent = getppid ();

  config.program_name = "nbdkit";
  /* Keep plugin output on stdout and our messages in order. */
  setvbuf (stdout, NULL, _IOLBF, 0);

  /* First, so that worker mode reports every later error. */
  activation_check ();
  first = parse_options (argc, argv, &help, &dump_plugin, &version);

  if (first >= argc) {
    if (version) {
      display_version ();
      exit (EXIT_SUCCESS);
    }
    if (help) {
      usage ();
      exit (EXIT_SUCCESS);
    }
    usage_error ("no plugins given on the command line.");
  }
  plugin_name = argv[first++];
  check_option_conflicts (dump_plugin);

  /* These modes never fork and need the foreground. */
  if (config.listen_stdin || config.run || config.socket_activation ||
      config.exit_with_parent)
    config.foreground = true;

  set_up_process (parent);

  usergroup_resolve ();
  load_backends (plugin_name, &filter_names);

  if (version)
    display_versions ();
  if (help) {
    usage ();
    printf ("\n");
    top->usage (top);
    exit (EXIT_SUCCESS);
  }
  configure_backends (argc, argv, first, dump_plugin);
  if (dump_plugin) {
    top->dump_fields (top);
    exit (EXIT_SUCCESS);
  }

  lock_init_thread_model ();
  if (config.threads == 0)
    config.threads = DEFAULT_THREADS;
  connection_limits_init ();
  debug ("using thread model: %s", name_of_thread_model (thread_model));

  if (config.tls != TLS_OFF && tls_init () == -1)
    exit (EXIT_FAILURE);
  control_queue_configure ();
  free_debug_flags ();

  top->get_ready (top);

  if (config.unixsocket && strcmp (config.unixsocket, "-") == 0)
    make_private_unix_socket ();

  set_up_quit_pipe ();
  set_up_signals ();

  serve ();
  shut_down (parent);
}
