/* SPDX-License-Identifier: BSD-3-Clause
 * The random plugin: a disk of reproducible pseudo-random bytes.  Every
 * 8-byte word is a hash of the seed and the word's index, so any part
 * of the disk can be computed on its own and nothing is stored.  Writes
 * are accepted only when they match what is already there, which lets
 * a copy from the disk to itself check a copying program.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

/* Virtual size of the disk, or -1 until size= is seen. */
static int64_t size = -1;

/* seed=: the same seed always gives the same data. */
static uint32_t seed;
static int seed_given;

static void
random_load (void)
{
  /* Without seed= every run differs; time is good enough (insecure). */
  seed = time (NULL) ^ ((uint32_t) clock () << 16);
}

static int
random_config (const char *key, const char *value)
{
  if (strcmp (key, "size") == 0) {
    size = nbdkit_parse_size (value);
    if (size == -1)
      return -1;
  }
  else if (strcmp (key, "seed") == 0) {
    if (nbdkit_parse_uint32_t ("seed", value, &seed) == -1)
      return -1;
    seed_given = 1;
  }
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

static int
random_config_complete (void)
{
  if (size == -1) {
    nbdkit_error ("you must specify size=<SIZE> on the command line");
    return -1;
  }
  if (!seed_given)
    nbdkit_debug ("no seed= given, using seed=%" PRIu32, seed);
  return 0;
}

#define random_config_help \
  "[size=]<SIZE>          (required) Size of the disk.\n" \
  "seed=<SEED>            Random seed, for the same data on every run."

static void *
random_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
random_get_size (void *handle)
{
  return size;
}

/* The data never changes, so every connection sees the same. */
static int
random_can_multi_conn (void *handle)
{
  return 1;
}

/* Data is computed, there is nothing to cache. */
static int
random_can_cache (void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

/* The SplitMix64 finaliser: a good, cheap 64-bit mixing function. */
static uint64_t
mix64 (uint64_t x)
{
  x += UINT64_C (0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * UINT64_C (0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C (0x94d049bb133111eb);
  return x ^ (x >> 31);
}

/* Fill BUF with the disk's bytes from OFFSET. */
static void
generate (unsigned char *buf, uint32_t count, uint64_t offset)
{
  uint64_t key = mix64 (seed) ^ ((uint64_t) seed << 32);

  while (count > 0) {
    uint64_t word = mix64 (key + offset / 8);
    unsigned i = offset % 8;

    for (; i < 8 && count > 0; ++i, ++offset, --count)
      *buf++ = word >> (8 * i);
  }
}

static int
random_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
              uint32_t flags)
{
  generate (buf, count, offset);
  return 0;
}

/* A write succeeds only if it would change nothing. */
static int
random_pwrite (void *handle, const void *buf, uint32_t count,
               uint64_t offset, uint32_t flags)
{
  const unsigned char *data = buf;
  unsigned char expected[4096];

  while (count > 0) {
    uint32_t n = count < sizeof expected ? count : sizeof expected;

    generate (expected, n, offset);
    if (memcmp (data, expected, n) != 0) {
      nbdkit_error ("data written at offset %" PRIu64 " does not match "
                    "the random data already there", offset);
      nbdkit_set_error (EIO);
      return -1;
    }
    data += n;
    offset += n;
    count -= n;
  }
  return 0;
}

/* The disk is not sparse: no part of it can be trimmed or zeroed. */
static int
random_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  nbdkit_error ("the random disk cannot be trimmed or zeroed");
  nbdkit_set_error (EIO);
  return -1;
}

static int
random_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return random_trim (handle, count, offset, flags);
}

static int
random_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "random",
  .longname           = "nbdkit random plugin",
  .version            = PACKAGE_VERSION,
  .description        = "A disk of reproducible pseudo-random data",
  .load               = random_load,
  .config             = random_config,
  .config_complete    = random_config_complete,
  .config_help        = random_config_help,
  .magic_config_key   = "size",
  .open               = random_open,
  .get_size           = random_get_size,
  .can_multi_conn     = random_can_multi_conn,
  .can_cache          = random_can_cache,
  .pread              = random_pread,
  .pwrite             = random_pwrite,
  .trim               = random_trim,
  .zero               = random_zero,
  .cache              = random_cache,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
