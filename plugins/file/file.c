/* SPDX-License-Identifier: BSD-3-Clause
 * The file plugin: serves a local file or block device (file=), or every
 * file in a directory chosen by export name (dir=).  Zeroing and trimming
 * use fallocate; holes are found with SEEK_DATA/SEEK_HOLE.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/fs.h>
#endif

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "file.h"

/* The file to serve (file=), made absolute; NULL in dir= mode. */
static char *filename;

/* The directory whose files are the exports (dir=), made absolute. */
static char *directory;

/* Descriptor of the directory, opened once configuration is complete. */
static int dirfd_exports = -1;

/* cache=none: keep served data out of the page cache. */
static bool cache_none;

/* fadvise=: the access pattern hinted to the kernel for each file. */
static int fadvise_mode = POSIX_FADV_NORMAL;

static int
file_config (const char *key, const char *value)
{
  if (strcmp (key, "file") == 0) {
    free (filename);
    filename = nbdkit_realpath (value);
    if (filename == NULL)
      return -1;
  }
  else if (strcmp (key, "dir") == 0 || strcmp (key, "directory") == 0) {
    free (directory);
    directory = nbdkit_realpath (value);
    if (directory == NULL)
      return -1;
  }
  else if (strcmp (key, "cache") == 0) {
    if (strcmp (value, "default") == 0)
      cache_none = false;
    else if (strcmp (value, "none") == 0)
      cache_none = true;
    else {
      nbdkit_error ("unknown cache mode: %s", value);
      return -1;
    }
  }
  else if (strcmp (key, "fadvise") == 0) {
    if (strcmp (value, "normal") == 0)
      fadvise_mode = POSIX_FADV_NORMAL;
    else if (strcmp (value, "random") == 0)
      fadvise_mode = POSIX_FADV_RANDOM;
    else if (strcmp (value, "sequential") == 0)
      fadvise_mode = POSIX_FADV_SEQUENTIAL;
    else {
      nbdkit_error ("unknown fadvise mode: %s", value);
      return -1;
    }
  }
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

static int
file_config_complete (void)
{
  struct stat st;

  if (filename == NULL && directory == NULL) {
    nbdkit_error ("you must supply either [file=]<FILENAME> or "
                  "dir=<DIRNAME> parameter after the plugin name "
                  "on the command line");
    return -1;
  }
  if (filename != NULL && directory != NULL) {
    nbdkit_error ("file= and dir= cannot be used at the same time");
    return -1;
  }

  if (filename) {
    if (stat (filename, &st) == -1) {
      nbdkit_error ("stat: %s: %m", filename);
      return -1;
    }
    if (S_ISDIR (st.st_mode)) {
      nbdkit_error ("use dir= to serve files within %s", filename);
      return -1;
    }
    if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode)) {
      nbdkit_error ("file is not regular or block device: %s", filename);
      return -1;
    }
    return 0;
  }

  dirfd_exports = open (directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd_exports == -1) {
    nbdkit_error ("open: %s: %m", directory);
    return -1;
  }
  return 0;
}

#define file_config_help \
  "[file=]<FILENAME>      The file or block device to serve.\n" \
  "dir=<DIRNAME>          Serve every file in this directory as an export\n" \
  "                       (directory=<DIRNAME> is the same).\n" \
  "cache=default|none     Whether served data stays in the page cache.\n" \
  "fadvise=normal|random|sequential\n" \
  "                       Access pattern hinted to the kernel."

static void
file_unload (void)
{
  if (dirfd_exports >= 0)
    close (dirfd_exports);
  free (filename);
  free (directory);
}

static void
file_dump_plugin (void)
{
#ifdef BLKSSZGET
  printf ("file_blksszget=yes\n");
#endif
#ifdef BLKZEROOUT
  printf ("file_blkzeroout=yes\n");
#endif
#ifdef FALLOC_FL_PUNCH_HOLE
  printf ("file_falloc_fl_punch_hole=yes\n");
#endif
#ifdef FALLOC_FL_ZERO_RANGE
  printf ("file_falloc_fl_zero_range=yes\n");
#endif
}

static int
file_list_exports (int readonly, int is_tls, struct nbdkit_exports *exports)
{
  if (directory == NULL)
    return nbdkit_use_default_export (exports);
  return file_list_directory (dirfd_exports, directory, exports);
}

static void
handle_free (struct handle *h)
{
  if (h->fd >= 0)
    close (h->fd);
  free (h->name);
  free (h);
}

