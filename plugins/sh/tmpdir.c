/* SPDX-License-Identifier: BSD-3-Clause
 * $tmpdir: one private directory shared by every method call of the
 * script, created on first use and removed with everything in it when
 * the plugin is unloaded or nbdkit exits (even after a failed start).
 */

#include <config.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "internal.h"

/* The directory, or NULL before first use / after removal. */
static char *tmpdir;

/* The process that made it: children that exit must not remove it. */
static pid_t tmpdir_owner;

static int
remove_entry (const char *path, const struct stat *sb, int type,
              struct FTW *ftw)
{
  if (remove (path) == -1 && errno != ENOENT)
    nbdkit_debug ("tmpdir: remove %s: %m", path);
  return 0;
}

void
script_tmpdir_remove (void)
{
  if (tmpdir == NULL || getpid () != tmpdir_owner)
    return;
  /* Depth first, not following symlinks the script left behind. */
  nftw (tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free (tmpdir);
  tmpdir = NULL;
}

/* The server process (after nbdkit's fork) owns the directory now. */
void
script_tmpdir_adopt (void)
{
  if (tmpdir)
    tmpdir_owner = getpid ();
}

/* Registered with atexit: nbdkit exits without unloading plugins when
 * configuration fails.  In a dlopen'd module glibc runs it at dlclose
 * instead if that comes first.
 */
static void
remove_at_exit (void)
{
  script_tmpdir_remove ();
}

const char *
script_tmpdir (void)
{
  static bool registered;
  const char *base;

  if (tmpdir)
    return tmpdir;

  base = getenv ("TMPDIR");
  if (base == NULL || *base == '\0')
    base = "/tmp";
  if (asprintf (&tmpdir, "%s/nbdkitXXXXXX", base) == -1) {
    tmpdir = NULL;
    nbdkit_error ("asprintf: %m");
    return NULL;
  }
  if (mkdtemp (tmpdir) == NULL) {
    nbdkit_error ("mkdtemp: %s: %m", tmpdir);
    free (tmpdir);
    tmpdir = NULL;
    return NULL;
  }
  tmpdir_owner = getpid ();
  if (!registered) {
    atexit (remove_at_exit);
    registered = true;
  }
  nbdkit_debug ("tmpdir: %s", tmpdir);
  return tmpdir;
}
