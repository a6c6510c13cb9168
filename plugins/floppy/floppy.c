/* SPDX-License-Identifier: BSD-3-Clause
 * The floppy plugin: a read-only disk with one FAT32 partition made on
 * the fly from a host directory.  This file holds the parameters and
 * the plugin callbacks; directory.c reads the tree and virtual-fat.c
 * lays out and reads the disk.
 */

#include <config.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "floppy.h"

/* dir=: the host directory, as given (resolved in get_ready). */
static const char *dir = NULL;

/* label=: the volume label, upper-cased and space padded. */
static char label[11] = "NBDKITFLOPY";

/* size=: the disk size, or -1 for just large enough. */
static int64_t size = -1;
static const char *size_str;

/* The virtual disk, built in get_ready and read-only afterwards. */
static struct floppy floppy;

static void
floppy_unload (void)
{
  floppy_free (&floppy);
}

/* Volume labels are upper-case printable ASCII without the characters
 * that FAT names forbid.
 */
static int
floppy_config_label (const char *value)
{
  size_t i, len = strlen (value);

  if (len == 0 || len > 11) {
    nbdkit_error ("label=%s: the label must be 1 to 11 characters long",
                  value);
    return -1;
  }
  for (i = 0; i < len; ++i) {
    unsigned char c = value[i];
    if (c < 0x20 || c > 0x7e || strchr ("\"*+,./:;<=>?[\\]|", c) != NULL) {
      nbdkit_error ("label=%s: character '%c' is not allowed in a FAT "
                    "volume label (use ASCII letters, digits, spaces "
                    "and !#$%%&'()-@^_`{}~)", value, c >= 0x20 ? c : '?');
      return -1;
    }
  }
  memset (label, ' ', sizeof label);
  for (i = 0; i < len; ++i)
    label[i] = value[i] >= 'a' && value[i] <= 'z'
      ? value[i] - 'a' + 'A' : value[i];
  return 0;
}

static int
floppy_config (const char *key, const char *value)
{
  if (strcmp (key, "dir") == 0) {
    if (dir != NULL) {
      nbdkit_error ("dir=%s: dir= may only be given once", value);
      return -1;
    }
    dir = value;
  }
  else if (strcmp (key, "label") == 0)
    return floppy_config_label (value);
  else if (strcmp (key, "size") == 0) {
    size = nbdkit_parse_size (value);
    if (size == -1) {
      nbdkit_error ("size=%s: not a valid disk size", value);
      return -1;
    }
    size_str = value;
  }
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

static int
floppy_config_complete (void)
{
  if (dir == NULL) {
    nbdkit_error ("you must supply the dir=<DIRECTORY> parameter "
                  "after the plugin name on the command line");
    return -1;
  }
  return 0;
}

#define floppy_config_help \
  "[dir=]<DIRECTORY>   (required) The directory to serve.\n" \
  "label=<LABEL>                  The volume label (default NBDKITFLOPY).\n" \
  "size=<SIZE>                    The disk size (default: just enough)."

/* Read the tree and build the disk once, before serving. */
static int
floppy_get_ready (void)
{
  memcpy (floppy.label, label, sizeof label);
  if (floppy_scan (&floppy, dir) == -1 ||
      floppy_layout (&floppy, size, size_str) == -1 ||
      floppy_build_directories (&floppy) == -1)
    return -1;
  return 0;
}

static void *
floppy_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
floppy_get_size (void *handle)
{
  return floppy.disk_size;
}

/* The disk never changes, so every connection sees the same data. */
static int
floppy_can_multi_conn (void *handle)
{
  return 1;
}

/* Everything but the host files is in memory already. */
static int
floppy_can_cache (void *handle)
{
  return NBDKIT_CACHE_EMULATE;
}

static int
floppy_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
              uint32_t flags)
{
  return floppy_read (&floppy, buf, count, offset);
}

/* Free clusters, the unused part of the FATs and the gaps read as
 * zeroes: report them as holes so that copies can skip them.
 */
static int
floppy_can_extents (void *handle)
{
  return 1;
}

static int
floppy_extents_callback (void *handle, uint32_t count, uint64_t offset,
                         uint32_t flags, struct nbdkit_extents *extents)
{
  return floppy_extents (&floppy, count, offset, extents);
}

static struct nbdkit_plugin plugin = {
  .name               = "floppy",
  .longname           = "nbdkit floppy plugin",
  .version            = PACKAGE_VERSION,
  .description        = "A FAT32 disk made on the fly from a directory",
  .unload             = floppy_unload,
  .config             = floppy_config,
  .config_complete    = floppy_config_complete,
  .config_help        = floppy_config_help,
  .magic_config_key   = "dir",
  .get_ready          = floppy_get_ready,
  .open               = floppy_open,
  .get_size           = floppy_get_size,
  .can_multi_conn     = floppy_can_multi_conn,
  .can_cache          = floppy_can_cache,
  .pread              = floppy_pread,
  .can_extents        = floppy_can_extents,
  .extents            = floppy_extents_callback,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
