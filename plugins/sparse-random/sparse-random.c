/* SPDX-License-Identifier: BSD-3-Clause
 * nbdkit-sparse-random-plugin: a disk of random data runs separated by
 * holes, shaped like a virtual machine disk.  Nothing is stored: the
 * layout and every block's contents are computed from the seed, so reads
 * are repeatable and writes can be checked against what a read returns.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "utils.h"

/* Data and holes come in whole blocks of this size. */
#define BLOCK_SIZE 4096

/* size=: the virtual size, required. */
static int64_t size = -1;

/* seed=: makes the disk repeatable; chosen at random if not given. */
static uint64_t seed;
static bool seed_given;

/* percent=: roughly how much of the disk is data. */
static double percent = 10;

/* runlength=: the average length of a run of data, in bytes. */
static uint64_t runlength = 16 * 1024 * 1024;

/* random-content=true: every byte random, not one byte per block. */
static bool random_content;

/* The layout, derived in sparse_random_config_complete.  The disk is
 * divided into cells of cell_blocks blocks; each cell holds one run of
 * data of random length (averaging data_per_cell blocks) at a random
 * place, and holes around it.  Any block's fate is computed from its cell
 * alone, so no map of the disk is kept however large it is.
 */
static uint64_t cell_blocks;
static uint64_t nr_blocks;
static double data_per_cell;
static double length_spread;    /* run lengths vary by up to this fraction */

static int
parse_percent (const char *value)
{
  char *end;

  errno = 0;
  percent = strtod (value, &end);
  if (end != value && *end == '%')
    end++;
  if (errno != 0 || end == value || *end != '\0' || !(percent >= 0) ||
      percent > 100) {
    nbdkit_error ("percent=%s: must be a number from 0 to 100", value);
    return -1;
  }
  return 0;
}

