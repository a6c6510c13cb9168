/* SPDX-License-Identifier: BSD-3-Clause
 * nbdkitd: options, the daemon context, the event loop, bus connection
 * and name, readiness (sd_notify), graceful stop and idle exit.
 */

#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "nbdkitd.h"
#include "fdstore.h"
#include "cleanup.h"

static int log_verbose;

void
log_msg (struct context *ctx, int level, const char *fs, ...)
{
  va_list args;
  int saved = errno;

  if (level >= 7 && !log_verbose)
    return;
  fprintf (stderr, "<%d>nbdkitd: ", level);
  va_start (args, fs);
  errno = saved;
  vfprintf (stderr, fs, args);
  va_end (args);
  fputc ('\n', stderr);
  errno = saved;
}

static void __attribute__ ((noreturn))
usage (int status)
{
  printf ("Usage: nbdkitd [OPTIONS]\n"
          "Run the NBD export manager (see nbdkitd(8)).\n\n"
          "  --user                  use the session bus, not the system bus\n"
          "  --state-dir=DIR         export definitions (default /var/lib/nbdkitd)\n"
          "  --runtime-dir=DIR       runtime files (default /run/nbdkitd)\n"
          "  --listen=ADDRESS        the shared listener: tcp:HOST:PORT,\n"
          "                          unix:PATH or none (repeatable;\n"
          "                          default tcp::10809)\n"
          "  --idle-timeout=SECS     exit when idle for SECS seconds\n"
          "  --handshake-timeout=SECS  close a shared-listener client that\n"
          "                          has not picked an export within SECS\n"
          "                          seconds (default 10; 0: no limit)\n"
          "  --tls-certificates=DIR  X.509 credentials for STARTTLS on the\n"
          "                          shared listener (ca-cert.pem,\n"
          "                          server-cert.pem, server-key.pem)\n"
          "  --tls-psk=FILE          PSK file (psktool) for STARTTLS on the\n"
          "                          shared listener\n"
          "  --fd-store              keep listeners and workers in the service\n"
          "                          manager's fd store: a restart or upgrade\n"
          "                          does not drop clients\n"
          "  --nbdkit=PATH           the nbdkit program for workers\n"
          "  -v, --verbose           debug messages\n"
          "  -V, --version           print the version and exit\n"
          "  --help                  print this help and exit\n");
  exit (status);
}

static char *
default_dir (bool user_bus, const char *sys, const char *xdg_var,
             const char *home_sub)
{
  const char *base = getenv (xdg_var);
  char *s;

  if (!user_bus)
    return strdup (sys);
  if (base && *base)
    return asprintf (&s, "%s/nbdkitd", base) == -1 ? NULL : s;
  base = getenv ("HOME");
  return asprintf (&s, "%s/%s/nbdkitd", base ? base : "/tmp", home_sub) == -1
    ? NULL : s;
}

static char *
default_nbdkit (void)
{
  const char *env = getenv ("NBDKITD_NBDKIT");
  char exe[4096];
  ssize_t n;

  if (env && *env)
    return strdup (env);
  n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = '\0';
    if (strcmp (exe, BUILDDIR "/daemon/nbdkitd") == 0)
      return strdup (BUILDDIR "/server/nbdkit");
  }
  return strdup (SBINDIR "/nbdkit");
}

/* A number of seconds up to MAX for option OPT. */
static int
parse_secs (const char *opt, const char *arg, unsigned long max,
            unsigned long *secs)
{
  char *end;

  errno = 0;
  *secs = strtoul (arg, &end, 10);
  if (errno || *end || end == arg || *secs > max) {
    fprintf (stderr, "nbdkitd: %s=%s: not a number of seconds (at most %lu)\n",
             opt, arg, max);
    return -1;
  }
  return 0;
}

