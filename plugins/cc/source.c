/* SPDX-License-Identifier: BSD-3-Clause
 * The cc plugin's source file: where the C source to compile comes from
 * (a file, a copy of a "#!" script, or standard input) and the private
 * temporary directory that holds copies and the compiled plugin.
 */

#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc.h"
#include "cleanup.h"

/* Private directory, or NULL until needed. */
static char *tmpdir;

/* The directory of a script compiled from a copy, where its own
 * #include "..." files are, or NULL.
 */
static char *script_dir;

/* Remove tmpdir and whatever is in it. */
void
source_remove_tmpdir (void)
{
  DIR *dir;
  struct dirent *d;

  if (tmpdir == NULL)
    return;
  dir = opendir (tmpdir);
  if (dir) {
    while ((d = readdir (dir)) != NULL) {
      CLEANUP_FREE char *path = NULL;
      if (strcmp (d->d_name, ".") == 0 || strcmp (d->d_name, "..") == 0)
        continue;
      if (asprintf (&path, "%s/%s", tmpdir, d->d_name) >= 0)
        unlink (path);
    }
    closedir (dir);
  }
  rmdir (tmpdir);
  free (tmpdir);
  tmpdir = NULL;
}

const char *
source_script_dir (void)
{
  return script_dir;
}

void
source_free (void)
{
  source_remove_tmpdir ();
  free (script_dir);
  script_dir = NULL;
}

/* The private directory, created the first time it is needed. */
const char *
source_tmpdir (void)
{
  const char *base = getenv ("TMPDIR");

  if (tmpdir)
    return tmpdir;
  if (base == NULL || *base == '\0')
    base = "/tmp";
  if (asprintf (&tmpdir, "%s/nbdkit-cc-XXXXXX", base) == -1) {
    tmpdir = NULL;
    nbdkit_error ("asprintf: %m");
    return NULL;
  }
  if (mkdtemp (tmpdir) == NULL) {
    nbdkit_error ("cannot create a temporary directory %s: %m", tmpdir);
    free (tmpdir);
    tmpdir = NULL;
    return NULL;
  }
  return tmpdir;
}

/* Write "#line 2 "LABEL"", LABEL quoted as a C string. */
static void
write_line_directive (FILE *out, const char *label)
{
  fputs ("#line 2 \"", out);
  for (; *label; ++label) {
    if (*label == '"' || *label == '\\')
      fputc ('\\', out);
    fputc (*label, out);
  }
  fputs ("\"\n", out);
}

/* Copy IN to the file DEST, turning a first line "#!..." into a #line
 * directive so that the C compiler accepts it and its messages still
 * give the script's name and line numbers.
 */
static int
copy_source (FILE *in, const char *dest, const char *label)
{
  CLEANUP_FREE char *line = NULL;
  size_t size = 0;
  ssize_t len;
  FILE *out;
  bool first = true;
  int r = 0;

  out = fopen (dest, "we");
  if (out == NULL) {
    nbdkit_error ("%s: %m", dest);
    return -1;
  }
  while ((len = getline (&line, &size, in)) != -1) {
    if (first && strncmp (line, "#!", 2) == 0)
      write_line_directive (out, label);
    else
      fwrite (line, 1, len, out);
    first = false;
  }
  if (ferror (in)) {
    nbdkit_error ("reading %s: %m", label);
    r = -1;
  }
  if (ferror (out) | (fclose (out) == EOF)) {
    nbdkit_error ("%s: %m", dest);
    r = -1;
  }
  return r;
}

/* Whether the file starts with "#!" (an executable nbdkit cc script). */
static bool
has_shebang (const char *path)
{
  char buf[2];
  FILE *fp = fopen (path, "re");
  bool r;

  if (fp == NULL)
    return false;
  r = fread (buf, 1, 2, fp) == 2 && buf[0] == '#' && buf[1] == '!';
  fclose (fp);
  return r;
}

/* script=- : the source is standard input, copied now. */
static int
source_from_stdin (char **source)
{
  if (!nbdkit_stdio_safe ()) {
    nbdkit_error ("script=-: standard input is in use by the client (-s), "
                  "the C source cannot be read from it");
    return -1;
  }
  if (source_tmpdir () == NULL)
    return -1;
  if (asprintf (source, "%s/stdin.c", tmpdir) == -1) {
    *source = NULL;
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  return copy_source (stdin, *source, "<stdin>");
}

/* A script with a #! line is compiled from a copy without it, under the
 * same name (the compiler chooses the language by the file extension).
 */
static int
source_from_shebang_script (const char *path, char **source)
{
  const char *base = strrchr (path, '/') + 1;
  FILE *in;
  int r;

  if (source_tmpdir () == NULL)
    return -1;
  if (asprintf (source, "%s/%s%s", tmpdir, base,
                strchr (base, '.') ? "" : ".c") == -1) {
    *source = NULL;
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  in = fopen (path, "re");
  if (in == NULL) {
    nbdkit_error ("%s: %m", path);
    return -1;
  }
  r = copy_source (in, *source, path);
  fclose (in);
  script_dir = base - 1 == path ? strdup ("/") :
    strndup (path, base - 1 - path);
  if (script_dir == NULL) {
    nbdkit_error ("strndup: %m");
    return -1;
  }
  return r;
}

/* script=VALUE: set *SOURCE to the file to compile. */
int
source_prepare (const char *value, char **source)
{
  CLEANUP_FREE char *path = NULL;
  struct stat st;

  if (strcmp (value, "-") == 0)
    return source_from_stdin (source);
  path = nbdkit_realpath (value);
  if (path == NULL)
    return -1;
  if (stat (path, &st) == -1 || access (path, R_OK) == -1) {
    nbdkit_error ("script=%s: %m", value);
    return -1;
  }
  if (!S_ISREG (st.st_mode)) {
    nbdkit_error ("script=%s: not a regular file", value);
    return -1;
  }
  if (has_shebang (path))
    return source_from_shebang_script (path, source);
  *source = path;
  path = NULL;
  return 0;
}
