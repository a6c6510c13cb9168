/* SPDX-License-Identifier: BSD-3-Clause
 * The split plugin: several files, given in order with file=, served as
 * one disk made of their contents end to end.  A request that crosses
 * the end of one file continues in the next.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "fileio.h"
#include "utils.h"
#include "vector.h"

/* One file of the disk. */
struct file {
  char *name;                   /* absolute path */
  int fd;                       /* -1 until config_complete */
  uint64_t offset;              /* where it starts in the disk */
  uint64_t size;
  bool can_punch;               /* false once punching a hole failed */
};
DEFINE_VECTOR_TYPE (file_vector, struct file);

/* The files in command line order; empty files are dropped once sized. */
static file_vector files;

/* The disk's size, the sum of the files' sizes. */
static uint64_t total_size;

/* False if some file could only be opened read-only. */
static bool writable = true;

static void
split_unload (void)
{
  size_t i;

  for (i = 0; i < files.len; ++i) {
    if (files.ptr[i].fd >= 0)
      close (files.ptr[i].fd);
    free (files.ptr[i].name);
  }
  file_vector_reset (&files);
}

static int
split_config (const char *key, const char *value)
{
  struct file f = { .fd = -1, .can_punch = true };

  if (strcmp (key, "file") != 0) {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  f.name = nbdkit_realpath (value);
  if (f.name == NULL)
    return -1;
  if (file_vector_append (&files, f) == -1) {
    nbdkit_error ("file=%s: %m", value);
    free (f.name);
    return -1;
  }
  return 0;
}

/* Open one file, read-write if possible, and learn its size. */
static int
open_file (struct file *f)
{
  struct stat st;

  f->fd = open (f->name, O_RDWR | O_CLOEXEC);
  if (f->fd == -1 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
    f->fd = open (f->name, O_RDONLY | O_CLOEXEC);
    if (f->fd >= 0) {
      nbdkit_debug ("file=%s is read-only, so is the disk", f->name);
      writable = false;
    }
  }
  if (f->fd == -1) {
    nbdkit_error ("file=%s: %m", f->name);
    return -1;
  }
  if (fstat (f->fd, &st) == -1) {
    nbdkit_error ("file=%s: fstat: %m", f->name);
    return -1;
  }
  if (!S_ISREG (st.st_mode)) {
    nbdkit_error ("file=%s: not a regular file (the split plugin serves "
                  "only plain files)", f->name);
    return -1;
  }
  f->size = st.st_size;
  return 0;
}

/* Open every file now, so that a bad one stops nbdkit before serving. */
static int
split_config_complete (void)
{
  size_t i, kept = 0;

  if (files.len == 0) {
    nbdkit_error ("you must supply at least one file=<FILENAME> parameter");
    return -1;
  }
  for (i = 0; i < files.len; ++i) {
    struct file *f = &files.ptr[i];

    if (open_file (f) == -1)
      return -1;
    if (f->size > INT64_MAX - total_size) {
      nbdkit_error ("file=%s: the files together are larger than "
                    "the largest disk nbdkit can serve", f->name);
      return -1;
    }
    f->offset = total_size;
    total_size += f->size;
    /* An empty file holds no part of the disk. */
    if (f->size == 0) {
      close (f->fd);
      free (f->name);
    }
    else
      files.ptr[kept++] = *f;
  }
  files.len = kept;
  return 0;
}

#define split_config_help \
  "[file=]<FILENAME>  (required) File(s) to serve, in order (repeatable)."

static void *
split_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

/* pread/pwrite on shared descriptors need no locking. */
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
split_get_size (void *handle)
{
  return total_size;
}

static int
split_can_write (void *handle)
{
  return writable;
}

/* Every connection uses the same files and flush syncs all of them. */
static int
split_can_multi_conn (void *handle)
{
  return 1;
}

/* Writes sync the files they touch when asked (FUA). */
static int
split_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

static int
split_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

/* The file holding OFFSET, which is inside the disk. */
static struct file *
file_at (uint64_t offset)
{
  size_t lo = 0, hi = files.len;

  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (files.ptr[mid].offset <= offset)
      lo = mid;
    else
      hi = mid;
  }
  assert (offset >= files.ptr[lo].offset &&
          offset - files.ptr[lo].offset < files.ptr[lo].size);
  return &files.ptr[lo];
}

/* The part of [OFFSET, OFFSET+COUNT) that lies in file F. */
static uint32_t
span_in_file (const struct file *f, uint32_t count, uint64_t offset)
{
  return MIN (count, f->offset + f->size - offset);
}

static int
split_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
             uint32_t flags)
{
  char *p = buf;

  while (count > 0) {
    struct file *f = file_at (offset);
    uint32_t n = span_in_file (f, count, offset);

    if (full_pread (f->fd, p, n, offset - f->offset) == -1) {
      nbdkit_error ("pread: %s: %m", f->name);
      return -1;
    }
    p += n;
    offset += n;
    count -= n;
  }
  return 0;
}

