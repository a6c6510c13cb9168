/* SPDX-License-Identifier: BSD-3-Clause
 * Captive nbdkit (--run): once the server is listening, run a shell
 * command with the connection details in its environment, and stop the
 * server when the command exits, passing on its exit status.  The
 * nbdkit process the user started supervises two children, the server
 * and the command, as upstream nbdkit does.
 */

#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "internal.h"
#include "cleanup.h"
#include "utils.h"


/* The host part of the URI: the address given with -i (IPv6 literals
 * in brackets, wildcards as the matching loopback address), otherwise
 * localhost.  The result is static or CONFIG's string.
 */
static char *
uri_host (void)
{
  const char *ip = config.ipaddr;
  char *host;

  if (ip == NULL || strcmp (ip, "0.0.0.0") == 0)
    ip = "localhost";
  else if (strcmp (ip, "::") == 0)
    ip = "::1";
  if (strchr (ip, ':') != NULL) {
    if (asprintf (&host, "[%s]", ip) == -1)
      return NULL;
    return host;
  }
  return strdup (ip);
}

/* The NBD URI of our listener (nbd-uri.md). */
static char *
make_uri (void)
{
  const char *scheme = config.tls != TLS_OFF ? "nbds" : "nbd";
  const char *exportname = config.exportname ? config.exportname : "";
  CLEANUP_FREE char *name = uri_quote (exportname, "/");
  char *uri = NULL;
  int r;

  if (name == NULL)
    return NULL;
  if (config.unixsocket) {
    CLEANUP_FREE char *sock = uri_quote (config.unixsocket, "/");
    if (sock == NULL)
      return NULL;
    r = asprintf (&uri, "%s+unix:///%s?socket=%s", scheme, name, sock);
  }
  else if (config.vsock)
    r = asprintf (&uri, "%s+vsock://1:%s/%s", scheme,
                  config.port ? config.port : "10809", name);
  else {
    CLEANUP_FREE char *host = uri_host ();
    if (host == NULL)
      return NULL;
    if (config.port)
      r = asprintf (&uri, "%s://%s:%s/%s", scheme, host, config.port, name);
    else
      r = asprintf (&uri, "%s://%s/%s", scheme, host, name);
  }
  if (r == -1)
    return NULL;
  /* No trailing slash for the default export. */
  size_t len = strlen (uri);
  if (!config.unixsocket && len > 0 && uri[len - 1] == '/')
    uri[len - 1] = '\0';
  return uri;
}

/* The command's environment (nbdkit-captive(1)), then exec it. */
static void __attribute__ ((noreturn))
exec_command (const char *uri)
{
  char tls[2] = { '0' + config.tls, '\0' };
  struct sigaction sa = { .sa_handler = SIG_DFL };

  /* The command should not inherit our signal dispositions. */
  sigaction (SIGPIPE, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGQUIT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  setenv ("uri", uri, 1);
  setenv ("nbd", uri, 1);
  if (config.tls != TLS_OFF)
    setenv ("tls", tls, 1);
  else
    unsetenv ("tls");
  setenv ("exportname", config.exportname ? config.exportname : "", 1);
  setenv ("unixsocket", config.unixsocket ? config.unixsocket : "", 1);
  if (config.unixsocket && !config.vsock)
    setenv ("port", "", 1);
  else
    setenv ("port", config.port ? config.port : "10809", 1);
  execl ("/bin/sh", "sh", "-c", config.run, (char *) NULL);
  perror ("/bin/sh");
  _exit (EXIT_FAILURE);
}

static pid_t server_pid = -1;

/* In the supervisor, a signal that would stop nbdkit stops the server;
 * the command is left to finish (it got the signal too if it shares
 * our terminal).
 */
static void
forward_to_server (int sig)
{
  if (server_pid > 0)
    kill (server_pid, SIGTERM);
}

/* The exit status of the whole captive nbdkit: the server dying of a
 * signal first (that is a crash or a kill the user must hear about),
 * then the command's own status, then a failed server.
 */
static int
supervisor_status (int server, int command)
{
  if (WIFSIGNALED (server)) {
    fprintf (stderr, "%s: the server was killed by signal %d\n",
             config.program_name, WTERMSIG (server));
    return 128 + WTERMSIG (server);
  }
  if (WIFSIGNALED (command)) {
    fprintf (stderr, "%s: external command was killed by signal %d\n",
             config.program_name, WTERMSIG (command));
    return 128 + WTERMSIG (command);
  }
  if (WIFEXITED (command) && WEXITSTATUS (command) != 0)
    return WEXITSTATUS (command);
  if (WIFEXITED (server))
    return WEXITSTATUS (server);
  return EXIT_FAILURE;
}

/* Wait for both children.  The command exiting stops the server; the
 * server exiting first leaves the command to finish.
 */
static void __attribute__ ((noreturn))
supervise (pid_t command_pid)
{
  int status, server_status = 0, command_status = 0;
  bool server_done = false, command_done = false;

  while (!server_done || !command_done) {
    pid_t pid = waitpid (-1, &status, 0);
    if (pid == -1) {
      if (errno == EINTR)
        continue;
      perror ("waitpid");
      break;
    }
    if (pid == command_pid) {
      command_done = true;
      command_status = status;
      if (!server_done)
        kill (server_pid, SIGTERM);
    }
    else if (pid == server_pid) {
      server_done = true;
      server_status = status;
    }
  }
  /* The server removes a -U - socket itself, unless it was killed. */
  if (config.unixsocket_tmpdir) {
    unlink (config.unixsocket);
    rmdir (config.unixsocket_tmpdir);
  }
  fflush (stdout);
  _exit (supervisor_status (server_status, command_status));
}

/* --run, once the listeners SOCKS are open and before privileges are
 * dropped (so the command can reach a socket only root may open).  The
 * process forks: the child carries on as the server and returns; this
 * process starts the command, closes its copies of the listeners and
 * supervises both, never returning (nbdkit-captive(1)).
 */
void
run_command (const int_vector *socks)
{
  CLEANUP_FREE char *uri = make_uri ();
  pid_t supervisor = getpid (), command_pid;
  struct sigaction sa = { .sa_handler = forward_to_server };

  if (uri == NULL) {
    perror ("asprintf");
    exit (EXIT_FAILURE);
  }
  fflush (stdout);
  fflush (stderr);

  server_pid = fork ();
  if (server_pid == -1) {
    perror ("fork");
    exit (EXIT_FAILURE);
  }
  if (server_pid == 0) {
    /* The server: never outlive the supervisor. */
    if (prctl (PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid () != supervisor)
      _exit (EXIT_FAILURE);
    return;
  }

  for (size_t i = 0; i < socks->len; ++i)
    close (socks->ptr[i]);
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGQUIT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);
  command_pid = fork ();
  if (command_pid == -1) {
    perror ("fork");
    kill (server_pid, SIGTERM);
    waitpid (server_pid, NULL, 0);
    _exit (EXIT_FAILURE);
  }
  if (command_pid == 0)
    exec_command (uri);
  debug ("forked external command %d: %s", (int) command_pid, config.run);
  supervise (command_pid);
}
