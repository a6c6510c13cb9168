/* SPDX-License-Identifier: BSD-3-Clause
 * allocator=zstd: a sparse array of 32 KiB pages, each kept compressed
 * with zstd.  Pages that read as zero are not stored at all.  A page is
 * decompressed to be read or changed and compressed again after a
 * change, under one lock: this allocator trades speed for memory.
 * The pages live in an open-addressing hash table keyed by page number.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "allocator.h"
#include "cleanup.h"
#include "utils.h"

#define PAGE_SIZE 32768
#define COMPRESSION_LEVEL 3

struct blob {
  uint32_t len;
  unsigned char data[];
};

struct slot {
  uint64_t page;
  struct blob *blob;            /* NULL: the slot is free */
};

struct zstd_allocator {
  struct allocator a;
  pthread_mutex_t lock;
  struct slot *slots;
  size_t nslots;                /* a power of 2, or 0 */
  size_t used;
  uint64_t stored;              /* bytes of compressed data */
  ZSTD_CCtx *cctx;
  ZSTD_DCtx *dctx;
  unsigned char page[PAGE_SIZE];        /* scratch, under the lock */
  unsigned char *out;                   /* ZSTD_compressBound bytes */
};

#define Z(a) ((struct zstd_allocator *) (a))

static size_t
hash (uint64_t page, size_t nslots)
{
  return (page * UINT64_C (0x9E3779B97F4A7C15)) >> 17 & (nslots - 1);
}

static struct slot *
lookup (struct zstd_allocator *z, uint64_t page)
{
  if (z->nslots == 0)
    return NULL;
  for (size_t i = hash (page, z->nslots);; i = (i + 1) & (z->nslots - 1)) {
    if (z->slots[i].blob == NULL)
      return NULL;
    if (z->slots[i].page == page)
      return &z->slots[i];
  }
}

/* Remove the slot S, shifting later entries of its run back. */
static void
remove_slot (struct zstd_allocator *z, struct slot *s)
{
  size_t i = s - z->slots, j = i, mask = z->nslots - 1;

  z->stored -= s->blob->len;
  free (s->blob);
  s->blob = NULL;
  z->used--;
  for (;;) {
    j = (j + 1) & mask;
    if (z->slots[j].blob == NULL)
      return;
    size_t home = hash (z->slots[j].page, z->nslots);
    /* Move J back to I unless its home lies cyclically in (I, J]. */
    if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
      z->slots[i] = z->slots[j];
      z->slots[j].blob = NULL;
      i = j;
    }
  }
}

static int
rehash (struct zstd_allocator *z, size_t nslots)
{
  struct slot *old = z->slots;
  size_t oldn = z->nslots;

  z->slots = calloc (nslots, sizeof *z->slots);
  if (z->slots == NULL) {
    z->slots = old;
    return -1;
  }
  z->nslots = nslots;
  for (size_t i = 0; i < oldn; i++)
    if (old[i].blob) {
      size_t j = hash (old[i].page, nslots);
      while (z->slots[j].blob)
        j = (j + 1) & (nslots - 1);
      z->slots[j] = old[i];
    }
  free (old);
  return 0;
}

/* Store the contents of z->page (or remove it if all zero) as PAGE. */
static int
store_page (struct zstd_allocator *z, uint64_t page)
{
  struct slot *s = lookup (z, page);
  struct blob *b;
  size_t n;

  if (is_zero ((const char *) z->page, PAGE_SIZE)) {
    if (s)
      remove_slot (z, s);
    return 0;
  }
  n = ZSTD_compressCCtx (z->cctx, z->out, ZSTD_compressBound (PAGE_SIZE),
                         z->page, PAGE_SIZE, COMPRESSION_LEVEL);
  if (ZSTD_isError (n)) {
    nbdkit_error ("allocator=zstd: compressing: %s", ZSTD_getErrorName (n));
    errno = EIO;
    return -1;
  }
  b = malloc (sizeof *b + n);
  if (b == NULL)
    goto nomem;
  b->len = n;
  memcpy (b->data, z->out, n);
  if (s) {
    z->stored -= s->blob->len;
    free (s->blob);
  }
  else {
    if ((z->used + 1) * 4 > z->nslots * 3 &&
        rehash (z, z->nslots ? z->nslots * 2 : 1024) == -1) {
      free (b);
      goto nomem;
    }
    size_t i = hash (page, z->nslots);
    while (z->slots[i].blob)
      i = (i + 1) & (z->nslots - 1);
    s = &z->slots[i];
    s->page = page;
    z->used++;
  }
  s->blob = b;
  z->stored += n;
  return 0;

 nomem:
  nbdkit_error ("allocator=zstd: storing a page: %m");
  errno = ENOMEM;
  return -1;
}

/* Put PAGE's contents into z->page. */
static int
load_page (struct zstd_allocator *z, uint64_t page)
{
  struct slot *s = lookup (z, page);
  size_t n;

  if (s == NULL) {
    memset (z->page, 0, PAGE_SIZE);
    return 0;
  }
  n = ZSTD_decompressDCtx (z->dctx, z->page, PAGE_SIZE,
                           s->blob->data, s->blob->len);
  if (ZSTD_isError (n) || n != PAGE_SIZE) {
    nbdkit_error ("allocator=zstd: page %" PRIu64 " is corrupt: %s", page,
                  ZSTD_isError (n) ? ZSTD_getErrorName (n) : "short page");
    errno = EIO;
    return -1;
  }
  return 0;
}