static int
parse_argv (int argc, char **argv, struct config *config)
{
  enum { ARG_USER = 0x100, ARG_STATE_DIR, ARG_RUNTIME_DIR, ARG_LISTEN,
         ARG_IDLE, ARG_HANDSHAKE_TIMEOUT, ARG_NBDKIT, ARG_TLS_CERTIFICATES,
         ARG_TLS_PSK, ARG_FD_STORE, ARG_HELP };
  static const struct option options[] = {
    { "user", no_argument, NULL, ARG_USER },
    { "state-dir", required_argument, NULL, ARG_STATE_DIR },
    { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
    { "listen", required_argument, NULL, ARG_LISTEN },
    { "idle-timeout", required_argument, NULL, ARG_IDLE },
    { "handshake-timeout", required_argument, NULL, ARG_HANDSHAKE_TIMEOUT },
    { "nbdkit", required_argument, NULL, ARG_NBDKIT },
    { "tls-certificates", required_argument, NULL, ARG_TLS_CERTIFICATES },
    { "tls-psk", required_argument, NULL, ARG_TLS_PSK },
    { "fd-store", no_argument, NULL, ARG_FD_STORE },
    { "verbose", no_argument, NULL, 'v' },
    { "version", no_argument, NULL, 'V' },
    { "help", no_argument, NULL, ARG_HELP },
    { NULL },
  };
  char *s;
  unsigned long secs;
  int c;

  while ((c = getopt_long (argc, argv, "vV", options, NULL)) != -1) {
    switch (c) {
    case ARG_USER: config->user_bus = true; break;
    case ARG_STATE_DIR: free (config->state_dir);
      config->state_dir = strdup (optarg); break;
    case ARG_RUNTIME_DIR: free (config->runtime_dir);
      config->runtime_dir = strdup (optarg); break;
    case ARG_LISTEN:
      if ((s = strdup (optarg)) == NULL ||
          string_vector_append (&config->listen, s) == -1)
        return -ENOMEM;
      break;
    case ARG_IDLE:
      if (parse_secs ("--idle-timeout", optarg, 86400 * 365, &secs) < 0)
        return -EINVAL;
      config->idle_timeout_usec = secs * 1000000;
      break;
    case ARG_HANDSHAKE_TIMEOUT:
      if (parse_secs ("--handshake-timeout", optarg, 86400, &secs) < 0)
        return -EINVAL;
      config->handshake_timeout = secs;
      break;
    case ARG_NBDKIT: free (config->nbdkit);
      config->nbdkit = strdup (optarg); break;
    case ARG_TLS_CERTIFICATES: free (config->tls_certificates);
      config->tls_certificates = strdup (optarg); break;
    case ARG_TLS_PSK: free (config->tls_psk);
      config->tls_psk = strdup (optarg); break;
    case ARG_FD_STORE: config->fd_store = true; break;
    case 'v': config->verbose++; break;
    case 'V': printf ("nbdkitd %s\n", PACKAGE_VERSION); exit (EXIT_SUCCESS);
    case ARG_HELP: usage (EXIT_SUCCESS);
    default: usage (EXIT_FAILURE);
    }
  }
  if (optind != argc) {
    fprintf (stderr, "nbdkitd: unexpected argument '%s'\n", argv[optind]);
    return -EINVAL;
  }
  if (!config->state_dir)
    config->state_dir = default_dir (config->user_bus, "/var/lib/nbdkitd",
                                     "XDG_STATE_HOME", ".local/state");
  if (!config->runtime_dir)
    config->runtime_dir = default_dir (config->user_bus, "/run/nbdkitd",
                                       "XDG_RUNTIME_DIR", ".cache");
  if (!config->nbdkit)
    config->nbdkit = default_nbdkit ();
  if (!config->state_dir || !config->runtime_dir || !config->nbdkit)
    return -ENOMEM;
  return 0;
}

static int
mkdir_p (const char *dir, mode_t mode)
{
  CLEANUP_FREE char *copy = strdup (dir);

  if (copy == NULL)
    return -ENOMEM;
  for (char *p = copy + 1; *p; p++)
    if (*p == '/') {
      *p = '\0';
      if (mkdir (copy, 0755) == -1 && errno != EEXIST)
        return -errno;
      *p = '/';
    }
  if (mkdir (copy, mode) == -1 && errno != EEXIST)
    return -errno;
  return 0;
}

void
context_done (struct context *ctx)
{
  add_exports_abandon (ctx);
  while (ctx->exports.len)
    export_registry_remove (ctx, ctx->exports.ptr[ctx->exports.len - 1]);
  export_vector_reset (&ctx->exports);
  string_vector_free_all (&ctx->pending_names);
  polkit_queries_free (ctx);
  router_free_all (ctx);
  for (size_t i = 0; i < ctx->shared.len; i++) {
    sd_event_source_disable_unref (ctx->shared.ptr[i].watch);
    close (ctx->shared.ptr[i].fd);
    free (ctx->shared.ptr[i].address);
  }
  listener_vector_reset (&ctx->shared);
  catalogue_done (ctx);
  sd_event_source_disable_unref (ctx->idle_timer);
  sd_event_source_disable_unref (ctx->stop_timer);
  sd_bus_slot_unref (ctx->manager_slot);
  sd_bus_flush_close_unref (ctx->bus);
  sd_event_unref (ctx->event);
  free (ctx->config.state_dir);
  free (ctx->config.runtime_dir);
  free (ctx->config.nbdkit);
  free (ctx->config.tls_certificates);
  free (ctx->config.tls_psk);
  string_vector_free_all (&ctx->config.listen);
  router_tls_free (ctx);
}

static unsigned
running_workers (const struct context *ctx)
{
  unsigned n = 0;

  for (size_t i = 0; i < ctx->exports.len; i++) {
    const struct export *e = ctx->exports.ptr[i];
    /* Handing off (--fd-store): the stored exports' workers stay. */
    if (!ctx->handing_off || !fdstore_keeps (e))
      n += export_has_workers (e);
  }
  return n;
}

/* STATUS= for the service manager, and READY=1 once every boot export
 * has started or failed.
 */
void
context_update_status (struct context *ctx)
{
  unsigned running = 0, boot_pending = 0;

  for (size_t i = 0; i < ctx->exports.len; i++) {
    struct export *e = ctx->exports.ptr[i];
    running += e->state == EXPORT_RUNNING;
    boot_pending += e->boot_pending;
  }
  if (!ctx->ready_sent && boot_pending == 0 && ctx->bus_ready &&
      !ctx->restoring) {
    ctx->ready_sent = true;
    sd_notifyf (false, "READY=1\nSTATUS=%zu exports, %u running",
                ctx->exports.len, running);
    log_info (ctx, "Ready: %zu exports, %u running", ctx->exports.len, running);
  }
  else if (ctx->ready_sent)
    sd_notifyf (false, "STATUS=%zu exports, %u running", ctx->exports.len,
                running);
}

/* Idle: no worker, no client on the shared listener, no call pending,
 * and nothing that only this process holds (transient exports, export
 * listeners).
 */
static bool
context_is_idle (struct context *ctx)
{
  if (ctx->pending_calls || router_active (ctx) || running_workers (ctx))
    return false;
  for (size_t i = 0; i < ctx->exports.len; i++)
    if (!ctx->exports.ptr[i]->def.persist || ctx->exports.ptr[i]->listeners.len)
      return false;
  return true;
}

static int
on_idle_timer (sd_event_source *s, uint64_t usec, void *userdata)
{
  struct context *ctx = userdata;
  int r;

  if (!context_is_idle (ctx))
    return 0;
  log_info (ctx, "Idle for %" PRIu64 " s, exiting",
            ctx->config.idle_timeout_usec / 1000000);
  /* Give up the name first: a call that arrives from now on activates a
   * new instance, and calls already queued here are still answered.
   */
  r = sd_bus_release_name (ctx->bus, NBDKITD_BUS_NAME);
  if (r < 0)
    log_warning (ctx, "Failed to release the bus name: %s, ignoring",
                 strerror (-r));
  while (sd_bus_process (ctx->bus, NULL) > 0)
    ;
  sd_notify (false, "STOPPING=1");
  return sd_event_exit (ctx->event, 0);
}

void
context_check_idle (struct context *ctx)
{
  if (!ctx->config.idle_timeout_usec || ctx->exiting || !ctx->event)
    return;
  if (!context_is_idle (ctx)) {
    if (ctx->idle_timer)
      sd_event_source_set_enabled (ctx->idle_timer, SD_EVENT_OFF);
    return;
  }
  if (ctx->idle_timer) {
    sd_event_source_set_time_relative (ctx->idle_timer,
                                       ctx->config.idle_timeout_usec);
    sd_event_source_set_enabled (ctx->idle_timer, SD_EVENT_ONESHOT);
    return;
  }
  sd_event_add_time_relative (ctx->event, &ctx->idle_timer, CLOCK_MONOTONIC,
                              ctx->config.idle_timeout_usec, 0,
                              on_idle_timer, ctx);
}

/* SIGTERM: stop the workers gracefully, exit when the last has gone. */
void
context_check_stopped (struct context *ctx)
{
  if (ctx->exiting && running_workers (ctx) == 0)
    sd_event_exit (ctx->event, 0);
}

static int
on_stop_timeout (sd_event_source *s, uint64_t usec, void *userdata)
{
  struct context *ctx = userdata;

  log_warning (ctx, "Workers did not stop in time, exiting");
  return sd_event_exit (ctx->event, 0);
}

/* SIGHUP: what the Reload method does (certificate renewal scripts). */
static int
on_sighup (sd_event_source *s, const struct signalfd_siginfo *si,
           void *userdata)
{
  struct context *ctx = userdata;

  log_info (ctx, "SIGHUP received, reloading modules and TLS credentials");
  context_reload (ctx);
  return 0;
}

static int
on_signal (sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
  struct context *ctx = userdata;

  if (ctx->exiting)
    return 0;
  log_info (ctx, "Signal %s received, stopping", strsignal (si->ssi_signo));
  ctx->exiting = true;
  sd_notify (false, "STOPPING=1");
  sd_bus_release_name (ctx->bus, NBDKITD_BUS_NAME);
  if (ctx->config.fd_store)
    fdstore_hand_off (ctx);
  else
    for (size_t i = 0; i < ctx->exports.len; i++)
      worker_stop (ctx->exports.ptr[i], true);
  sd_event_add_time_relative (ctx->event, &ctx->stop_timer, CLOCK_MONOTONIC,
                              35 * UINT64_C (1000000), 0, on_stop_timeout, ctx);
  context_check_stopped (ctx);
  return 0;
}

/* The stored exports: open their own listeners, start them as their
 * policy says.  An export whose listener cannot be opened is failed, the
 * others carry on.
 */
static void
exports_restore (struct context *ctx)
{
  for (size_t i = 0; i < ctx->exports.len; i++) {
    struct export *e = ctx->exports.ptr[i];
    sd_bus_error error = SD_BUS_ERROR_NULL;
    int r;

    if (e->broken_file)
      continue;
    if (fdstore_keeps (e))
      r = fdstore_adopt_export (e, &error);
    else
      r = export_listeners_open (e, &error);
    if (r < 0) {
      log_error (ctx, "export '%s': %s", e->def.name,
                 error.message ? error.message : strerror (-r));
      export_set_last_error (e, error.message ? error.message
                             : strerror (-r));
      export_set_state (e, EXPORT_FAILED);
      sd_bus_error_free (&error);
      continue;
    }
    if (r == 0)
      export_start_by_policy (e);
  }
  if (ctx->config.fd_store)
    fdstore_discard_unclaimed (ctx);
}

static int
bus_connect (struct context *ctx)
{
  const char *starter = getenv ("DBUS_STARTER_ADDRESS");
  int r;

  if (starter) {
    /* Bus activation: talk to the bus that started us. */
    r = sd_bus_new (&ctx->bus);
    if (r >= 0)
      r = sd_bus_set_address (ctx->bus, starter);
    if (r >= 0)
      r = sd_bus_set_bus_client (ctx->bus, 1);
    if (r >= 0)
      r = sd_bus_start (ctx->bus);
  }
  else if (ctx->config.user_bus)
    r = sd_bus_open_user (&ctx->bus);
  else
    r = sd_bus_open_system (&ctx->bus);
  if (r < 0)
    return r;
  return sd_bus_attach_event (ctx->bus, ctx->event, SD_EVENT_PRIORITY_NORMAL);
}

static int
run (struct context *ctx)
{
  sigset_t mask;
  int r;

  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGTERM);
  sigaddset (&mask, SIGINT);
  sigaddset (&mask, SIGHUP);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  signal (SIGPIPE, SIG_IGN);

  if ((r = mkdir_p (ctx->config.state_dir, 0700)) < 0 ||
      (r = mkdir_p (ctx->config.runtime_dir, 0755)) < 0) {
    log_error (ctx, "Failed to create the state or runtime directory: %s",
               strerror (-r));
    return r;
  }
  if ((r = sd_event_default (&ctx->event)) < 0 ||
      (r = sd_event_add_signal (ctx->event, NULL, SIGTERM, on_signal, ctx)) < 0 ||
      (r = sd_event_add_signal (ctx->event, NULL, SIGINT, on_signal, ctx)) < 0 ||
      (r = sd_event_add_signal (ctx->event, NULL, SIGHUP, on_sighup, ctx)) < 0)
    return r;
  if ((r = bus_connect (ctx)) < 0) {
    log_error (ctx, "Failed to connect to the bus: %s", strerror (-r));
    return r;
  }
  if ((r = manager_object_register (ctx)) < 0 ||
      (r = export_object_register (ctx)) < 0 ||
      (r = fdstore_init (ctx)) < 0)
    return r;
  if ((r = store_load_all (ctx)) < 0) {
    log_error (ctx, "Failed to read %s: %s", ctx->config.state_dir,
               strerror (-r));
    return r;
  }
  if ((r = shared_listeners_open (ctx)) < 0)
    return r;
  r = sd_bus_request_name (ctx->bus, NBDKITD_BUS_NAME, 0);
  if (r < 0) {
    log_error (ctx, "Failed to own %s: %s", NBDKITD_BUS_NAME, strerror (-r));
    return r;
  }
  ctx->bus_ready = true;
  ctx->restoring = true;        /* READY=1 once every export is restored */
  exports_restore (ctx);
  ctx->restoring = false;
  context_update_status (ctx);
  context_check_idle (ctx);
  return sd_event_loop (ctx->event);
}

int
main (int argc, char *argv[])
{
  struct context ctx = {
    .config.handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT,
  };
  int r;

  setvbuf (stderr, NULL, _IOLBF, 0);
  r = nbdkitd_errors_register ();
  if (r >= 0)
    r = parse_argv (argc, argv, &ctx.config);
  if (r >= 0) {
    log_verbose = ctx.config.verbose;
    r = shared_tls_load_saved (&ctx);
    if (r >= 0)
      r = router_tls_init (&ctx);
  }
  if (r >= 0)
    r = run (&ctx);
  if (ctx.handing_off)
    fdstore_detach (&ctx);
  else
    for (size_t i = 0; i < ctx.exports.len; i++)
      worker_stop (ctx.exports.ptr[i], false);
  context_done (&ctx);
  fdstore_free ();
  return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
