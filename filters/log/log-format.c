/* SPDX-License-Identifier: BSD-3-Clause
 * Writing log entries: the timestamped line format of the log file, the
 * quoting of values, and running the log script with the entry's fields
 * as shell variables.  One lock keeps entries whole and in order.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"
#include "log.h"

extern char **environ;

/* Serializes writing the file and running the script. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The open log file, or NULL. */
static FILE *logfp;

/* The log script, or NULL. */
static const char *logscript;

int
log_start (const char *logfile, bool append, const char *script)
{
  if (logfile) {
    logfp = fopen (logfile, append ? "a" : "w");
    if (logfp == NULL) {
      nbdkit_error ("logfile: %s: %m", logfile);
      return -1;
    }
  }
  logscript = script;
  return 0;
}

void
log_stop (void)
{
  if (logfp)
    fclose (logfp);
  logfp = NULL;
  logscript = NULL;
}

bool
log_enabled (void)
{
  return logfp != NULL || logscript != NULL;
}

int
log_fields_init (struct log_fields *f)
{
  memset (f, 0, sizeof *f);
  f->text_fp = open_memstream (&f->text, &f->text_len);
  f->shell_fp = open_memstream (&f->shell, &f->shell_len);
  if (f->text_fp == NULL || f->shell_fp == NULL) {
    nbdkit_error ("open_memstream: %m");
    log_fields_free (f);
    return -1;
  }
  return 0;
}

void
log_fields_free (struct log_fields *f)
{
  if (f->text_fp)
    fclose (f->text_fp);
  if (f->shell_fp)
    fclose (f->shell_fp);
  free (f->text);
  free (f->shell);
  memset (f, 0, sizeof *f);
}

