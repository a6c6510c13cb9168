/* SPDX-License-Identifier: BSD-3-Clause
 * The ext2 filter: serve one regular file inside an ext2, ext3 or ext4
 * filesystem image, read and written through libext2fs, which reaches
 * the image through the next layer (io.c).
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <et/com_err.h>

#include "ext2.h"

/* The absolute path of the file to serve (ext2file=), or NULL when the
 * client's export name chooses it (ext2file=exportname).
 */
static char *file;
/* Whether ext2file= was given at all. */
static int file_set;

static void
ext2_load (void)
{
  initialize_ext2_error_table ();
}

static void
ext2_unload (void)
{
  free (file);
}

static int
ext2_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
             const char *key, const char *value)
{
  if (strcmp (key, "ext2file") != 0)
    return next (nxdata, key, value);

  if (file_set) {
    nbdkit_error ("ext2file=%s: ext2file= may be given only once", value);
    return -1;
  }
  file_set = 1;
  if (strcmp (value, "exportname") == 0)
    return 0;
  if (value[0] != '/') {
    nbdkit_error ("ext2file=%s: the path must be absolute (start with /) "
                  "or be the word exportname", value);
    return -1;
  }
  file = strdup (value);
  if (file == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  return 0;
}

static int
ext2_config_complete (nbdkit_next_config_complete *next,
                      nbdkit_backend *nxdata)
{
  if (!file_set) {
    nbdkit_error ("the ext2file=<FILE> parameter is required");
    return -1;
  }
  return next (nxdata);
}

#define ext2_config_help \
  "ext2file=<FILENAME>  (required) Absolute path of the file to serve\n" \
  "                     inside the filesystem, or 'exportname' to take\n" \
  "                     it from the client's export name."

/* libext2fs is not thread safe and two connections writing one
 * filesystem would corrupt it (as two machines mounting it would).
 */
static int
ext2_thread_model (void)
{
  return NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS;
}

/* With ext2file=exportname any path may be asked for, so no list is
 * offered (the exportname filter can add one).
 */
static int
ext2_list_exports (nbdkit_next_list_exports *next, nbdkit_backend *nxdata,
                   int readonly, int is_tls, struct nbdkit_exports *exports)
{
  if (file == NULL)
    return 0;
  return next (nxdata, readonly, exports);
}

/* The per-connection state: the open filesystem and file. */
struct handle {
  const char *path;             /* file served, interned */
  int readonly;
  ext2_filsys fs;               /* NULL until prepare */
  ext2_ino_t ino;
  ext2_file_t file;
};

static void *
ext2_open (nbdkit_next_open *next, nbdkit_context *context,
           int readonly, const char *exportname, int is_tls)
{
  struct handle *h;
  const char *path = file;

  if (file == NULL) {
    /* The file comes from the export name; the plugin gets "". */
    if (exportname[0] == '\0') {
      nbdkit_error ("ext2file=exportname: the client must choose a file "
                    "with the export name, the default export (\"\") is "
                    "not permitted");
      return NULL;
    }
    path = exportname[0] == '/' ? nbdkit_strdup_intern (exportname)
                                : nbdkit_printf_intern ("/%s", exportname);
    if (path == NULL)
      return NULL;
    exportname = "";
  }
  if (next (context, readonly, exportname) == -1)
    return NULL;

  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  h->path = path;
  h->readonly = readonly;
  return h;
}

/* Look up h->path, which must be a regular file. */
static int
find_file (struct handle *h)
{
  struct ext2_inode inode;
  errcode_t err;

  err = ext2fs_namei (h->fs, EXT2_ROOT_INO, EXT2_ROOT_INO, h->path, &h->ino);
  if (err) {
    nbdkit_error ("%s: %s", h->path, error_message (err));
    errno = ENOENT;
    return -1;
  }
  err = ext2fs_read_inode (h->fs, h->ino, &inode);
  if (err) {
    nbdkit_error ("%s: reading the inode: %s", h->path, error_message (err));
    return -1;
  }
  if (!LINUX_S_ISREG (inode.i_mode)) {
    nbdkit_error ("%s: not a regular file in the filesystem", h->path);
    errno = ENOENT;
    return -1;
  }
  return 0;
}

/* The layer below is ready: open the filesystem and the file. */
static int
ext2_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;
  char name[64];
  int flags = EXT2_FLAG_64BITS;
  errcode_t err;

  if (!h->readonly) {
    int w = next->can_write (next);
    if (w == -1)
      return -1;
    h->readonly = !w;
  }
  if (!h->readonly)
    flags |= EXT2_FLAG_RW;

  ext2_io_channel_name (name, sizeof name, next);
  err = ext2fs_open2 (name, NULL, flags, 0, 0, ext2_nbdkit_io_manager,
                      &h->fs);
  if (err) {
    nbdkit_error ("opening the ext2/3/4 filesystem: %s",
                  error_message (err));
    h->fs = NULL;
    return -1;
  }
  /* Writing beside a journal that still holds changes would lose them
   * or be overwritten when the journal is replayed.
   */
  if (!h->readonly &&
      ext2fs_has_feature_journal_needs_recovery (h->fs->super)) {
    nbdkit_error ("the filesystem's journal needs recovery: check it with "
                  "e2fsck first, or serve it read-only (-r)");
    return -1;
  }
  if (find_file (h) == -1)
    return -1;
  err = ext2fs_file_open2 (h->fs, h->ino, NULL,
                           h->readonly ? 0 : EXT2_FILE_WRITE, &h->file);
  if (err) {
    nbdkit_error ("%s: opening the file: %s", h->path, error_message (err));
    h->file = NULL;
    return -1;
  }
  nbdkit_debug ("ext2: serving %s (inode %u)%s", h->path, (unsigned) h->ino,
                h->readonly ? " read-only" : "");
  return 0;
}