/* Change [OFFSET, OFFSET+COUNT) page by page: SRC bytes, or the byte C
 * when SRC is NULL.
 */
static int
modify (struct zstd_allocator *z, const unsigned char *src, int c,
        uint64_t count, uint64_t offset)
{
  while (count > 0) {
    uint64_t page = offset / PAGE_SIZE, in = offset % PAGE_SIZE;
    uint64_t n = MIN (count, PAGE_SIZE - in);

    if (n < PAGE_SIZE && load_page (z, page) == -1)
      return -1;
    if (src)
      memcpy (z->page + in, src, n);
    else
      memset (z->page + in, c, n);
    if (store_page (z, page) == -1)
      return -1;
    if (src)
      src += n;
    offset += n;
    count -= n;
  }
  return 0;
}

static int
z_read (struct allocator *a, void *buf, uint32_t count, uint64_t offset)
{
  struct zstd_allocator *z = Z (a);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&z->lock);
  unsigned char *p = buf;

  while (count > 0) {
    uint64_t in = offset % PAGE_SIZE, n = MIN (count, PAGE_SIZE - in);

    if (load_page (z, offset / PAGE_SIZE) == -1)
      return -1;
    memcpy (p, z->page + in, n);
    p += n;
    offset += n;
    count -= n;
  }
  return 0;
}

static int
z_write (struct allocator *a, const void *buf, uint32_t count,
         uint64_t offset)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&Z (a)->lock);
  return modify (Z (a), buf, 0, count, offset);
}

static int
z_zero (struct allocator *a, uint64_t count, uint64_t offset)
{
  struct zstd_allocator *z = Z (a);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&z->lock);
  uint64_t first, last;

  if (count == 0)
    return 0;
  /* Partial pages at the ends, then drop the whole ones in between. */
  first = (offset + PAGE_SIZE - 1) / PAGE_SIZE;
  last = (offset + count) / PAGE_SIZE;          /* exclusive */
  if (first >= last)
    return modify (z, NULL, 0, count, offset);
  if (offset % PAGE_SIZE &&
      modify (z, NULL, 0, first * PAGE_SIZE - offset, offset) == -1)
    return -1;
  if ((offset + count) % PAGE_SIZE &&
      modify (z, NULL, 0, (offset + count) % PAGE_SIZE,
              last * PAGE_SIZE) == -1)
    return -1;
  if (last - first > z->used) {
    for (size_t i = 0; i < z->nslots; ) {
      struct slot *s = &z->slots[i];
      if (s->blob && s->page >= first && s->page < last)
        remove_slot (z, s);     /* slot I now holds a later entry */
      else
        i++;
    }
  }
  else {
    for (uint64_t page = first; page < last; page++) {
      struct slot *s = lookup (z, page);
      if (s)
        remove_slot (z, s);
    }
  }
  return 0;
}

static int
z_fill (struct allocator *a, int c, uint64_t count, uint64_t offset)
{
  if (c == 0)
    return z_zero (a, count, offset);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&Z (a)->lock);
  return modify (Z (a), NULL, c, count, offset);
}

static int
z_extents (struct allocator *a, uint32_t count, uint64_t offset,
           struct nbdkit_extents *extents)
{
  struct zstd_allocator *z = Z (a);
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&z->lock);
  uint64_t end = offset + count, run_start = offset;
  int run_type = -1;

  while (offset < end) {
    uint64_t next = MIN (end, (offset / PAGE_SIZE + 1) * PAGE_SIZE);
    int type = lookup (z, offset / PAGE_SIZE) ? 0
      : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;

    if (type != run_type && run_type != -1) {
      if (nbdkit_add_extent (extents, run_start, offset - run_start,
                             run_type) == -1)
        return -1;
      run_start = offset;
    }
    run_type = type;
    offset = next;
  }
  return nbdkit_add_extent (extents, run_start, end - run_start, run_type);
}

static uint64_t
z_allocated (struct allocator *a)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&Z (a)->lock);
  return Z (a)->stored;
}

static void
z_free (struct allocator *a)
{
  struct zstd_allocator *z = Z (a);

  for (size_t i = 0; i < z->nslots; i++)
    free (z->slots[i].blob);
  free (z->slots);
  free (z->out);
  ZSTD_freeCCtx (z->cctx);
  ZSTD_freeDCtx (z->dctx);
  pthread_mutex_destroy (&z->lock);
  free (z);
}

static const struct allocator_ops zstd_ops = {
  .name = "zstd",
  .free = z_free,
  .read = z_read,
  .write = z_write,
  .fill = z_fill,
  .zero = z_zero,
  .extents = z_extents,
  .allocated = z_allocated,
};

struct allocator *
allocator_zstd_new (void)
{
  struct zstd_allocator *z = calloc (1, sizeof *z);

  if (z == NULL)
    return NULL;
  z->a.ops = &zstd_ops;
  pthread_mutex_init (&z->lock, NULL);
  z->cctx = ZSTD_createCCtx ();
  z->dctx = ZSTD_createDCtx ();
  z->out = malloc (ZSTD_compressBound (PAGE_SIZE));
  if (z->cctx == NULL || z->dctx == NULL || z->out == NULL) {
    z_free (&z->a);
    errno = ENOMEM;
    return NULL;
  }
  return &z->a;
}
