/* SPDX-License-Identifier: BSD-3-Clause
 * The swab filter: reverses the order of the bytes in every 2, 4 or
 * 8 byte word of the disk, on reads and writes alike.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"

/* swab-bits=: the size of the words whose bytes are reversed, in bits.
 * 8 turns the filter into a pass-through.
 */
static unsigned bits = 16;

/* The word size in bytes: every request must be aligned to it. */
#define WORD_BYTES (bits / 8)

static int
swab_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
             const char *key, const char *value)
{
  if (strcmp (key, "swab-bits") == 0) {
    unsigned v;

    if (nbdkit_parse_unsigned ("swab-bits", value, &v) == -1)
      return -1;
    if (v != 8 && v != 16 && v != 32 && v != 64) {
      nbdkit_error ("swab-bits: invalid value '%s' (expected 8, 16, 32 or 64)",
                    value);
      return -1;
    }
    bits = v;
    return 0;
  }
  return next (nxdata, key, value);
}

#define swab_config_help \
  "swab-bits=8|16|32|64 Size of the words to byte-swap (default 16)."

/* An unaligned tail could not be swapped, so it is cut off. */
static int64_t
swab_get_size (nbdkit_next *next, void *handle)
{
  int64_t size = next->get_size (next);

  if (size == -1)
    return -1;
  return ROUND_DOWN (size, (int64_t) WORD_BYTES);
}

/* Tell clients the alignment that every request needs. */
static int
swab_block_size (nbdkit_next *next, void *handle, uint32_t *minimum,
                 uint32_t *preferred, uint32_t *maximum)
{
  if (next->block_size (next, minimum, preferred, maximum) == -1)
    return -1;
  if (*minimum == 0) {          /* the plugin states no constraints */
    *minimum = 1;
    *preferred = 512;
    *maximum = 0xffffffff;
  }
  *minimum = MAX (*minimum, WORD_BYTES);
  *preferred = MAX (*preferred, WORD_BYTES);
  return 0;
}

static bool
is_aligned (uint32_t count, uint64_t offset, int *err)
{
  if (IS_ALIGNED (count | offset, WORD_BYTES))
    return true;
  nbdkit_error ("swab: request (offset %" PRIu64 ", count %" PRIu32 ") "
                "is not aligned to swab-bits=%u", offset, count, bits);
  *err = EINVAL;
  return false;
}

/* Reverse the bytes of every word from SRC into DST (which may be the
 * same buffer).  COUNT is a multiple of the word size.
 */
static void
swap_words (void *dst, const void *src, uint32_t count)
{
  uint32_t i;

  for (i = 0; i < count; i += WORD_BYTES) {
    switch (bits) {
    case 16: {
      uint16_t w;
      memcpy (&w, (const char *) src + i, 2);
      w = __builtin_bswap16 (w);
      memcpy ((char *) dst + i, &w, 2);
      break;
    }
    case 32: {
      uint32_t w;
      memcpy (&w, (const char *) src + i, 4);
      w = __builtin_bswap32 (w);
      memcpy ((char *) dst + i, &w, 4);
      break;
    }
    case 64: {
      uint64_t w;
      memcpy (&w, (const char *) src + i, 8);
      w = __builtin_bswap64 (w);
      memcpy ((char *) dst + i, &w, 8);
      break;
    }
    default:
      abort ();
    }
  }
}

static int
swab_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  if (!is_aligned (count, offset, err))
    return -1;
  if (next->pread (next, buf, count, offset, flags, err) == -1)
    return -1;
  if (bits > 8)
    swap_words (buf, buf, count);
  return 0;
}

static int
swab_pwrite (nbdkit_next *next, void *handle, const void *buf,
             uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  CLEANUP_FREE char *swapped = NULL;

  if (!is_aligned (count, offset, err))
    return -1;
  if (bits == 8)
    return next->pwrite (next, buf, count, offset, flags, err);

  /* The client's buffer is read-only: swap into a copy. */
  swapped = malloc (count);
  if (swapped == NULL) {
    *err = errno;
    nbdkit_error ("malloc: %m");
    return -1;
  }
  swap_words (swapped, buf, count);
  return next->pwrite (next, swapped, count, offset, flags, err);
}

/* Zeroes and holes look the same swapped or not; only the alignment
 * matters for these.
 */
static int
swab_trim (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
           uint32_t flags, int *err)
{
  if (!is_aligned (count, offset, err))
    return -1;
  return next->trim (next, count, offset, flags, err);
}

static int
swab_zero (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
           uint32_t flags, int *err)
{
  if (!is_aligned (count, offset, err))
    return -1;
  return next->zero (next, count, offset, flags, err);
}

static int
swab_extents (nbdkit_next *next, void *handle, uint32_t count,
              uint64_t offset, uint32_t flags,
              struct nbdkit_extents *extents, int *err)
{
  if (!is_aligned (count, offset, err))
    return -1;
  /* Extents ending inside a word are merged, so each word has one type. */
  return nbdkit_extents_aligned (next, count, offset, flags, WORD_BYTES,
                                 extents, err);
}

static int
swab_cache (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
            uint32_t flags, int *err)
{
  if (!is_aligned (count, offset, err))
    return -1;
  return next->cache (next, count, offset, flags, err);
}

static struct nbdkit_filter filter = {
  .name              = "swab",
  .longname          = "nbdkit byte-swapping filter",
  .version           = PACKAGE_VERSION,
  .description       = "Swap the byte order of 16, 32 or 64 bit words",
  .config            = swab_config,
  .config_help       = swab_config_help,
  .get_size          = swab_get_size,
  .block_size        = swab_block_size,
  .pread             = swab_pread,
  .pwrite            = swab_pwrite,
  .trim              = swab_trim,
  .zero              = swab_zero,
  .extents           = swab_extents,
  .cache             = swab_cache,
};

NBDKIT_REGISTER_FILTER (filter)
