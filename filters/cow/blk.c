/* SPDX-License-Identifier: BSD-3-Clause
 * The cow filter's overlay store: an unlinked temporary file laid out
 * like the disk (block N at offset N * blksize), the per-block state map
 * (2 bits a block) and a fixed set of locks serializing changes to a
 * block.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nbdkit-filter.h>

#include "bitmap.h"
#include "blk.h"
#include "cleanup.h"
#include "fileio.h"
#include "utils.h"

/* Changes to block N are serialized by block_locks[N % NR_BLOCK_LOCKS]:
 * a fixed number, so the memory used does not grow with the disk.
 * Code holds at most one of them at a time.
 */
#define NR_BLOCK_LOCKS 128
static pthread_mutex_t block_locks[NR_BLOCK_LOCKS] = {
  [0 ... NR_BLOCK_LOCKS - 1] = PTHREAD_MUTEX_INITIALIZER
};

/* Guards setting the disk size (once, by the first connection). */
static pthread_mutex_t size_lock = PTHREAD_MUTEX_INITIALIZER;

static int fd = -1;             /* the overlay file */
static struct bitmap bm;        /* enum block_state of every block */
static uint64_t disk_size;
static bool size_known;

#define BLOCK_LOCK(blknum) \
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&block_locks[(blknum) % NR_BLOCK_LOCKS])

/* An unlinked temporary file in $TMPDIR (default /var/tmp). */
static int
create_overlay_file (void)
{
  const char *tmpdir;
  int r = make_unlinked_tmpfile ("nbdkit-cow", &tmpdir);

  if (r == -1)
    nbdkit_error ("cannot create the overlay file in %s: %m "
                  "(set TMPDIR to a writable directory)", tmpdir);
  return r;
}

int
blk_init (uint32_t blksize)
{
  bitmap_init (&bm, blksize, 2);
  fd = create_overlay_file ();
  return fd == -1 ? -1 : 0;
}

void
blk_free (void)
{
  if (fd >= 0)
    close (fd);
  fd = -1;
  bitmap_free (&bm);
  /* After unload, get_ready starts again from an empty map. */
  size_known = false;
}

int
blk_set_size (uint64_t size)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&size_lock);

  if (size_known) {
    if (size != disk_size) {
      nbdkit_error ("the underlying disk is %" PRIu64 " bytes, but the "
                    "overlay was made for %" PRIu64 " bytes: the plugin must "
                    "not change size under the cow filter", size, disk_size);
      return -1;
    }
    return 0;
  }
  if (bitmap_resize (&bm, size) == -1) {
    nbdkit_error ("cannot allocate the block map for %" PRIu64 " bytes: %m",
                  size);
    return -1;
  }
  disk_size = size;
  size_known = true;
  nbdkit_debug ("cow: %" PRIu64 " blocks of %" PRIu32 " bytes, block map "
                "%zu bytes", bm.nr_blocks, bm.blksize, bm.size);
  return 0;
}

uint32_t
blk_size (void)
{
  return bm.blksize;
}

uint64_t
blk_disk_size (void)
{
  return disk_size;
}

enum block_state
blk_get_state (uint64_t blknum)
{
  return bitmap_get_blk (&bm, blknum, BLOCK_NOT_ALLOCATED);
}

uint32_t
blk_length (uint64_t blknum)
{
  uint64_t start = blknum * bm.blksize;

  return MIN ((uint64_t) bm.blksize, disk_size - start);
}

/* Whole reads and writes of the overlay file.  Reading past its end
 * (never-written tail) gives zeroes.
 */
int
blk_read_overlay (void *buf, uint32_t count, uint64_t offset, int *err)
{
  if (full_pread (fd, buf, count, offset) == -1) {
    *err = errno;
    nbdkit_error ("pread: overlay file: %m");
    return -1;
  }
  return 0;
}

