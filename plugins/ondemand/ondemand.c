/* SPDX-License-Identifier: BSD-3-Clause
 * The ondemand plugin: one persistent disk per export name, a file in
 * dir= made (by mkfs or command=) the first time the name is used, and
 * locked with flock while a client has it.
 */

#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "disk.h"

/* dir=: where the disks live (absolute), and an fd open on it. */
static char *dir;
static int dir_fd = -1;

/* wait=true: a second client of a name waits instead of failing. */
static bool wait_for_lock;

/* size=, type=, label=, command= and the command's variables. */
static struct disk_config config = { .size = -1 };

static void
ondemand_unload (void)
{
  if (dir_fd >= 0)
    close (dir_fd);
  free (dir);
  disk_config_free (&config);
}

static int
ondemand_config (const char *key, const char *value)
{
  if (strcmp (key, "dir") == 0) {
    free (dir);
    dir = realpath (value, NULL);
    if (dir == NULL) {
      nbdkit_error ("dir=%s: %m", value);
      return -1;
    }
  }
  else if (strcmp (key, "wait") == 0) {
    int r = nbdkit_parse_bool (value);
    if (r == -1) {
      nbdkit_error ("wait=%s: expected true or false", value);
      return -1;
    }
    wait_for_lock = r;
  }
  else
    return disk_config_set (&config, key, value);
  return 0;
}

static int
ondemand_config_complete (void)
{
  if (dir == NULL) {
    nbdkit_error ("the dir=<EXPORTSDIR> parameter is required");
    return -1;
  }
  dir_fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd == -1) {
    nbdkit_error ("dir=%s: %m", dir);
    return -1;
  }
  return disk_config_check (&config);
}

#define ondemand_config_help \
  "dir=<EXPORTSDIR>       (required) Directory holding the disks.\n" \
  "wait=true             Wait for a disk in use instead of failing.\n" \
  DISK_CONFIG_HELP

/* A name becomes a file directly in dir=: never a path, never hidden
 * (the plugin's own temporary directories start with '.'), never
 * anything a client could use to step outside the directory.
 */
static bool
is_valid_name (const char *name)
{
  size_t len = strlen (name);

  return len > 0 && len <= NAME_MAX && strpbrk (name, "./:") == NULL;
}

static int
ondemand_list_exports (int readonly, int is_tls,
                       struct nbdkit_exports *exports)
{
  DIR *d = opendir (dir);
  struct dirent *e;

  if (d == NULL) {
    nbdkit_error ("opendir: %s: %m", dir);
    return -1;
  }
  while ((e = readdir (d)) != NULL) {
    struct stat st;

    if (!is_valid_name (e->d_name) ||
        fstatat (dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
        !S_ISREG (st.st_mode))
      continue;
    if (nbdkit_add_export (exports, e->d_name, NULL) == -1) {
      closedir (d);
      return -1;
    }
  }
  closedir (d);
  return 0;
}

/* Make the disk NAME in a private directory inside dir= and link it
 * into place: a client never sees a half-made disk, and if two make
 * the same new name at once the first one made wins.
 */
static int
create_disk (const char *name)
{
  CLEANUP_FREE char *tmp = NULL, *path = NULL;
  int r = -1;

  if (asprintf (&tmp, "%s/.ondemandXXXXXX", dir) == -1) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  if (mkdtemp (tmp) == NULL) {
    nbdkit_error ("mkdtemp: %s: %m", tmp);
    return -1;
  }
  if (asprintf (&path, "%s/%s", tmp, name) == -1) {
    nbdkit_error ("asprintf: %m");
    goto out;
  }
  if (make_disk (&config, path) == -1)
    goto out;
  if (linkat (AT_FDCWD, path, dir_fd, name, 0) == -1 && errno != EEXIST) {
    nbdkit_error ("link: %s/%s: %m", dir, name);
    goto out;
  }
  r = 0;
 out:
  if (path)
    unlink (path);
  if (rmdir (tmp) == -1)
    nbdkit_error ("rmdir: %s: %m (the command left files there)", tmp);
  return r;
}

static int
lock_disk (int fd, const char *name)
{
  while (flock (fd, LOCK_EX | (wait_for_lock ? 0 : LOCK_NB)) == -1) {
    if (errno == EINTR)
      continue;
    if (errno == EWOULDBLOCK)
      nbdkit_error ("%s: filesystem is locked by another client", name);
    else
      nbdkit_error ("flock: %s: %m", name);
    return -1;
  }
  return 0;
}

static void *
ondemand_open (int readonly)
{
  const char *name = nbdkit_export_name ();
  int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW;
  struct disk_handle *h;
  int fd;

  if (name == NULL || name[0] == '\0')
    name = "default";
  if (!is_valid_name (name)) {
    nbdkit_error ("invalid export name \"%s\": it must be at most %d bytes "
                  "and contain no '.', '/' or ':'", name, NAME_MAX);
    errno = EINVAL;
    return NULL;
  }
  fd = openat (dir_fd, name, flags);
  if (fd == -1 && errno == ENOENT) {
    nbdkit_debug ("ondemand: creating export \"%s\"", name);
    if (create_disk (name) == -1)
      return NULL;
    fd = openat (dir_fd, name, flags);
  }
  if (fd == -1) {
    nbdkit_error ("open: %s/%s: %m", dir, name);
    return NULL;
  }
  if (lock_disk (fd, name) == -1 || (h = disk_handle_new (fd)) == NULL) {
    close (fd);
    return NULL;
  }
  return h;
}

/* Closing the file also releases the lock. */
static void
ondemand_close (void *handle)
{
  disk_handle_close (handle);
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static struct nbdkit_plugin plugin = {
  .name               = "ondemand",
  .longname           = "nbdkit ondemand plugin",
  .version            = PACKAGE_VERSION,
  .description        = "Filesystems created on demand, one per export name",
  .unload             = ondemand_unload,
  .config             = ondemand_config,
  .config_complete    = ondemand_config_complete,
  .config_help        = ondemand_config_help,
  .magic_config_key   = "size",
  .list_exports       = ondemand_list_exports,
  .open               = ondemand_open,
  .close              = ondemand_close,
  .get_size           = disk_get_size,
  .can_trim           = disk_can_trim,
  .can_fast_zero      = disk_can_fast_zero,
  .pread              = disk_pread,
  .pwrite             = disk_pwrite,
  .flush              = disk_flush,
  .trim               = disk_trim,
  .zero               = disk_zero,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
