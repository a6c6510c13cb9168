/* SPDX-License-Identifier: BSD-3-Clause
 * Zeroed 32 KiB blocks for the sparse array, cut from large anonymous
 * mappings.
 *
 * A first write into a RAM disk is bound by page faults: one per 4 KiB
 * of new memory, about 17 µs each on this project's VM, 262,000 of them
 * per GiB.  So blocks are cut, in order, from 2 MiB mappings aligned to
 * 2 MiB.  A block that is about to be written whole (DENSE) comes from
 * a mapping marked for transparent huge pages (MADV_HUGEPAGE): where
 * the kernel allows it, one fault then brings in 64 blocks at once, and
 * since blocks are handed out in order, at most one partly used chunk
 * is memory not yet needed.  Other blocks (tables, and pages that get a
 * small write) come from mappings kept to 4 KiB pages
 * (MADV_NOHUGEPAGE): a 4 KiB write scattered over a large disk then
 * costs 4 KiB of memory, not a whole block.  Fresh anonymous memory is
 * zero, so nothing is cleared by hand.  A freed block is given back to the kernel (MADV_DONTNEED, after
 * which it reads as zeroes again) and kept for reuse; the mappings go
 * when the array does.  The AddressSanitizer builds keep calloc and
 * free, so that it still sees every block's bounds.
 */

#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "blocks.h"
#include "vector.h"

#if defined(__SANITIZE_ADDRESS__)
#define USE_CALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define USE_CALLOC 1
#endif
#endif

#define CHUNK_SIZE (2 * 1024 * 1024)

DEFINE_VECTOR_TYPE (ptr_vector, void *);

struct pool {
  char *next;                   /* the rest of the newest chunk */
  size_t left;                  /* blocks left there */
};

struct blocks {
  size_t block_size;
  pthread_mutex_t lock;
  struct pool pools[2];         /* [dense] */
  ptr_vector chunks;            /* every mapping, to unmap at the end */
  ptr_vector free;              /* blocks given back, zero again */
};

struct blocks *
blocks_new (size_t block_size)
{
  struct blocks *b = calloc (1, sizeof *b);

  if (b == NULL)
    return NULL;
  b->block_size = block_size;
  pthread_mutex_init (&b->lock, NULL);
  return b;
}

void
blocks_free_all (struct blocks *b)
{
  size_t i;

  if (b == NULL)
    return;
  for (i = 0; i < b->chunks.len; ++i)
    munmap (b->chunks.ptr[i], CHUNK_SIZE);
  ptr_vector_reset (&b->chunks);
  ptr_vector_reset (&b->free);
  pthread_mutex_destroy (&b->lock);
  free (b);
}

#ifndef USE_CALLOC

/* A mapping of CHUNK_SIZE aligned to CHUNK_SIZE, so that the kernel
 * can back it with one huge page if DENSE.
 */
static void *
map_chunk (bool dense)
{
  char *p = mmap (NULL, 2 * CHUNK_SIZE, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  uintptr_t head;

  if (p == MAP_FAILED)
    return NULL;
  head = -(uintptr_t) p & (CHUNK_SIZE - 1);
  if (head > 0)
    munmap (p, head);
  munmap (p + head + CHUNK_SIZE, CHUNK_SIZE - head);
  p += head;
  /* Advice only: the kernel may have transparent huge pages off, or
   * on everywhere.
   */
  madvise (p, CHUNK_SIZE, dense ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  return p;
}

static int
new_chunk (struct blocks *b, struct pool *pool, bool dense)
{
  void *p = map_chunk (dense);

  if (p == NULL)
    return -1;
  if (ptr_vector_append (&b->chunks, p) == -1) {
    munmap (p, CHUNK_SIZE);
    return -1;
  }
  pool->next = p;
  pool->left = CHUNK_SIZE / b->block_size;
  return 0;
}

#endif /* !USE_CALLOC */

void *
blocks_get (struct blocks *b, bool dense)
{
  void *p = NULL;
  struct pool *pool = &b->pools[dense];

#ifdef USE_CALLOC
  (void) pool;
  p = calloc (1, b->block_size);
#else
  pthread_mutex_lock (&b->lock);
  if (b->free.len > 0)
    p = b->free.ptr[--b->free.len];
  else if (pool->left > 0 || new_chunk (b, pool, dense) == 0) {
    p = pool->next;
    pool->next += b->block_size;
    pool->left--;
  }
  pthread_mutex_unlock (&b->lock);
#endif
  if (p == NULL)
    errno = ENOMEM;
  return p;
}

void
blocks_put (struct blocks *b, void *p, bool written)
{
#ifdef USE_CALLOC
  (void) written;
  free (p);
#else
  /* A block that may have been written is zeroed (and its memory given
   * back) by the kernel; if that cannot be done, by hand.
   */
  if (written && madvise (p, b->block_size, MADV_DONTNEED) == -1)
    memset (p, 0, b->block_size);
  pthread_mutex_lock (&b->lock);
  /* If the list cannot grow, the block stays unused until the end. */
  ptr_vector_append (&b->free, p);
  pthread_mutex_unlock (&b->lock);
#endif
}

void
blocks_forget (struct blocks *b, void *p)
{
  (void) b;
#ifdef USE_CALLOC
  free (p);
#else
  (void) p;
#endif
}
