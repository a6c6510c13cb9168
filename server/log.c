/* SPDX-License-Identifier: BSD-3-Clause
 * Error messages: nbdkit_error and friends, written to stderr, syslog or
 * nowhere according to --log.  Each message names the plugin or filter and
 * the connection it came from.
 */

#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "internal.h"

/* Format the "name[conn]: " context prefix into BUF. */
static void
context_prefix (char *buf, size_t len)
{
  const char *name = threadlocal_get_name ();
  size_t instance = threadlocal_get_instance ();

  if (name && instance)
    snprintf (buf, len, "%s[%zu]: ", name, instance);
  else if (name)
    snprintf (buf, len, "%s: ", name);
  else if (instance)
    snprintf (buf, len, "[%zu]: ", instance);
  else
    buf[0] = '\0';
}

/* Write one whole line so messages from different threads never mix. */
static void
write_line (FILE *fp, const char *kind, const char *fs, va_list args)
{
  char prefix[256];
  char *msg = NULL;
  int saved_errno = errno;

  context_prefix (prefix, sizeof prefix);
  errno = saved_errno;          /* for %m */
  if (vasprintf (&msg, fs, args) == -1)
    msg = NULL;
  flockfile (fp);
  fprintf (fp, "%s: %s%s: %s\n", config.program_name, prefix, kind,
           msg ? msg : fs);
  fflush (fp);
  funlockfile (fp);
  free (msg);
  errno = saved_errno;
}

void
log_stderr_verror (const char *fs, va_list args)
{
  write_line (stderr, "error", fs, args);
}

void
log_syslog_verror (const char *fs, va_list args)
{
  char prefix[256];
  char *msg = NULL;
  int saved_errno = errno;

  context_prefix (prefix, sizeof prefix);
  errno = saved_errno;
  if (vasprintf (&msg, fs, args) == -1)
    msg = NULL;
  openlog ("nbdkit", LOG_PID, LOG_DAEMON);
  syslog (LOG_ERR, "%s%s", prefix, msg ? msg : fs);
  free (msg);
  errno = saved_errno;
}

/* A thread that wants the text of its next error (a control command
 * replying with it) points this at a buffer.
 */
static __thread char *capture_buf;
static __thread size_t capture_len;

void
log_capture_errors (char *buf, size_t len)
{
  capture_buf = buf;
  capture_len = len;
  if (buf && len)
    buf[0] = '\0';
}

void
log_verror (const char *fs, va_list args)
{
  if (capture_buf) {
    va_list copy;
    int saved_errno = errno;
    va_copy (copy, args);
    vsnprintf (capture_buf, capture_len, fs, copy);
    va_end (copy);
    errno = saved_errno;
  }
  switch (config.log_to) {
  case LOG_TO_NULL:
    break;
  case LOG_TO_SYSLOG:
    log_syslog_verror (fs, args);
    break;
  case LOG_TO_DEFAULT:
    if (config.forked) {
      log_syslog_verror (fs, args);
      break;
    }
    /* fallthrough */
  case LOG_TO_STDERR:
    log_stderr_verror (fs, args);
    break;
  }
}

NBDKIT_DLL_PUBLIC void
nbdkit_verror (const char *fs, va_list args)
{
  log_verror (fs, args);
}

NBDKIT_DLL_PUBLIC void
nbdkit_error (const char *fs, ...)
{
  va_list args;

  va_start (args, fs);
  log_verror (fs, args);
  va_end (args);
}

/* Debug messages always go to stderr, and only with -v. */
NBDKIT_DLL_PUBLIC void
nbdkit_vdebug (const char *fs, va_list args)
{
  if (!config.verbose)
    return;
  write_line (stderr, "debug", fs, args);
}

NBDKIT_DLL_PUBLIC void
nbdkit_debug (const char *fs, ...)
{
  va_list args;

  if (!config.verbose)
    return;
  va_start (args, fs);
  write_line (stderr, "debug", fs, args);
  va_end (args);
}
