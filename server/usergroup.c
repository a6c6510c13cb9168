/* SPDX-License-Identifier: BSD-3-Clause
 * -u USER and -g GROUP: resolved before anything is bound (so a typo
 * fails early), applied once the listeners are open.
 */

#include <config.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

static uid_t uid_to_set;
static gid_t gid_to_set;

/* A user or group given by name or number: -1 if neither. */
static long
lookup_id (const char *name, bool is_user)
{
  char *end;
  long id;

  if (is_user) {
    struct passwd *pw = getpwnam (name);
    if (pw)
      return pw->pw_uid;
  }
  else {
    struct group *gr = getgrnam (name);
    if (gr)
      return gr->gr_gid;
  }
  errno = 0;
  id = strtol (name, &end, 10);
  if (*name && *end == '\0' && errno == 0 && id >= 0 && id < INT_MAX)
    return id;
  return -1;
}

void
usergroup_resolve (void)
{
  long id;

  if (config.user) {
    if ((id = lookup_id (config.user, true)) == -1) {
      fprintf (stderr, "%s: -u: unknown user '%s'\n",
               config.program_name, config.user);
      exit (EXIT_FAILURE);
    }
    uid_to_set = id;
  }
  if (config.group) {
    if ((id = lookup_id (config.group, false)) == -1) {
      fprintf (stderr, "%s: -g: unknown group '%s'\n",
               config.program_name, config.group);
      exit (EXIT_FAILURE);
    }
    gid_to_set = id;
  }
}

/* Give up root once the sockets are bound. */
void
usergroup_change (void)
{
  if (config.group) {
    gid_t gid = gid_to_set;
    if (setgroups (1, &gid) == -1 || setgid (gid) == -1) {
      fprintf (stderr, "%s: setgid: %s: %m\n",
               config.program_name, config.group);
      exit (EXIT_FAILURE);
    }
    debug ("changed group to %s", config.group);
  }
  if (config.user) {
    uid_t uid = uid_to_set;
    if (!config.group) {
      struct passwd *pw = getpwuid (uid);
      if (pw && (initgroups (pw->pw_name, pw->pw_gid) == -1 ||
                 setgid (pw->pw_gid) == -1)) {
        fprintf (stderr, "%s: setgid: %m\n", config.program_name);
        exit (EXIT_FAILURE);
      }
    }
    if (setuid (uid) == -1) {
      fprintf (stderr, "%s: setuid: %s: %m\n",
               config.program_name, config.user);
      exit (EXIT_FAILURE);
    }
    debug ("changed user to %s", config.user);
  }
}