static int
write_overlay (const void *buf, uint32_t count, uint64_t offset, int *err)
{
  if (full_pwrite (fd, buf, count, offset) == -1) {
    *err = errno;
    nbdkit_error ("pwrite: overlay file: %m");
    return -1;
  }
  return 0;
}

/* Give the space of a block back to the file system; the block's state
 * says it reads as zeroes, so failure only costs disk space.
 */
static void
punch_block (uint64_t blknum)
{
  if (fallocate (fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                 blknum * bm.blksize, bm.blksize) == -1 &&
      errno != EOPNOTSUPP && errno != ENOSYS)
    nbdkit_debug ("cow: punching a hole in the overlay: %m");
}

/* With the block's lock held: the current contents of the block into
 * BOUNCE (blk_size () bytes; the part past the end of the disk is
 * zeroed).
 */
static int
read_block_locked (nbdkit_next *next, uint64_t blknum, char *bounce,
                   int *err)
{
  uint32_t len = blk_length (blknum);
  uint64_t offset = blknum * bm.blksize;

  switch (blk_get_state (blknum)) {
  case BLOCK_NOT_ALLOCATED:
    if (next->pread (next, bounce, len, offset, 0, err) == -1)
      return -1;
    memset (bounce + len, 0, bm.blksize - len);
    return 0;
  case BLOCK_ALLOCATED:
    return blk_read_overlay (bounce, bm.blksize, offset, err);
  case BLOCK_ZERO:
  default:
    memset (bounce, 0, bm.blksize);
    return 0;
  }
}

int
blk_write_full (uint64_t blknum, const void *buf, int *err)
{
  BLOCK_LOCK (blknum);

  if (write_overlay (buf, blk_length (blknum), blknum * bm.blksize,
                     err) == -1)
    return -1;
  bitmap_set_blk (&bm, blknum, BLOCK_ALLOCATED);
  return 0;
}

int
blk_write_part (nbdkit_next *next, uint64_t blknum,
                uint32_t offset, uint32_t count, const void *buf,
                char *bounce, int *err)
{
  enum block_state state;
  uint64_t start = blknum * bm.blksize;

  assert (offset + count <= blk_length (blknum));
  BLOCK_LOCK (blknum);

  state = blk_get_state (blknum);
  if (state == BLOCK_ALLOCATED) {
    /* The rest of the block is already in the overlay. */
    if (buf == NULL) {
      memset (bounce, 0, count);
      buf = bounce;
    }
    return write_overlay (buf, count, start + offset, err);
  }
  if (state == BLOCK_ZERO && buf == NULL)
    return 0;                   /* zeroing part of a zero block */

  /* Read-modify-write: the rest of the block comes from the plugin or
   * is zeroes.
   */
  if (read_block_locked (next, blknum, bounce, err) == -1)
    return -1;
  if (buf)
    memcpy (bounce + offset, buf, count);
  else
    memset (bounce + offset, 0, count);
  if (write_overlay (bounce, blk_length (blknum), start, err) == -1)
    return -1;
  bitmap_set_blk (&bm, blknum, BLOCK_ALLOCATED);
  return 0;
}

int
blk_zero_full (uint64_t blknum, int *err)
{
  enum block_state old;

  BLOCK_LOCK (blknum);
  old = bitmap_set_blk (&bm, blknum, BLOCK_ZERO);
  if (old == BLOCK_ALLOCATED)
    punch_block (blknum);
  return 0;
}

int
blk_copy_up (nbdkit_next *next, uint64_t blknum, char *bounce, int *err)
{
  bool copy;

  BLOCK_LOCK (blknum);
  /* Decided under the lock: a write may have got there first. */
  copy = blk_get_state (blknum) == BLOCK_NOT_ALLOCATED;
  if (read_block_locked (next, blknum, bounce, err) == -1)
    return -1;
  if (copy) {
    if (write_overlay (bounce, blk_length (blknum), blknum * bm.blksize,
                       err) == -1)
      return -1;
    bitmap_set_blk (&bm, blknum, BLOCK_ALLOCATED);
  }
  return 0;
}