static int
split_flush (void *handle, uint32_t flags)
{
  size_t i;

  for (i = 0; i < files.len; ++i) {
    if (fdatasync (files.ptr[i].fd) == -1) {
      nbdkit_error ("fdatasync: %s: %m", files.ptr[i].name);
      return -1;
    }
  }
  return 0;
}

static int
split_pwrite (void *handle, const void *buf, uint32_t count,
              uint64_t offset, uint32_t flags)
{
  const char *p = buf;

  while (count > 0) {
    struct file *f = file_at (offset);
    uint32_t n = span_in_file (f, count, offset);

    if (full_pwrite (f->fd, p, n, offset - f->offset) == -1) {
      nbdkit_error ("pwrite: %s: %m", f->name);
      return -1;
    }
    if ((flags & NBDKIT_FLAG_FUA) && fdatasync (f->fd) == -1) {
      nbdkit_error ("fdatasync: %s: %m", f->name);
      return -1;
    }
    p += n;
    offset += n;
    count -= n;
  }
  return 0;
}

/* Trim punches holes where the file system can; elsewhere it is a
 * no-op, which trim (only advice) allows.
 */
static int
split_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  while (count > 0) {
    struct file *f = file_at (offset);
    uint32_t n = span_in_file (f, count, offset);

    if (f->can_punch &&
        fallocate (f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                   offset - f->offset, n) == -1) {
      if (errno != EOPNOTSUPP && errno != ENOSYS) {
        nbdkit_error ("fallocate: punching a hole in %s: %m", f->name);
        return -1;
      }
      nbdkit_debug ("%s: cannot punch holes, trim does nothing",
                    f->name);
      f->can_punch = false;
    }
    if ((flags & NBDKIT_FLAG_FUA) && fdatasync (f->fd) == -1) {
      nbdkit_error ("fdatasync: %s: %m", f->name);
      return -1;
    }
    offset += n;
    count -= n;
  }
  return 0;
}

/* Add the data and holes of file F between OFFSET (in the disk) and the
 * end of the file or END, whichever is first, as SEEK_DATA and
 * SEEK_HOLE find them.
 */
static int
file_extents (const struct file *f, uint64_t offset, uint64_t end,
              struct nbdkit_extents *extents)
{
  off_t pos = offset - f->offset;
  off_t stop = MIN (end, f->offset + f->size) - f->offset;

  while (pos < stop) {
    off_t data = lseek (f->fd, pos, SEEK_DATA);
    off_t hole;

    if (data == -1 && errno == ENXIO)
      data = stop;              /* only a hole up to the end */
    else if (data == -1) {
      /* No SEEK_DATA here: all of it is data. */
      return nbdkit_add_extent (extents, f->offset + pos, stop - pos, 0);
    }
    data = MIN (data, stop);
    if (data > pos &&
        nbdkit_add_extent (extents, f->offset + pos, data - pos,
                           NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) == -1)
      return -1;
    if (data == stop)
      break;
    hole = lseek (f->fd, data, SEEK_HOLE);
    if (hole == -1) {
      nbdkit_error ("lseek: SEEK_HOLE: %s: %m", f->name);
      return -1;
    }
    hole = MIN (hole, stop);
    if (nbdkit_add_extent (extents, f->offset + data, hole - data, 0) == -1)
      return -1;
    pos = hole;
  }
  return 0;
}

static int
split_extents (void *handle, uint32_t count, uint64_t offset, uint32_t flags,
               struct nbdkit_extents *extents)
{
  uint64_t end = offset + count;

  while (offset < end) {
    struct file *f = file_at (offset);

    if (file_extents (f, offset, end, extents) == -1)
      return -1;
    offset = f->offset + f->size;
    /* One extent is all the client asked for. */
    if ((flags & NBDKIT_FLAG_REQ_ONE) && nbdkit_extents_count (extents) > 0)
      break;
  }
  return 0;
}

/* Ask the kernel to read ahead. */
static int
split_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  while (count > 0) {
    struct file *f = file_at (offset);
    uint32_t n = span_in_file (f, count, offset);
    int r = posix_fadvise (f->fd, offset - f->offset, n,
                           POSIX_FADV_WILLNEED);

    if (r != 0) {
      errno = r;
      nbdkit_error ("posix_fadvise: %s: %m", f->name);
      return -1;
    }
    offset += n;
    count -= n;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "split",
  .longname           = "nbdkit split plugin",
  .version            = PACKAGE_VERSION,
  .description        = "Serves several files concatenated as one disk",
  .unload             = split_unload,
  .config             = split_config,
  .config_complete    = split_config_complete,
  .config_help        = split_config_help,
  .magic_config_key   = "file",
  .open               = split_open,
  .get_size           = split_get_size,
  .can_write          = split_can_write,
  .can_multi_conn     = split_can_multi_conn,
  .can_fua            = split_can_fua,
  .can_cache          = split_can_cache,
  .pread              = split_pread,
  .pwrite             = split_pwrite,
  .flush              = split_flush,
  .trim               = split_trim,
  .extents            = split_extents,
  .cache              = split_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
