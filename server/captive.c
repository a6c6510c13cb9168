/* SPDX-License-Identifier: BSD-3-Clause
 * Captive nbdkit (--run): once the server is listening, run a shell
 * command with the connection details in its environment, and stop the
 * server when the command exits, passing on its exit status.
 */

#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "internal.h"
#include "cleanup.h"
#include "utils.h"

static pid_t command_pid = -1;
static int exit_status = EXIT_SUCCESS;

int
captive_exit_status (void)
{
  return exit_status;
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
  else if (config.port)
    r = asprintf (&uri, "%s://localhost:%s/%s", scheme, config.port, name);
  else
    r = asprintf (&uri, "%s://localhost/%s", scheme, name);
  if (r == -1)
    return NULL;
  /* No trailing slash for the default export. */
  size_t len = strlen (uri);
  if (!config.unixsocket && len > 0 && uri[len - 1] == '/')
    uri[len - 1] = '\0';
  return uri;
}

/* Wait for the command in the background; its exit stops the server. */
static void *
wait_for_command (void *arg)
{
  int status;
  pid_t r;

  do
    r = waitpid (command_pid, &status, 0);
  while (r == -1 && errno == EINTR);

  if (r == -1) {
    nbdkit_error ("waitpid: %m");
    exit_status = EXIT_FAILURE;
  }
  else if (WIFEXITED (status))
    exit_status = WEXITSTATUS (status);
  else if (WIFSIGNALED (status)) {
    nbdkit_error ("external command was killed by signal %d",
                  WTERMSIG (status));
    exit_status = 128 + WTERMSIG (status);
  }
  else if (WIFSTOPPED (status)) {
    nbdkit_error ("external command was stopped by signal %d",
                  WSTOPSIG (status));
    exit_status = 128 + WSTOPSIG (status);
  }
  set_quit ();
  return NULL;
}

void
run_command (void)
{
  CLEANUP_FREE char *uri = make_uri ();
  pthread_t thread;
  char tls[2] = { '0' + config.tls, '\0' };
  int err;

  if (uri == NULL) {
    perror ("asprintf");
    exit (EXIT_FAILURE);
  }
  fflush (stdout);
  fflush (stderr);

  command_pid = fork ();
  if (command_pid == -1) {
    perror ("fork");
    exit (EXIT_FAILURE);
  }
  if (command_pid == 0) {
    /* The command should not inherit our signal dispositions. */
    signal (SIGPIPE, SIG_DFL);
    signal (SIGHUP, SIG_DFL);
    setenv ("uri", uri, 1);
    setenv ("nbd", uri, 1);
    if (config.tls != TLS_OFF)
      setenv ("tls", tls, 1);
    else
      unsetenv ("tls");
    setenv ("exportname", config.exportname ? config.exportname : "", 1);
    setenv ("unixsocket", config.unixsocket ? config.unixsocket : "", 1);
    if (config.vsock)
      setenv ("port", config.port ? config.port : "10809", 1);
    else if (config.unixsocket)
      setenv ("port", "", 1);
    else
      setenv ("port", config.port ? config.port : "10809", 1);
    execl ("/bin/sh", "sh", "-c", config.run, (char *) NULL);
    perror ("/bin/sh");
    _exit (EXIT_FAILURE);
  }

  debug ("forked external command %d: %s", (int) command_pid, config.run);
  err = pthread_create (&thread, NULL, wait_for_command, NULL);
  if (err) {
    errno = err;
    perror ("pthread_create");
    kill (command_pid, SIGTERM);
    exit (EXIT_FAILURE);
  }
  pthread_detach (thread);
}
