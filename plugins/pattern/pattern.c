/* SPDX-License-Identifier: BSD-3-Clause
 * The pattern plugin: a read-only disk where the 8-byte big-endian word
 * at every offset O that is a multiple of 8 holds O itself.  Used to
 * check that clients and filters read from the offsets they think.
 */

#include <config.h>

#include <endian.h>
#include <stdint.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

/* Virtual size of the disk; empty unless size= is given (upstream's
 * pattern plugin behaves the same way).
 */
static int64_t size = 0;

static int
pattern_config (const char *key, const char *value)
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

#define pattern_config_help \
  "[size=]<SIZE>          Size of the disk (default 0)."

static void *
pattern_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
pattern_get_size (void *handle)
{
  return size;
}

static int
pattern_can_multi_conn (void *handle)
{
  return 1;
}

/* The content is computed on demand; there is nothing to prefetch. */
static int
pattern_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

static int
pattern_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
               uint32_t flags)
{
  unsigned char *out = buf;
  uint64_t word;

  /* A read starting inside a word takes the tail of that word. */
  if (offset & 7) {
    uint32_t skip = offset & 7;
    uint32_t n = 8 - skip < count ? 8 - skip : count;

    word = htobe64 (offset - skip);
    memcpy (out, (unsigned char *) &word + skip, n);
    out += n;
    offset += n;
    count -= n;
  }
  while (count >= 8) {
    word = htobe64 (offset);
    memcpy (out, &word, 8);
    out += 8;
    offset += 8;
    count -= 8;
  }
  if (count > 0) {
    word = htobe64 (offset);
    memcpy (out, &word, count);
  }
  return 0;
}

static int
pattern_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "pattern",
  .longname           = "nbdkit pattern plugin",
  .version            = PACKAGE_VERSION,
  .description        = "A read-only disk holding each 8-byte word's offset",
  .config             = pattern_config,
  .config_help        = pattern_config_help,
  .magic_config_key   = "size",
  .open               = pattern_open,
  .get_size           = pattern_get_size,
  .can_multi_conn     = pattern_can_multi_conn,
  .can_cache          = pattern_can_cache,
  .pread              = pattern_pread,
  .cache              = pattern_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
