/* SPDX-License-Identifier: BSD-3-Clause
 * The example2 plugin: serves one file, read-only.  Each connection
 * opens the file itself, the way a plugin with per-connection state
 * would.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "fileio.h"

/* -D example2.extra=1: log every read. */
NBDKIT_DLL_PUBLIC int example2_debug_extra = 0;

/* The file to serve, an absolute path (nbdkit may change directory). */
static char *filename;

static void
example2_unload (void)
{
  free (filename);
}

static int
example2_config (const char *key, const char *value)
{
  if (strcmp (key, "file") == 0) {
    free (filename);
    filename = nbdkit_realpath (value);
    if (filename == NULL)
      return -1;
  }
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

/* Check the file now so that a mistake stops nbdkit before it serves. */
static int
example2_config_complete (void)
{
  struct stat st;

  if (filename == NULL) {
    nbdkit_error ("you must supply the file=<FILENAME> parameter "
                  "after the plugin name on the command line");
    return -1;
  }
  if (stat (filename, &st) == -1) {
    nbdkit_error ("file=%s: %m", filename);
    return -1;
  }
  if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)) {
    nbdkit_error ("file=%s: not a regular file or block device", filename);
    return -1;
  }
  if (access (filename, R_OK) == -1) {
    nbdkit_error ("file=%s: %m", filename);
    return -1;
  }
  return 0;
}

#define example2_config_help \
  "file=<FILENAME>     (required) The filename to serve."

struct example2_handle {
  int fd;
};

static void *
example2_open (int readonly)
{
  struct example2_handle *h = malloc (sizeof *h);

  if (h == NULL) {
    nbdkit_error ("malloc: %m");
    return NULL;
  }
  h->fd = open (filename, O_RDONLY | O_CLOEXEC);
  if (h->fd == -1) {
    nbdkit_error ("open: %s: %m", filename);
    free (h);
    return NULL;
  }
  return h;
}

static void
example2_close (void *handle)
{
  struct example2_handle *h = handle;

  close (h->fd);
  free (h);
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS

/* lseek works for block devices as well as files. */
static int64_t
example2_get_size (void *handle)
{
  struct example2_handle *h = handle;
  off_t size = lseek (h->fd, 0, SEEK_END);

  if (size == -1) {
    nbdkit_error ("lseek: %s: %m", filename);
    return -1;
  }
  return size;
}

/* No pwrite: the server makes the export read-only. */
static int
example2_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                uint32_t flags)
{
  struct example2_handle *h = handle;

  if (example2_debug_extra)
    nbdkit_debug ("read count=%" PRIu32 " offset=%" PRIu64,
                  count, offset);
  if (full_pread (h->fd, buf, count, offset) == -1) {
    nbdkit_error ("pread: %s: %m", filename);
    return -1;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "example2",
  .version            = PACKAGE_VERSION,
  .description        = "Serves one file, read-only",
  .unload             = example2_unload,
  .config             = example2_config,
  .config_complete    = example2_config_complete,
  .config_help        = example2_config_help,
  .open               = example2_open,
  .close              = example2_close,
  .get_size           = example2_get_size,
  .pread              = example2_pread,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