static void *
file_open (int readonly)
{
  struct handle *h = calloc (1, sizeof *h);
  const char *path = filename;
  int at = AT_FDCWD;

  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  h->fd = -1;

  if (directory) {
    path = nbdkit_export_name ();
    at = dirfd_exports;
    if (path == NULL || *path == '\0') {
      nbdkit_error ("open: no export name given: in dir= mode the client "
                    "must choose one of the files in %s", directory);
      errno = ENOENT;
      nbdkit_set_error (ENOENT);
      goto error;
    }
    if (strchr (path, '/')) {
      nbdkit_error ("open: %s: export names may not contain '/'", path);
      errno = EINVAL;
      nbdkit_set_error (EINVAL);
      goto error;
    }
  }

  h->name = strdup (path);
  if (h->name == NULL) {
    nbdkit_error ("strdup: %m");
    goto error;
  }
  if (file_open_data (h, at, path, readonly) == -1) {
    nbdkit_set_error (errno);
    goto error;
  }

  h->can_punch_hole = true;
  h->can_zero_range = true;
  h->can_fallocate = true;

  if (fadvise_mode != POSIX_FADV_NORMAL) {
    int r = posix_fadvise (h->fd, 0, 0, fadvise_mode);
    if (r != 0)
      nbdkit_debug ("posix_fadvise: %s: %s, ignoring", h->name, strerror (r));
  }
  return h;

 error:
  {
    int saved_errno = errno;
    handle_free (h);
    errno = saved_errno;
  }
  return NULL;
}

static void
file_close (void *handle)
{
  handle_free (handle);
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
file_get_size (void *handle)
{
  struct handle *h = handle;
  off_t r;

#ifdef BLKGETSIZE64
  if (h->is_block_device) {
    uint64_t bytes;

    if (ioctl (h->fd, BLKGETSIZE64, &bytes) == 0)
      return bytes;
  }
#endif
  r = lseek (h->fd, 0, SEEK_END);
  if (r == -1) {
    nbdkit_error ("lseek: %s: %m", h->name);
    return -1;
  }
  return r;
}

static int
file_can_write (void *handle)
{
  struct handle *h = handle;

  return h->can_write;
}

/* Every connection opens the same file, and flush (fdatasync) covers the
 * writes of all of them.
 */
static int
file_can_multi_conn (void *handle)
{
  return 1;
}

static int
file_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

static int
file_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

/* file_zero fails fast with ENOTSUP whenever it would have to write. */
static int
file_can_fast_zero (void *handle)
{
  return 1;
}

/* SEEK_DATA/SEEK_HOLE work on most Linux file systems; a file system
 * without them answers EINVAL, and then every extent is data.
 */
static int
file_can_extents (void *handle)
{
  struct handle *h = handle;

  if (h->is_block_device)
    return 0;
  if (lseek (h->fd, 0, SEEK_DATA) == -1 && errno != ENXIO) {
    nbdkit_debug ("lseek SEEK_DATA: %s: %m: extents are not available",
                  h->name);
    return 0;
  }
  return 1;
}

/* Linux sysfs knows whether the disk behind a block device rotates.
 * Partitions keep that flag in their parent device's queue.
 */
static int
file_is_rotational (void *handle)
{
  struct handle *h = handle;
  struct stat st;
  char path[128], c = '0';
  FILE *fp;

  if (!h->is_block_device || fstat (h->fd, &st) == -1)
    return 0;
  snprintf (path, sizeof path, "/sys/dev/block/%u:%u/queue/rotational",
            major (st.st_rdev), minor (st.st_rdev));
  fp = fopen (path, "re");
  if (fp == NULL) {
    snprintf (path, sizeof path, "/sys/dev/block/%u:%u/../queue/rotational",
              major (st.st_rdev), minor (st.st_rdev));
    fp = fopen (path, "re");
  }
  if (fp == NULL)
    return 0;
  if (fread (&c, 1, 1, fp) != 1)
    c = '0';
  fclose (fp);
  return c == '1';
}

/* cache=none: drop the pages of a range from the page cache.  Written
 * pages must reach the disk first, or the kernel keeps them.
 */
static void
evict_range (struct handle *h, uint64_t offset, uint32_t count, bool written)
{
  if (written)
    sync_file_range (h->fd, offset, count,
                     SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                     SYNC_FILE_RANGE_WAIT_AFTER);
  posix_fadvise (h->fd, offset, count, POSIX_FADV_DONTNEED);
}

static int
file_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
            uint32_t flags)
{
  struct handle *h = handle;
  char *p = buf;
  uint32_t left = count;

  while (left > 0) {
    ssize_t r = pread (h->fd, p, left, offset + (p - (char *) buf));

    if (r == -1) {
      if (errno == EINTR)
        continue;
      nbdkit_error ("pread: %s: %m", h->name);
      return -1;
    }
    if (r == 0) {
      nbdkit_error ("pread: %s: unexpected end of file", h->name);
      errno = EIO;
      return -1;
    }
    p += r;
    left -= r;
  }
  if (cache_none)
    evict_range (h, offset, count, false);
  return 0;
}

