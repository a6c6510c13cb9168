/* SPDX-License-Identifier: BSD-3-Clause
 * An out-of-tree test plugin built only against the installed headers:
 * serves SIZE bytes of a repeating "hello" pattern, or the contents of
 * script=FILE (so it can be used from a #! script).  Writes are kept in
 * memory.  Debug flag: -D hello.verbose=1.
 */

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

NBDKIT_DLL_PUBLIC int hello_debug_verbose;

static char *disk;
static int64_t size = 1024 * 1024;

static int
hello_config (const char *key, const char *value)
{
  if (strcmp (key, "size") == 0) {
    size = nbdkit_parse_size (value);
    return size == -1 ? -1 : 0;
  }
  if (strcmp (key, "script") == 0) {
    FILE *fp = fopen (value, "r");
    long n;
    if (fp == NULL) {
      nbdkit_error ("%s: %m", value);
      return -1;
    }
    fseek (fp, 0, SEEK_END);
    n = ftell (fp);
    rewind (fp);
    disk = calloc (1, n);
    if (disk == NULL || fread (disk, 1, n, fp) != (size_t) n) {
      nbdkit_error ("%s: read failed", value);
      fclose (fp);
      return -1;
    }
    fclose (fp);
    size = n;
    return 0;
  }
  nbdkit_error ("unknown parameter '%s'", key);
  return -1;
}

static int
hello_get_ready (void)
{
  int64_t i;

  if (disk)
    return 0;
  disk = malloc (size);
  if (disk == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  for (i = 0; i < size; ++i)
    disk[i] = "hello"[i % 5];
  if (hello_debug_verbose)
    nbdkit_debug ("hello: verbose debugging is on");
  return 0;
}

static void
hello_unload (void)
{
  free (disk);
}

static void *
hello_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS

static int64_t
hello_get_size (void *handle)
{
  return size;
}

static int
hello_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
             uint32_t flags)
{
  memcpy (buf, disk + offset, count);
  return 0;
}

static int
hello_pwrite (void *handle, const void *buf, uint32_t count, uint64_t offset,
              uint32_t flags)
{
  memcpy (disk + offset, buf, count);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "hello",
  .version = "1.0",
  .unload = hello_unload,
  .config = hello_config,
  .config_help = "size=<SIZE>  Size of the disk\nscript=<FILE> Serve FILE",
  .get_ready = hello_get_ready,
  .open = hello_open,
  .get_size = hello_get_size,
  .pread = hello_pread,
  .pwrite = hello_pwrite,
};

NBDKIT_REGISTER_PLUGIN (plugin)
