/* SPDX-License-Identifier: BSD-3-Clause
 * nbdkit-data-plugin: a small disk given on the command line, as the data
 * format (format.c), base64 or raw bytes.  The disk lives in memory
 * (allocator=, allocator.h); writes are kept until nbdkit exits.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "base64.h"
#include "cleanup.h"
#include "format.h"
#include "allocator.h"
#include "vector.h"

/* data=, raw= or base64=: exactly one must appear, once. */
enum contents_kind { CONTENTS_DATA, CONTENTS_RAW, CONTENTS_BASE64 };
static enum contents_kind contents_kind;
static char *contents;
static unsigned contents_count;

/* size=, or -1 if the contents decide the size. */
static int64_t requested_size = -1;

/* Every other key=value parameter: variables for $KEY in the data
 * format.  The first occurrence of a key wins.
 */
struct variable {
  char *key;
  char *value;
};
DEFINE_VECTOR_TYPE (variable_vector, struct variable)
static variable_vector variables = empty_vector;

/* The disk, built by data_config_complete. */
static struct allocator *disk;

/* allocator=..., checked in config. */
static const char *allocator_spec = "sparse";
static int64_t disk_size;

static void
data_unload (void)
{
  for (size_t i = 0; i < variables.len; ++i) {
    free (variables.ptr[i].key);
    free (variables.ptr[i].value);
  }
  variable_vector_reset (&variables);
  free (contents);
  if (disk)
    allocator_free (disk);
}

static void
data_dump_plugin (void)
{
  printf ("data_base64=yes\n");
}

static int
data_config (const char *key, const char *value)
{
  if (strcmp (key, "data") == 0 || strcmp (key, "raw") == 0 ||
      strcmp (key, "base64") == 0) {
    /* Only the first is kept: config_complete reports any others. */
    if (contents_count++ == 0) {
      contents_kind = key[0] == 'd' ? CONTENTS_DATA
        : key[0] == 'r' ? CONTENTS_RAW : CONTENTS_BASE64;
      contents = strdup (value);
      if (contents == NULL) {
        nbdkit_error ("strdup: %m");
        return -1;
      }
    }
  }
  else if (strcmp (key, "size") == 0) {
    requested_size = nbdkit_parse_size (value);
    if (requested_size == -1)
      return -1;
  }
  else if (strcmp (key, "allocator") == 0) {
    if (allocator_check (value) == -1)
      return -1;
    allocator_spec = value;
  }
  else {
    struct variable var = { .key = strdup (key), .value = strdup (value) };

    if (var.key == NULL || var.value == NULL ||
        variable_vector_append (&variables, var) == -1) {
      nbdkit_error ("strdup: %m");
      free (var.key);
      free (var.value);
      return -1;
    }
  }
  return 0;
}

/* $NAME in the data format: a parameter, else an environment variable. */
static const char *
data_variable (const char *name)
{
  for (size_t i = 0; i < variables.len; ++i)
    if (strcmp (variables.ptr[i].key, name) == 0)
      return variables.ptr[i].value;
  return getenv (name);
}

static int
store_bytes (const unsigned char *buf, size_t len)
{
  size_t done;

  for (done = 0; done < len; ) {
    uint32_t n = len - done > (1 << 30) ? (1 << 30) : len - done;

    if (allocator_write (disk, buf + done, n, done) == -1)
      return -1;
    done += n;
  }
  disk_size = len;
  return 0;
}

static int
data_config_complete (void)
{
  if (contents_count != 1) {
    nbdkit_error ("exactly one of the data=, raw= or base64= parameters "
                  "must be given (%s)",
                  contents_count == 0 ? "none was given"
                  : "more than one was given");
    return -1;
  }

  disk = allocator_create (allocator_spec);
  if (disk == NULL)
    return -1;

  switch (contents_kind) {
  case CONTENTS_DATA:
    disk_size = data_format_store (contents, data_variable, disk);
    if (disk_size == -1)
      return -1;
    break;
  case CONTENTS_RAW:
    if (store_bytes ((const unsigned char *) contents,
                     strlen (contents)) == -1)
      return -1;
    break;
  case CONTENTS_BASE64: {
    CLEANUP_FREE unsigned char *buf = NULL;
    size_t len;
    const char *error;

    if (base64_decode (contents, &buf, &len, &error) == -1) {
      if (error)
        nbdkit_error ("base64: cannot decode: %s", error);
      else
        nbdkit_error ("base64: %m");
      return -1;
    }
    if (store_bytes (buf, len) == -1)
      return -1;
    break;
  }
  }

  if (requested_size >= 0)
    disk_size = requested_size;
  if (allocator_set_size (disk, disk_size) == -1)
    return -1;
  nbdkit_debug ("data: disk size %" PRIi64 ", %" PRIu64 " bytes allocated",
                disk_size, allocator_allocated (disk));
  return 0;
}

#define data_config_help \
  "[data=]<DATA>          The disk contents in the data format, or\n" \
  "raw=<BYTES>            the disk contents as literal bytes, or\n" \
  "base64=<BASE64>        the disk contents encoded in base64.\n" \
  "size=<SIZE>            Truncate or extend the disk to this size.\n" \
  "allocator=sparse|malloc[,mlock=true]|zstd\n" \
  "                       How the disk is stored (default sparse)."

static void *
data_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
data_get_size (void *handle)
{
  return disk_size;
}

/* Every connection sees the same array, so writes are visible at once. */
static int
data_can_multi_conn (void *handle)
{
  return 1;
}

static int
data_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

static int
data_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

static int
data_can_fast_zero (void *handle)
{
  return 1;
}

static int
data_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
            uint32_t flags)
{
  return allocator_read (disk, buf, count, offset);
}

static int
data_pwrite (void *handle, const void *buf, uint32_t count, uint64_t offset,
             uint32_t flags)
{
  if (allocator_write (disk, buf, count, offset) == -1) {
    nbdkit_set_error (errno);
    return -1;
  }
  return 0;
}

/* Memory needs no flushing, and FUA writes are complete on return. */
static int
data_flush (void *handle, uint32_t flags)
{
  return 0;
}

static int
data_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return allocator_zero (disk, count, offset);
}

static int
data_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return allocator_zero (disk, count, offset);
}

static int
data_extents (void *handle, uint32_t count, uint64_t offset, uint32_t flags,
              struct nbdkit_extents *extents)
{
  return allocator_extents (disk, count, offset, extents);
}

/* The data is already in memory: there is nothing to prefetch. */
static int
data_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name              = "data",
  .longname          = "nbdkit data plugin",
  .version           = PACKAGE_VERSION,
  .description       = "serve data given on the command line",
  .unload            = data_unload,
  .dump_plugin       = data_dump_plugin,
  .config            = data_config,
  .config_complete   = data_config_complete,
  .config_help       = data_config_help,
  .magic_config_key  = "data",
  .open              = data_open,
  .get_size          = data_get_size,
  .can_multi_conn    = data_can_multi_conn,
  .can_fua           = data_can_fua,
  .can_cache         = data_can_cache,
  .can_fast_zero     = data_can_fast_zero,
  .pread             = data_pread,
  .pwrite            = data_pwrite,
  .flush             = data_flush,
  .trim              = data_trim,
  .zero              = data_zero,
  .extents           = data_extents,
  .cache             = data_cache,
};

NBDKIT_REGISTER_PLUGIN (plugin)
