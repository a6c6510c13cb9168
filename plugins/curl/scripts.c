/* SPDX-License-Identifier: BSD-3-Clause
 * header-script= and cookie-script=: run a shell fragment to make the
 * HTTP headers or the cookie, again when *-renew= seconds have passed,
 * and hand the result to every pool handle before its next request.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "curl-internal.h"

extern char **environ;

/* A script printing more than this is broken. */
#define MAX_SCRIPT_OUTPUT (1024 * 1024)

/* One script's state; the results are replaced only under the write
 * lock, so a request (holding the read lock) never sees them freed.
 */
struct script {
  const char *what;             /* "header-script" or "cookie-script" */
  char **source;                /* &config.header_script, ... */
  unsigned *renew;              /* &config.header_script_renew, ... */
  unsigned iteration;           /* runs so far, $iteration */
  time_t last_run;              /* CLOCK_MONOTONIC seconds */
  bool has_run;
};

static struct script header_script = {
  "header-script", &config.header_script, &config.header_script_renew
};
static struct script cookie_script = {
  "cookie-script", &config.cookie_script, &config.cookie_script_renew
};

static pthread_rwlock_t results_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct curl_slist *script_headers;  /* header-script's lines */
static char *script_cookie;                /* cookie-script's line */
static unsigned generation = 1;            /* bumped at each new result */

static time_t
now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec;
}

static bool
is_due (const struct script *s)
{
  if (*s->source == NULL)
    return false;
  if (!s->has_run)
    return true;
  return *s->renew > 0 && now () - s->last_run >= (time_t) *s->renew;
}

/* Our environment plus iteration=N and url=URL (built before fork). */
static char **
script_environment (const struct script *s)
{
  size_t n = 0, i, j = 0;
  char **env, *iteration, *url;

  while (environ[n])
    n++;
  env = calloc (n + 3, sizeof *env);
  if (env == NULL)
    return NULL;
  for (i = 0; i < n; i++)
    if (strncmp (environ[i], "iteration=", 10) != 0 &&
        strncmp (environ[i], "url=", 4) != 0)
      env[j++] = environ[i];
  if (asprintf (&iteration, "iteration=%u", s->iteration) == -1) {
    free (env);
    return NULL;
  }
  if (asprintf (&url, "url=%s", config.url) == -1) {
    free (iteration);
    free (env);
    return NULL;
  }
  env[j++] = iteration;
  env[j++] = url;
  return env;
}

static void
free_environment (char **env)
{
  size_t n = 0;

  while (env[n])
    n++;
  /* The last two entries are ours. */
  free (env[n - 1]);
  free (env[n - 2]);
  free (env);
}

/* Read all of FD into a string; -1 if too long or on error. */
static int
read_output (int fd, char **out)
{
  size_t len = 0, cap = 4096;
  char *buf = malloc (cap + 1), *p;
  ssize_t r;

  if (buf == NULL)
    return -1;
  while ((r = read (fd, buf + len, cap - len)) != 0) {
    if (r == -1) {
      if (errno == EINTR)
        continue;
      free (buf);
      return -1;
    }
    len += r;
    if (len == cap) {
      p = cap < MAX_SCRIPT_OUTPUT ? realloc (buf, 2 * cap + 1) : NULL;
      if (p == NULL) {
        free (buf);
        errno = EFBIG;
        return -1;
      }
      buf = p;
      cap *= 2;
    }
  }
  buf[len] = '\0';
  *out = buf;
  return 0;
}