/* Write back the file and the filesystem's metadata, then close. */
static int
close_filesystem (struct handle *h)
{
  errcode_t err;
  int r = 0;

  if (h->file) {
    err = ext2fs_file_close (h->file);
    h->file = NULL;
    if (err) {
      nbdkit_error ("%s: closing the file: %s", h->path, error_message (err));
      r = -1;
    }
  }
  if (h->fs) {
    err = ext2fs_close2 (h->fs, 0);
    if (err) {
      nbdkit_error ("closing the filesystem: %s", error_message (err));
      ext2fs_free (h->fs);
      r = -1;
    }
    h->fs = NULL;
  }
  return r;
}

static int
ext2_finalize (nbdkit_next *next, void *handle)
{
  return close_filesystem (handle);
}

/* Without finalize (a filter above failed to prepare) the filesystem
 * is still open; the layer below is closed only after this one, so it
 * can still be written to.
 */
static void
ext2_close (void *handle)
{
  struct handle *h = handle;

  close_filesystem (h);
  free (h);
}

static int64_t
ext2_get_size (nbdkit_next *next, void *handle)
{
  struct handle *h = handle;
  __u64 size;
  errcode_t err;

  err = ext2fs_file_get_lsize (h->file, &size);
  if (err) {
    nbdkit_error ("%s: getting the size: %s", h->path, error_message (err));
    return -1;
  }
  if (size > INT64_MAX) {
    nbdkit_error ("%s: the file is too large", h->path);
    return -1;
  }
  return size;
}

static int
ext2_can_write (nbdkit_next *next, void *handle)
{
  struct handle *h = handle;

  return !h->readonly;
}