/* Characters that need no quoting, in the log file or in the shell. */
static bool
is_plain (const char *str)
{
  static const char plain[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "_-+=./:@%";

  return *str != '\0' && strspn (str, plain) == strlen (str);
}

/* Quote STR the way a shell would read it back: bare when that is safe,
 * else in double quotes, else (for control characters, which must not
 * break the one-line format) as $'...' with escapes.
 */
void
log_quote (FILE *fp, const char *str)
{
  const unsigned char *p;
  bool has_control = false;

  if (is_plain (str)) {
    fputs (str, fp);
    return;
  }
  for (p = (const unsigned char *) str; *p; ++p)
    if (*p < 0x20 || *p == 0x7f)
      has_control = true;

  if (!has_control) {
    fputc ('"', fp);
    for (p = (const unsigned char *) str; *p; ++p) {
      if (strchr ("\"\\$`", *p))
        fputc ('\\', fp);
      fputc (*p, fp);
    }
    fputc ('"', fp);
    return;
  }
  fputs ("$'", fp);
  for (p = (const unsigned char *) str; *p; ++p) {
    if (*p < 0x20 || *p == 0x7f)
      fprintf (fp, "\\x%02x", *p);
    else if (*p == '\'' || *p == '\\')
      fprintf (fp, "\\%c", *p);
    else
      fputc (*p, fp);
  }
  fputc ('\'', fp);
}

static void
separate (struct log_fields *f)
{
  if (ftell (f->text_fp) > 0) {
    fputc (' ', f->text_fp);
    fputc (' ', f->shell_fp);
  }
}

void
log_fields_add (struct log_fields *f, const char *key, const char *fs, ...)
{
  va_list args;

  separate (f);
  fprintf (f->text_fp, "%s=", key);
  fprintf (f->shell_fp, "%s=", key);
  va_start (args, fs);
  vfprintf (f->text_fp, fs, args);
  va_end (args);
  va_start (args, fs);
  vfprintf (f->shell_fp, fs, args);
  va_end (args);
}

void
log_fields_add_string (struct log_fields *f, const char *key,
                       const char *value)
{
  CLEANUP_FREE char *quoted = shell_quote (value);

  separate (f);
  fprintf (f->text_fp, "%s=", key);
  log_quote (f->text_fp, value);
  /* Single quotes keep even a newline inside the value for sh. */
  fprintf (f->shell_fp, "%s=%s", key, quoted ? quoted : "''");
}

/* A list: KEY=(ITEMS) in the file; for the script, which runs in a
 * POSIX shell without arrays, one quoted string holding the items.
 */
void
log_fields_add_list (struct log_fields *f, const char *key,
                     const char *items)
{
  CLEANUP_FREE char *quoted = shell_quote (items);

  separate (f);
  fprintf (f->text_fp, "%s=(%s)", key, items);
  fprintf (f->shell_fp, "%s=%s", key, quoted ? quoted : "''");
}

/* return=R, then error=ENAME on failure, then the call's duration. */
void
log_fields_add_result (struct log_fields *f, int r, int err, double seconds)
{
  log_fields_add (f, "return", "%d", r);
  if (r == -1 && err != 0) {
    const char *name = strerrorname_np (err);
    if (name)
      log_fields_add (f, "error", "%s", name);
    else
      log_fields_add (f, "error", "%d", err);
  }
  log_fields_add (f, "duration", "%.6f", seconds);
}

static void
write_timestamp (FILE *fp)
{
  struct timeval tv;
  struct tm tm;
  char buf[64];

  gettimeofday (&tv, NULL);
  localtime_r (&tv.tv_sec, &tm);
  strftime (buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  fprintf (fp, "%s.%06ld ", buf, (long) tv.tv_usec);
}

/* With the lock held. */
static void
write_file_line (enum log_type type, uint64_t connection, const char *act,
                 uint64_t id, const char *fields)
{
  write_timestamp (logfp);
  if (connection)
    fprintf (logfp, "connection=%" PRIu64 " ", connection);
  if (type == LOG_LEAVE)
    fputs ("...", logfp);
  fputs (act, logfp);
  if (id)
    fprintf (logfp, " id=%" PRIu64, id);
  if (*fields)
    fprintf (logfp, " %s", fields);
  if (type == LOG_ENTER)
    fputs (" ...", logfp);
  fputc ('\n', logfp);
  fflush (logfp);
}

/* With the lock held.  The script's exit status is ignored: a log
 * script cannot change how the request is handled.
 */
static void
run_script (enum log_type type, uint64_t connection, const char *act,
            uint64_t id, const char *fields)
{
  static const char *const type_names[] = {
    [LOG_ENTER] = "ENTER", [LOG_LEAVE] = "LEAVE", [LOG_PRINT] = "PRINT",
  };
  CLEANUP_FREE char *cmd = NULL;
  size_t len = 0;
  FILE *fp = open_memstream (&cmd, &len);
  char *argv[4];
  pid_t pid;
  int status, e;

  if (fp == NULL) {
    nbdkit_error ("logscript: open_memstream: %m");
    return;
  }
  fprintf (fp, "act=%s\n", act);
  if (connection)
    fprintf (fp, "connection=%" PRIu64 "\n", connection);
  fprintf (fp, "type=%s\n", type_names[type]);
  if (id)
    fprintf (fp, "id=%" PRIu64 "\n", id);
  fprintf (fp, "%s\n%s", fields, logscript);
  if (fclose (fp) == EOF) {
    nbdkit_error ("logscript: %m");
    return;
  }

  argv[0] = (char *) "sh";
  argv[1] = (char *) "-c";
  argv[2] = cmd;
  argv[3] = NULL;
  e = posix_spawn (&pid, "/bin/sh", NULL, NULL, argv, environ);
  if (e != 0) {
    errno = e;
    nbdkit_error ("logscript: /bin/sh: %m");
    return;
  }
  while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
    ;
}

void
log_entry (enum log_type type, uint64_t connection, const char *act,
           uint64_t id, struct log_fields *f)
{
  const char *text = "", *shell = "";

  if (f) {
    fflush (f->text_fp);
    fflush (f->shell_fp);
    text = f->text ? f->text : "";
    shell = f->shell ? f->shell : "";
  }

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  if (logfp)
    write_file_line (type, connection, act, id, text);
  if (logscript)
    run_script (type, connection, act, id, shell);
}