/* Run the script under /bin/sh; its standard output in *out. */
static int
run_script (struct script *s, char **out)
{
  int fds[2], status, devnull;
  char **env;
  pid_t pid;
  int r;

  env = script_environment (s);
  if (env == NULL || pipe2 (fds, O_CLOEXEC) == -1) {
    nbdkit_error ("%s: %m", s->what);
    if (env)
      free_environment (env);
    return -1;
  }
  pid = fork ();
  if (pid == 0) {
    devnull = open ("/dev/null", O_RDONLY);
    if (devnull >= 0)
      dup2 (devnull, STDIN_FILENO);
    dup2 (fds[1], STDOUT_FILENO);
    signal (SIGPIPE, SIG_DFL);
    execle ("/bin/sh", "sh", "-c", *s->source, (char *) NULL, env);
    _exit (127);
  }
  close (fds[1]);
  free_environment (env);
  if (pid == -1) {
    nbdkit_error ("%s: fork: %m", s->what);
    close (fds[0]);
    return -1;
  }
  r = read_output (fds[0], out);
  if (r == -1)
    nbdkit_error ("%s: reading its output: %m", s->what);
  close (fds[0]);
  while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
    ;
  if (r == 0 && !(WIFEXITED (status) && WEXITSTATUS (status) == 0)) {
    nbdkit_error ("%s: the script failed (%s %d)", s->what,
                  WIFEXITED (status) ? "exit status" : "signal",
                  WIFEXITED (status) ? WEXITSTATUS (status)
                                     : WTERMSIG (status));
    free (*out);
    r = -1;
  }
  s->iteration++;
  return r;
}

/* Each non-empty output line is one header. */
static int
renew_headers (void)
{
  CLEANUP_FREE char *out = NULL;
  struct curl_slist *list = NULL, *next;
  char *line, *save = NULL;

  if (run_script (&header_script, &out) == -1)
    return -1;
  for (line = strtok_r (out, "\r\n", &save); line != NULL;
       line = strtok_r (NULL, "\r\n", &save)) {
    if (curl_debug_scripts)
      nbdkit_debug ("header-script: %s", line);
    if ((next = curl_slist_append (list, line)) == NULL) {
      nbdkit_error ("header-script: curl_slist_append: %m");
      curl_slist_free_all (list);
      return -1;
    }
    list = next;
  }
  curl_slist_free_all (script_headers);
  script_headers = list;
  return 0;
}

/* The first output line is the cookie. */
static int
renew_cookie (void)
{
  char *out;

  if (run_script (&cookie_script, &out) == -1)
    return -1;
  out[strcspn (out, "\r\n")] = '\0';
  if (curl_debug_scripts)
    nbdkit_debug ("cookie-script: %s", out);
  free (script_cookie);
  script_cookie = out;
  return 0;
}

/* Rerun the scripts that are due, under the write lock. */
static int
renew_scripts (void)
{
  ACQUIRE_WRLOCK_FOR_CURRENT_SCOPE (&results_lock);
  struct script *s[2] = { &header_script, &cookie_script };
  int i, r;

  for (i = 0; i < 2; i++) {
    if (!is_due (s[i]))
      continue;                 /* another thread did it meanwhile */
    r = s[i] == &header_script ? renew_headers () : renew_cookie ();
    if (r == -1)
      return -1;
    s[i]->has_run = true;
    s[i]->last_run = now ();
    generation++;
  }
  return 0;
}

int
scripts_begin_request (struct curl_handle *h)
{
  bool due;

  if (config.header_script == NULL && config.cookie_script == NULL)
    return 0;
  {
    ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&results_lock);
    due = is_due (&header_script) || is_due (&cookie_script);
  }
  if (due && renew_scripts () == -1)
    return -1;

  pthread_rwlock_rdlock (&results_lock);
  if (h->generation != generation) {
    if (config.header_script)
      curl_easy_setopt (h->c, CURLOPT_HTTPHEADER, script_headers);
    if (config.cookie_script)
      curl_easy_setopt (h->c, CURLOPT_COOKIE, script_cookie);
    h->generation = generation;
  }
  return 0;
}

void
scripts_end_request (void)
{
  if (config.header_script == NULL && config.cookie_script == NULL)
    return;
  pthread_rwlock_unlock (&results_lock);
}

struct curl_slist *
scripts_headers (void)
{
  return config.header_script ? script_headers : config.headers;
}

void
scripts_unload (void)
{
  curl_slist_free_all (script_headers);
  free (script_cookie);
  script_headers = NULL;
  script_cookie = NULL;
}
