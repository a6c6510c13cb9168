/* SPDX-License-Identifier: BSD-3-Clause
 * Making a disk: a sparse file formatted with mkfs(8), or whatever
 * command= makes, with the parameters as its shell variables.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "disk.h"
#include "run-command.h"
#include "utils.h"

static bool
is_shell_name (const char *s)
{
  size_t i;

  if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
        s[0] == '_'))
    return false;
  for (i = 1; s[i]; ++i)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return false;
  return true;
}

/* mkfs -t TYPE runs mkfs.TYPE: a name, never an option or a path. */
static bool
is_fs_type (const char *s)
{
  return s[0] != '\0' && s[0] != '-' &&
    strspn (s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "0123456789._+-") == strlen (s);
}

static int
add_var (struct disk_config *c, const char *key, const char *value)
{
  char *var;

  if (asprintf (&var, "%s=%s", key, value) == -1) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  if (string_vector_append (&c->vars, var) == -1) {
    nbdkit_error ("realloc: %m");
    free (var);
    return -1;
  }
  return 0;
}

int
disk_config_set (struct disk_config *c, const char *key, const char *value)
{
  if (strcmp (key, "size") == 0) {
    const char *error;
    c->size = parse_human_size (value, &error);
    if (c->size == -1) {
      nbdkit_error ("size=%s: %s", value, error);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "command") == 0) {
    c->command = value;
    return 0;
  }
  if (strcmp (key, "disk") == 0) {
    nbdkit_error ("disk=%s: the 'disk' parameter cannot be set on the "
                  "command line (it is the file the command makes)", value);
    return -1;
  }
  if (!is_shell_name (key)) {
    nbdkit_error ("%s=%s: '%s' is not usable as a shell variable name",
                  key, value, key);
    return -1;
  }
  if (strcmp (key, "type") == 0) {
    if (!is_fs_type (value)) {
      nbdkit_error ("type=%s: not a filesystem type name", value);
      return -1;
    }
    c->type = value;
  }
  else if (strcmp (key, "label") == 0)
    c->label = value;
  /* Every other parameter (and type, label) is a variable. */
  return add_var (c, key, value);
}

int
disk_config_check (const struct disk_config *c)
{
  if (c->size == -1) {
    nbdkit_error ("the size=<SIZE> parameter is required");
    return -1;
  }
  return 0;
}

void
disk_config_free (struct disk_config *c)
{
  string_vector_free_all (&c->vars);
}

static int
run_mkfs (const struct disk_config *c, const char *path)
{
  const char *type = c->type ? c->type : "ext4";
  const char *argv[8];
  size_t i = 0;
  int fd;

  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd == -1) {
    nbdkit_error ("%s: %m", path);
    return -1;
  }
  if (ftruncate (fd, c->size) == -1) {
    nbdkit_error ("%s: truncate to size=%" PRIi64 ": %m", path, c->size);
    close (fd);
    return -1;
  }
  close (fd);

  argv[i++] = "mkfs";
  argv[i++] = "-t";
  argv[i++] = type;
  if (c->label) {
    /* The FAT tools take the volume name with -n. */
    bool fat = strcmp (type, "vfat") == 0 || strcmp (type, "fat") == 0 ||
      strcmp (type, "msdos") == 0;
    argv[i++] = fat ? "-n" : "-L";
    argv[i++] = c->label;
  }
  argv[i++] = path;
  argv[i] = NULL;
  return run_command (NULL, (char *const *) argv, NULL, true, NULL);
}

/* command= with the variables, $disk and $size in its environment. */
static int
run_user_command (const struct disk_config *c, const char *path)
{
  CLEANUP_FREE char *disk_var = NULL, *size_var = NULL;
  CLEANUP_FREE char **env = calloc (c->vars.len + 3, sizeof *env);
  const char *argv[] = { "/bin/sh", "-c", c->command, NULL };
  size_t i;

  if (env == NULL ||
      asprintf (&disk_var, "disk=%s", path) == -1 ||
      asprintf (&size_var, "size=%" PRIi64, c->size) == -1) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  for (i = 0; i < c->vars.len; ++i)
    env[i] = c->vars.ptr[i];
  env[i++] = disk_var;
  env[i++] = size_var;
  if (run_command ("command=", (char *const *) argv, env, true, NULL) == -1)
    return -1;
  if (access (path, F_OK) == -1) {
    nbdkit_error ("command= did not create the disk file \"$disk\"");
    return -1;
  }
  return 0;
}

int
make_disk (const struct disk_config *c, const char *path)
{
  if (c->command)
    return run_user_command (c, path);
  return run_mkfs (c, path);
}