static int
file_sync (struct handle *h)
{
  while (fdatasync (h->fd) == -1) {
    if (errno != EINTR) {
      nbdkit_error ("fdatasync: %s: %m", h->name);
      return -1;
    }
  }
  return 0;
}

static int
file_pwrite (void *handle, const void *buf, uint32_t count, uint64_t offset,
             uint32_t flags)
{
  struct handle *h = handle;
  const char *p = buf;
  uint32_t left = count;

  while (left > 0) {
    ssize_t r = pwrite (h->fd, p, left, offset + (p - (const char *) buf));

    if (r == -1) {
      if (errno == EINTR)
        continue;
      nbdkit_error ("pwrite: %s: %m", h->name);
      return -1;
    }
    p += r;
    left -= r;
  }
  if ((flags & NBDKIT_FLAG_FUA) && file_sync (h) == -1)
    return -1;
  if (cache_none)
    evict_range (h, offset, count, true);
  return 0;
}

static int
file_flush (void *handle, uint32_t flags)
{
  return file_sync (handle);
}

static int
file_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = handle;

  if (file_punch_hole (h, count, offset) == -1) {
    nbdkit_error ("fallocate: punch hole: %s: %m", h->name);
    return -1;
  }
  if ((flags & NBDKIT_FLAG_FUA) && file_sync (h) == -1)
    return -1;
  return 0;
}

static int
file_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = handle;

  if (file_zero_range (h, count, offset, flags) == -1) {
    /* EOPNOTSUPP makes the server write zeroes, or fail a fast zero. */
    if (errno != EOPNOTSUPP)
      nbdkit_error ("zero: %s: %m", h->name);
    return -1;
  }
  if ((flags & NBDKIT_FLAG_FUA) && file_sync (h) == -1)
    return -1;
  return 0;
}

static int
file_extents (void *handle, uint32_t count, uint64_t offset,
              uint32_t flags, struct nbdkit_extents *extents)
{
  struct handle *h = handle;
  const uint64_t end = offset + count;
  const bool req_one = flags & NBDKIT_FLAG_REQ_ONE;

  while (offset < end) {
    off_t pos = lseek (h->fd, offset, SEEK_DATA);

    if (pos == -1) {
      if (errno != ENXIO) {
        nbdkit_error ("lseek: SEEK_DATA: %s: %m", h->name);
        return -1;
      }
      /* No data after offset: the rest is a hole. */
      pos = end;
    }
    if ((uint64_t) pos > offset) {
      uint64_t hole_end = (uint64_t) pos < end ? (uint64_t) pos : end;

      if (nbdkit_add_extent (extents, offset, hole_end - offset,
                             NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) == -1)
        return -1;
      offset = hole_end;
      if (req_one || offset >= end)
        break;
    }

    pos = lseek (h->fd, offset, SEEK_HOLE);
    if (pos == -1) {
      if (errno != ENXIO) {
        nbdkit_error ("lseek: SEEK_HOLE: %s: %m", h->name);
        return -1;
      }
      /* The file shrank under us: report the rest as data. */
      pos = end;
    }
    if ((uint64_t) pos <= offset) {
      nbdkit_error ("lseek: SEEK_HOLE: %s: unexpected result", h->name);
      errno = EIO;
      return -1;
    }
    pos = (uint64_t) pos < end ? (uint64_t) pos : end;
    if (nbdkit_add_extent (extents, offset, pos - offset, 0) == -1)
      return -1;
    offset = pos;
    if (req_one)
      break;
  }
  return 0;
}

/* Prefetch: ask the kernel to start reading the range into its cache. */
static int
file_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct handle *h = handle;
  int r;

  if (cache_none)
    return 0;
  r = posix_fadvise (h->fd, offset, count, POSIX_FADV_WILLNEED);
  if (r != 0) {
    errno = r;
    nbdkit_error ("posix_fadvise: %s: %m", h->name);
    return -1;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "file",
  .longname           = "nbdkit file plugin",
  .version            = PACKAGE_VERSION,
  .description        = "Serves a local file or block device",
  .unload             = file_unload,
  .config             = file_config,
  .config_complete    = file_config_complete,
  .config_help        = file_config_help,
  .magic_config_key   = "file",
  .dump_plugin        = file_dump_plugin,
  .list_exports       = file_list_exports,
  .open               = file_open,
  .close              = file_close,
  .get_size           = file_get_size,
  .can_write          = file_can_write,
  .can_multi_conn     = file_can_multi_conn,
  .can_fua            = file_can_fua,
  .can_cache          = file_can_cache,
  .can_fast_zero      = file_can_fast_zero,
  .can_extents        = file_can_extents,
  .is_rotational      = file_is_rotational,
  .pread              = file_pread,
  .pwrite             = file_pwrite,
  .flush              = file_flush,
  .trim               = file_trim,
  .zero               = file_zero,
  .extents            = file_extents,
  .cache              = file_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