static int
sparse_random_config (const char *key, const char *value)
{
  int64_t r;
  int b;

  if (strcmp (key, "size") == 0) {
    size = nbdkit_parse_size (value);
    if (size == -1)
      return -1;
  }
  else if (strcmp (key, "seed") == 0) {
    if (nbdkit_parse_uint64_t ("seed", value, &seed) == -1)
      return -1;
    seed_given = true;
  }
  else if (strcmp (key, "percent") == 0)
    return parse_percent (value);
  else if (strcmp (key, "runlength") == 0) {
    r = nbdkit_parse_size (value);
    if (r == -1)
      return -1;
    if (r == 0) {
      nbdkit_error ("runlength=%s: must be greater than 0", value);
      return -1;
    }
    runlength = r;
  }
  else if (strcmp (key, "random-content") == 0) {
    b = nbdkit_parse_bool (value);
    if (b == -1)
      return -1;
    random_content = b;
  }
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

static int
sparse_random_config_complete (void)
{
  double fraction = percent / 100, run_blocks, cells;

  if (size == -1) {
    nbdkit_error ("the size parameter is required");
    return -1;
  }
  if (!seed_given &&
      getrandom (&seed, sizeof seed, GRND_NONBLOCK) != sizeof seed)
    seed = (uint64_t) time (NULL) ^ ((uint64_t) getpid () << 32);
  nbdkit_debug ("sparse-random: seed=%" PRIu64, seed);

  /* A cell holds one run and averages runlength/fraction bytes, so that
   * data makes up the requested fraction of it.
   */
  run_blocks = MAX (1.0, (double) runlength / BLOCK_SIZE);
  nr_blocks = (size + BLOCK_SIZE - 1) / BLOCK_SIZE;
  cells = fraction > 0 ? run_blocks / fraction : 0x1p52;
  if (cells >= 0x1p52)
    cell_blocks = (uint64_t) 1 << 52;
  else
    cell_blocks = MAX (1, (uint64_t) llround (cells));
  data_per_cell = cell_blocks * fraction;

  /* Vary run lengths by up to 50%, but never so much that a long run
   * could overflow its cell: the mean stays exactly data_per_cell.
   */
  length_spread = fraction > 0 ? MIN (0.5, (1 - fraction) / fraction) : 0;
  return 0;
}

#define sparse_random_config_help \
  "[size=]<SIZE>          (required) Size of the disk.\n" \
  "seed=<SEED>            Random seed, for a repeatable disk.\n" \
  "percent=<N>            Percentage of the disk holding data (default 10).\n" \
  "runlength=<N>          Average length of runs of data (default 16M).\n" \
  "random-content=true    Make every byte of data random."

static void *
sparse_random_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* One step of the SplitMix64 generator: a good 64-bit mixing function. */
static uint64_t
splitmix64 (uint64_t *state)
{
  uint64_t z = (*state += UINT64_C (0x9e3779b97f4a7c15));

  z = (z ^ (z >> 30)) * UINT64_C (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C (0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* Independent random numbers for each (purpose, index) under the seed. */
enum purpose { RUN_LENGTH, RUN_ROUNDING, RUN_PLACE, BLOCK_BYTE, BLOCK_BYTES };

static uint64_t
random_for (enum purpose purpose, uint64_t index)
{
  uint64_t state = seed ^ ((uint64_t) purpose << 59);

  state = splitmix64 (&state) ^ index;
  return splitmix64 (&state);
}

/* A random double in [0, 1). */
static double
unit_interval (uint64_t r)
{
  return (r >> 11) * 0x1p-53;
}

/* The run of data in cell C as absolute block numbers [*START, *END). */
static void
cell_run (uint64_t c, uint64_t *start, uint64_t *end)
{
  double x = data_per_cell *
    (1 + length_spread * (2 * unit_interval (random_for (RUN_LENGTH, c)) - 1));
  uint64_t len, place = 0;

  /* Randomized rounding keeps the average exact for short runs. */
  x = floor (x + unit_interval (random_for (RUN_ROUNDING, c)));
  len = x >= cell_blocks ? cell_blocks : (uint64_t) x;
  if (len < cell_blocks)
    place = random_for (RUN_PLACE, c) % (cell_blocks - len + 1);
  *start = c * cell_blocks + place;
  *end = *start + len;
}

/* Whether block B holds data, and in *END the first block after B where
 * that may change (at most the end of the disk).
 */
static bool
block_segment (uint64_t b, uint64_t *end)
{
  uint64_t c = b / cell_blocks, start, run_end;
  bool data;

  cell_run (c, &start, &run_end);
  if (b < start) {
    *end = start;
    data = false;
  }
  else if (b < run_end) {
    *end = run_end;
    data = true;
  }
  else {
    *end = (c + 1) * cell_blocks;
    data = false;
  }
  *end = MIN (*end, nr_blocks);
  return data;
}

/* The contents of data block B. */
static void
data_block (uint64_t b, unsigned char *buf)
{
  if (random_content) {
    uint64_t state = random_for (BLOCK_BYTES, b);

    for (size_t i = 0; i < BLOCK_SIZE; i += 8) {
      uint64_t r = splitmix64 (&state);
      memcpy (buf + i, &r, 8);
    }
  }
  else
    memset (buf, 1 + random_for (BLOCK_BYTE, b) % 255, BLOCK_SIZE);
}

/* Call FN for each piece of [OFFSET, OFFSET+COUNT) lying in one block or
 * one stretch of holes, with the expected contents of data pieces.
 */
typedef int (*piece_fn) (const unsigned char *expected, uint32_t len,
                         uint64_t offset, void *opaque);

static int
for_each_piece (uint32_t count, uint64_t offset, piece_fn fn, void *opaque)
{
  unsigned char block[BLOCK_SIZE];

  while (count > 0) {
    uint64_t b = offset / BLOCK_SIZE, seg_end;
    uint64_t skip = offset % BLOCK_SIZE;
    uint32_t len;
    bool data = block_segment (b, &seg_end);

    if (data) {
      len = MIN (count, BLOCK_SIZE - skip);
      data_block (b, block);
      if (fn (block + skip, len, offset, opaque) == -1)
        return -1;
    }
    else {
      len = MIN ((uint64_t) count, seg_end * BLOCK_SIZE - offset);
      if (fn (NULL, len, offset, opaque) == -1)
        return -1;
    }
    count -= len;
    offset += len;
  }
  return 0;
}

static int64_t
sparse_random_get_size (void *handle)
{
  return size;
}

/* The disk never changes, so every connection sees the same data. */
static int
sparse_random_can_multi_conn (void *handle)
{
  return 1;
}

static int
sparse_random_can_fua (void *handle)
{
  return NBDKIT_FUA_NATIVE;
}

static int
read_piece (const unsigned char *expected, uint32_t len, uint64_t offset,
            void *bufp)
{
  unsigned char **buf = bufp;

  if (expected)
    memcpy (*buf, expected, len);
  else
    memset (*buf, 0, len);
  *buf += len;
  return 0;
}

static int
sparse_random_pread (void *handle, void *buf, uint32_t count,
                     uint64_t offset, uint32_t flags)
{
  unsigned char *p = buf;

  return for_each_piece (count, offset, read_piece, &p);
}

/* Writes must store what is already there, so that copying the disk onto
 * itself (nbdcopy "$uri" "$uri") checks the copy.
 */
static int
check_piece (const unsigned char *expected, uint32_t len, uint64_t offset,
             void *bufp)
{
  const unsigned char **buf = bufp;
  bool same = expected ? memcmp (*buf, expected, len) == 0
    : is_zero ((const char *) *buf, len);

  if (!same) {
    nbdkit_error ("data written at offset %" PRIu64 " does not match "
                  "the disk's contents", offset);
    nbdkit_set_error (EIO);
    return -1;
  }
  *buf += len;
  return 0;
}

static int
sparse_random_pwrite (void *handle, const void *buf, uint32_t count,
                      uint64_t offset, uint32_t flags)
{
  const unsigned char *p = buf;

  return for_each_piece (count, offset, check_piece, &p);
}

static int
sparse_random_flush (void *handle, uint32_t flags)
{
  return 0;
}

/* Zeroing or trimming succeeds only where the disk reads as zeroes. */
static int
check_zero_piece (const unsigned char *expected, uint32_t len,
                  uint64_t offset, void *opaque)
{
  if (expected && !is_zero ((const char *) expected, len)) {
    nbdkit_error ("%s at offset %" PRIu64 " would change the disk's "
                  "contents", (const char *) opaque, offset);
    nbdkit_set_error (EIO);
    return -1;
  }
  return 0;
}

static int
sparse_random_trim (void *handle, uint32_t count, uint64_t offset,
                    uint32_t flags)
{
  return for_each_piece (count, offset, check_zero_piece, "trim");
}

static int
sparse_random_zero (void *handle, uint32_t count, uint64_t offset,
                    uint32_t flags)
{
  return for_each_piece (count, offset, check_zero_piece, "zero");
}

static int
sparse_random_extents (void *handle, uint32_t count, uint64_t offset,
                       uint32_t flags, struct nbdkit_extents *extents)
{
  uint64_t end = MIN (offset + count, (uint64_t) size);

  while (offset < end) {
    uint64_t seg_end, next;
    bool data = block_segment (offset / BLOCK_SIZE, &seg_end);

    /* Merge following segments of the same kind into one extent. */
    next = MIN (seg_end * BLOCK_SIZE, end);
    while (next < end) {
      uint64_t more;

      if (block_segment (next / BLOCK_SIZE, &more) != data)
        break;
      next = MIN (more * BLOCK_SIZE, end);
    }

    if (nbdkit_add_extent (extents, offset, next - offset,
                           data ? 0
                           : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) == -1)
      return -1;
    if (flags & NBDKIT_FLAG_REQ_ONE)
      break;
    offset = next;
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name              = "sparse-random",
  .longname          = "nbdkit sparse random plugin",
  .version           = PACKAGE_VERSION,
  .description       = "sparse disks of repeatable random data",
  .config            = sparse_random_config,
  .config_complete   = sparse_random_config_complete,
  .config_help       = sparse_random_config_help,
  .magic_config_key  = "size",
  .open              = sparse_random_open,
  .get_size          = sparse_random_get_size,
  .can_multi_conn    = sparse_random_can_multi_conn,
  .can_fua           = sparse_random_can_fua,
  .pread             = sparse_random_pread,
  .pwrite            = sparse_random_pwrite,
  .flush             = sparse_random_flush,
  .trim              = sparse_random_trim,
  .zero              = sparse_random_zero,
  .extents           = sparse_random_extents,
};

NBDKIT_REGISTER_PLUGIN (plugin)
