/* SPDX-License-Identifier: BSD-3-Clause
 * The decompressed-block cache of the xz filter.  A request that needs
 * an absent block reserves a slot (evicting the least recently used
 * ready block), decompresses without holding the lock so other blocks
 * can be served meanwhile, then publishes the block.  Requests for a
 * block being decompressed wait for it instead of decoding it again.
 * An evicted block's buffer is reused for the next block when it is
 * large enough (blocks of a file are mostly the same size): fresh
 * buffers of many megabytes would cost a page fault per 4k each time.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "blkcache.h"
#include "cleanup.h"

struct slot {
  bool used;
  bool loading;                 /* reserved, being decompressed */
  uint64_t number;              /* which block */
  char *data;                   /* its bytes, once loaded */
  uint64_t capacity;            /* size of the data buffer */
  uint64_t last_use;            /* for least-recently-used eviction */
};

struct blkcache {
  pthread_mutex_t lock;
  pthread_cond_t changed;       /* a slot finished loading or was freed */
  uint64_t clock;
  unsigned depth;
  struct slot slots[];
};

struct blkcache *
blkcache_new (unsigned depth)
{
  struct blkcache *c;

  assert (depth > 0);
  c = calloc (1, sizeof *c + depth * sizeof c->slots[0]);
  if (c == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  pthread_mutex_init (&c->lock, NULL);
  pthread_cond_init (&c->changed, NULL);
  c->depth = depth;
  return c;
}

void
blkcache_free (struct blkcache *c)
{
  unsigned i;

  if (c == NULL)
    return;
  for (i = 0; i < c->depth; ++i) {
    assert (!c->slots[i].loading);
    free (c->slots[i].data);
  }
  pthread_cond_destroy (&c->changed);
  pthread_mutex_destroy (&c->lock);
  free (c);
}

/* Called with the lock held. */
static struct slot *
find_block (struct blkcache *c, uint64_t number)
{
  unsigned i;

  for (i = 0; i < c->depth; ++i)
    if (c->slots[i].used && c->slots[i].number == number)
      return &c->slots[i];
  return NULL;
}

/* A free slot, or else the least recently used loaded one; NULL if
 * every slot is being loaded.  Called with the lock held.
 */
static struct slot *
find_victim (struct blkcache *c)
{
  struct slot *victim = NULL;
  unsigned i;

  for (i = 0; i < c->depth; ++i) {
    struct slot *s = &c->slots[i];
    if (!s->used)
      return s;
    if (!s->loading && (victim == NULL || s->last_use < victim->last_use))
      victim = s;
  }
  return victim;
}

static void
copy_out (struct blkcache *c, struct slot *s, uint64_t skip,
          uint32_t count, void *buf)
{
  if (count > 0)
    memcpy (buf, s->data + skip, count);
  s->last_use = ++c->clock;
}

/* A buffer of at least SIZE bytes, reusing OLD (of OLD_CAPACITY). */
static char *
block_buffer (char *old, uint64_t old_capacity, uint64_t size,
              uint64_t *capacity)
{
  if (old && old_capacity >= size) {
    *capacity = old_capacity;
    return old;
  }
  free (old);
  *capacity = size ? size : 1;
  return malloc (*capacity);
}

int
blkcache_read (struct blkcache *c, struct xzfile *xz, nbdkit_next *next,
               const struct xz_block *blk, uint64_t skip, uint32_t count,
               void *buf, int *err)
{
  struct slot *s;
  char *data;
  uint64_t capacity;
  int r;

  assert (skip + count <= blk->size);
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
    for (;;) {
      s = find_block (c, blk->number);
      if (s && !s->loading) {
        copy_out (c, s, skip, count, buf);
        return 0;
      }
      if (s == NULL) {
        s = find_victim (c);
        if (s)
          break;
      }
      /* Wait for the block, or for a slot to become free. */
      pthread_cond_wait (&c->changed, &c->lock);
    }
    /* Take the victim's buffer; the slot is ours until loaded. */
    data = s->data;
    capacity = s->capacity;
    s->data = NULL;
    s->capacity = 0;
    s->used = s->loading = true;
    s->number = blk->number;
  }

  nbdkit_debug ("xz: decompressing block %" PRIu64 " (%" PRIu64 " bytes)",
                blk->number, blk->size);
  data = block_buffer (data, capacity, blk->size, &capacity);
  if (data == NULL) {
    nbdkit_error ("cannot allocate %" PRIu64 " bytes for block %" PRIu64
                  ": %m", blk->size, blk->number);
    *err = ENOMEM;
    r = -1;
  }
  else
    r = xzfile_decode_block (xz, next, blk, data, err);

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&c->lock);
  s->loading = false;
  if (r == -1) {
    free (data);
    s->used = false;
  }
  else {
    s->data = data;
    s->capacity = capacity;
    copy_out (c, s, skip, count, buf);
  }
  pthread_cond_broadcast (&c->changed);
  return r;
}
