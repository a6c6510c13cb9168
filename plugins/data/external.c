/* SPDX-License-Identifier: BSD-3-Clause
 * Reading files and script output for the data format, no more than the
 * expression needs: "</dev/urandom[:512]" or an endless script cut by a
 * slice stop reading at the slice's end.
 */

#include <config.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "external.h"
#include "vector.h"

DEFINE_VECTOR_TYPE (byte_vector, unsigned char)

/* Read up to LIMIT bytes from FP.  *TRUNCATED is set if more was left. */
static int
read_stream (FILE *fp, const char *what, uint64_t limit,
             unsigned char **bufp, size_t *lenp, bool *truncated)
{
  byte_vector buf = empty_vector;

  *truncated = false;
  for (;;) {
    size_t want = 65536, n;

    if (buf.len >= limit) {
      *truncated = fgetc (fp) != EOF;
      break;
    }
    if (want > limit - buf.len)
      want = limit - buf.len;
    if (byte_vector_reserve (&buf, want) == -1) {
      nbdkit_error ("data: %s: realloc: %m", what);
      goto err;
    }
    n = fread (buf.ptr + buf.len, 1, want, fp);
    buf.len += n;
    if (n < want) {
      if (ferror (fp)) {
        nbdkit_error ("data: %s: read: %m", what);
        goto err;
      }
      break;
    }
  }
  /* Even an empty result is a buffer the caller can free. */
  if (buf.ptr == NULL && byte_vector_reserve (&buf, 1) == -1) {
    nbdkit_error ("data: %s: malloc: %m", what);
    return -1;
  }
  *bufp = buf.ptr;
  *lenp = buf.len;
  return 0;

 err:
  byte_vector_reset (&buf);
  return -1;
}

int
read_file (const char *path, uint64_t limit,
           unsigned char **buf, size_t *len)
{
  FILE *fp;
  bool truncated;
  int r;

  fp = fopen (path, "rb");
  if (fp == NULL) {
    nbdkit_error ("data: <%s: %m", path);
    return -1;
  }
  r = read_stream (fp, path, limit, buf, len, &truncated);
  fclose (fp);
  return r;
}

int
run_script (const char *script, uint64_t limit,
            unsigned char **buf, size_t *len)
{
  FILE *fp;
  bool truncated;
  int status;
  struct sigaction dfl = { .sa_handler = SIG_DFL }, old;

  /* popen runs SCRIPT with /bin/sh -c.  The script must get the default
   * SIGPIPE action even if the server ignores SIGPIPE, or an endless
   * script would never notice that reading has stopped.
   */
  fflush (NULL);
  sigaction (SIGPIPE, &dfl, &old);
  fp = popen (script, "r");
  sigaction (SIGPIPE, &old, NULL);
  if (fp == NULL) {
    nbdkit_error ("data: <(%s): popen: %m", script);
    return -1;
  }
  if (read_stream (fp, "<(SCRIPT)", limit, buf, len, &truncated) == -1) {
    pclose (fp);
    return -1;
  }
  status = pclose (fp);

  /* A script whose output was cut short may die of SIGPIPE: that is how
   * an endless generator stops, not a failure.
   */
  if (truncated || status == 0)
    return 0;
  if (status == -1)
    nbdkit_error ("data: <(%s): pclose: %m", script);
  else if (WIFEXITED (status))
    nbdkit_error ("data: <(%s): the script exited with status %d",
                  script, WEXITSTATUS (status));
  else
    nbdkit_error ("data: <(%s): the script was killed by signal %d",
                  script, WTERMSIG (status));
  free (*buf);
  return -1;
}