static int
ext2_can_flush (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
ext2_can_fua (nbdkit_next *next, void *handle)
{
  return NBDKIT_FUA_EMULATE;
}

/* Trimming would need to free blocks; zeroes are written as data. */
static int
ext2_can_trim (nbdkit_next *next, void *handle)
{
  return 0;
}

static int
ext2_can_zero (nbdkit_next *next, void *handle)
{
  return NBDKIT_ZERO_EMULATE;
}

static int
ext2_can_fast_zero (nbdkit_next *next, void *handle)
{
  return 0;
}

static int
ext2_can_extents (nbdkit_next *next, void *handle)
{
  return 0;
}

static int
ext2_can_cache (nbdkit_next *next, void *handle)
{
  return NBDKIT_CACHE_EMULATE;
}

/* Connections are serialized: a second client waits for the first. */
static int
ext2_can_multi_conn (nbdkit_next *next, void *handle)
{
  return 0;
}

/* libext2fs error codes below 256 are errno values; others become EIO. */
static int
to_errno (errcode_t err)
{
  return err > 0 && err < 256 ? (int) err : EIO;
}

static int
ext2_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;
  char *p = buf;
  unsigned int got;
  errcode_t e;

  while (count > 0) {
    e = ext2fs_file_llseek (h->file, offset, EXT2_SEEK_SET, NULL);
    if (!e)
      e = ext2fs_file_read (h->file, p, count, &got);
    if (e) {
      nbdkit_error ("%s: reading %" PRIu32 " bytes at %" PRIu64 ": %s",
                    h->path, count, offset, error_message (e));
      *err = to_errno (e);
      return -1;
    }
    if (got == 0) {
      nbdkit_error ("%s: unexpected end of file at %" PRIu64,
                    h->path, offset);
      *err = EIO;
      return -1;
    }
    p += got;
    count -= got;
    offset += got;
  }
  return 0;
}

static int
ext2_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  struct handle *h = handle;
  errcode_t e;

  e = ext2fs_file_flush (h->file);
  if (!e && (h->fs->flags & (EXT2_FLAG_IB_DIRTY | EXT2_FLAG_BB_DIRTY)))
    e = ext2fs_write_bitmaps (h->fs);
  if (!e && (h->fs->flags & EXT2_FLAG_DIRTY))
    e = ext2fs_flush (h->fs);
  if (!e)
    e = io_channel_flush (h->fs->io);
  if (e) {
    nbdkit_error ("%s: flush: %s", h->path, error_message (e));
    *err = to_errno (e);
    return -1;
  }
  return 0;
}

static int
ext2_pwrite (nbdkit_next *next, void *handle, const void *buf,
             uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;
  const char *p = buf;
  unsigned int wrote;
  errcode_t e;

  while (count > 0) {
    e = ext2fs_file_llseek (h->file, offset, EXT2_SEEK_SET, NULL);
    if (!e)
      e = ext2fs_file_write (h->file, p, count, &wrote);
    if (e) {
      nbdkit_error ("%s: writing %" PRIu32 " bytes at %" PRIu64 ": %s",
                    h->path, count, offset, error_message (e));
      *err = to_errno (e);
      return -1;
    }
    if (wrote == 0) {
      nbdkit_error ("%s: the write at %" PRIu64 " made no progress",
                    h->path, offset);
      *err = EIO;
      return -1;
    }
    p += wrote;
    count -= wrote;
    offset += wrote;
  }
  return 0;
}

static struct nbdkit_filter filter = {
  .name              = "ext2",
  .longname          = "nbdkit ext2 filter",
  .version           = PACKAGE_VERSION,
  .description       = "Serve a file inside an ext2, ext3 or ext4 image",
  .load              = ext2_load,
  .unload            = ext2_unload,
  .config            = ext2_config,
  .config_complete   = ext2_config_complete,
  .config_help       = ext2_config_help,
  .thread_model      = ext2_thread_model,
  .list_exports      = ext2_list_exports,
  .open              = ext2_open,
  .prepare           = ext2_prepare,
  .finalize          = ext2_finalize,
  .close             = ext2_close,
  .get_size          = ext2_get_size,
  .can_write         = ext2_can_write,
  .can_flush         = ext2_can_flush,
  .can_fua           = ext2_can_fua,
  .can_trim          = ext2_can_trim,
  .can_zero          = ext2_can_zero,
  .can_fast_zero     = ext2_can_fast_zero,
  .can_extents       = ext2_can_extents,
  .can_cache         = ext2_can_cache,
  .can_multi_conn    = ext2_can_multi_conn,
  .pread             = ext2_pread,
  .pwrite            = ext2_pwrite,
  .flush             = ext2_flush,
};

NBDKIT_REGISTER_FILTER (filter)
