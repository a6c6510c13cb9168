/* SPDX-License-Identifier: BSD-3-Clause
 * The example3 plugin: every connection gets its own writable scratch
 * disk, an unlinked temporary file that disappears when the client
 * disconnects.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "fileio.h"

/* Size of each connection's disk. */
static int64_t size = INT64_C (100) * 1024 * 1024;

static int
example3_config (const char *key, const char *value)
{
  if (strcmp (key, "size") == 0) {
    size = nbdkit_parse_size (value);
    if (size == -1)
      return -1;
  }
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

/* Create one disk now, so that an unusable $TMPDIR or a size the file
 * system cannot hold stops nbdkit before it serves.
 */
static int
example3_config_complete (void)
{
  const char *dir;
  int fd = make_unlinked_tmpfile ("nbdkit-example3", &dir);

  if (fd == -1) {
    nbdkit_error ("cannot create a temporary file in %s: %m", dir);
    return -1;
  }
  if (ftruncate (fd, size) == -1) {
    nbdkit_error ("size=%" PRIi64 ": cannot make a temporary file in %s "
                  "that large: %m", size, dir);
    close (fd);
    return -1;
  }
  close (fd);
  return 0;
}

#define example3_config_help \
  "size=<SIZE>  (optional) Size of the backing disk (default: 100M)"

struct example3_handle {
  int fd;                       /* the unlinked temporary file */
};

static void *
example3_open (int readonly)
{
  struct example3_handle *h = malloc (sizeof *h);
  const char *dir;

  if (h == NULL) {
    nbdkit_error ("malloc: %m");
    return NULL;
  }
  h->fd = make_unlinked_tmpfile ("nbdkit-example3", &dir);
  if (h->fd == -1) {
    nbdkit_error ("cannot create a temporary file in %s: %m", dir);
    free (h);
    return NULL;
  }
  if (ftruncate (h->fd, size) == -1) {
    nbdkit_error ("ftruncate: temporary file in %s to %" PRIi64 " bytes: %m",
                  dir, size);
    close (h->fd);
    free (h);
    return NULL;
  }
  return h;
}

static void
example3_close (void *handle)
{
  struct example3_handle *h = handle;

  close (h->fd);
  free (h);
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS

static int64_t
example3_get_size (void *handle)
{
  return size;
}

static int
example3_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                uint32_t flags)
{
  struct example3_handle *h = handle;

  if (full_pread (h->fd, buf, count, offset) == -1) {
    nbdkit_error ("pread: %m");
    return -1;
  }
  return 0;
}

static int
example3_pwrite (void *handle, const void *buf, uint32_t count,
                 uint64_t offset, uint32_t flags)
{
  struct example3_handle *h = handle;

  if (full_pwrite (h->fd, buf, count, offset) == -1) {
    nbdkit_error ("pwrite: %m");
    return -1;
  }
  return 0;
}

/* The data is thrown away at disconnect, but flush still does what a
 * client asks for.
 */
static int
example3_flush (void *handle, uint32_t flags)
{
  struct example3_handle *h = handle;

  if (fdatasync (h->fd) == -1) {
    nbdkit_error ("fdatasync: %m");
    return -1;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "example3",
  .version            = PACKAGE_VERSION,
  .description        = "A per-connection scratch disk in a temporary file",
  .config             = example3_config,
  .config_complete    = example3_config_complete,
  .config_help        = example3_config_help,
  .open               = example3_open,
  .close              = example3_close,
  .get_size           = example3_get_size,
  .pread              = example3_pread,
  .pwrite             = example3_pwrite,
  .flush              = example3_flush,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
