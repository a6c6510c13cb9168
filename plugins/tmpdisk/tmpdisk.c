/* SPDX-License-Identifier: BSD-3-Clause
 * The tmpdisk plugin: every connection gets a new disk of its own,
 * made by mkfs (or command=) in $TMPDIR and deleted when it closes.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "disk.h"

/* size=, type=, label=, command= and the command's variables. */
static struct disk_config config = { .size = -1 };

static void
tmpdisk_unload (void)
{
  disk_config_free (&config);
}

static int
tmpdisk_config (const char *key, const char *value)
{
  return disk_config_set (&config, key, value);
}

static int
tmpdisk_config_complete (void)
{
  return disk_config_check (&config);
}

#define tmpdisk_config_help DISK_CONFIG_HELP

/* The disk is made in a private directory; once it is open neither
 * name is needed, so both go at once and the space is freed when the
 * connection closes the file, however nbdkit ends.
 */
static void *
tmpdisk_open (int readonly)
{
  const char *tmpdir = getenv ("TMPDIR");
  CLEANUP_FREE char *dir = NULL, *path = NULL;
  struct disk_handle *h = NULL;
  int fd = -1;

  if (tmpdir == NULL || *tmpdir == '\0')
    tmpdir = "/var/tmp";
  if (asprintf (&dir, "%s/tmpdiskXXXXXX", tmpdir) == -1) {
    nbdkit_error ("asprintf: %m");
    return NULL;
  }
  if (mkdtemp (dir) == NULL) {
    nbdkit_error ("mkdtemp: %s: %m", dir);
    return NULL;
  }
  if (asprintf (&path, "%s/disk", dir) == -1) {
    nbdkit_error ("asprintf: %m");
    goto out;
  }
  if (make_disk (&config, path) == -1)
    goto out;
  fd = open (path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd == -1) {
    nbdkit_error ("open: %s: %m", path);
    goto out;
  }
  h = disk_handle_new (fd);
  if (h == NULL)
    close (fd);
 out:
  if (path)
    unlink (path);
  if (rmdir (dir) == -1)
    nbdkit_debug ("rmdir: %s: %m (the command left files there)", dir);
  return h;
}

static void
tmpdisk_close (void *handle)
{
  disk_handle_close (handle);
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static struct nbdkit_plugin plugin = {
  .name               = "tmpdisk",
  .longname           = "nbdkit temporary disk plugin",
  .version            = PACKAGE_VERSION,
  .description        = "A fresh temporary filesystem for each client",
  .unload             = tmpdisk_unload,
  .config             = tmpdisk_config,
  .config_complete    = tmpdisk_config_complete,
  .config_help        = tmpdisk_config_help,
  .magic_config_key   = "size",
  .open               = tmpdisk_open,
  .close              = tmpdisk_close,
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
