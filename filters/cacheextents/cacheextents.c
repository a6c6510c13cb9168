/* SPDX-License-Identifier: BSD-3-Clause
 * The cacheextents filter: keep the last block status answer of the
 * layer below for each connection and answer later requests that fall
 * inside it from memory.  Any write, trim or zero, on any connection,
 * makes every kept answer stale.
 */

#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <nbdkit-filter.h>

#include "cleanup.h"

/* Bumped after every change to the data through this filter. */
static uint64_t generation;

struct handle {
  pthread_mutex_t lock;
  struct nbdkit_extents *cached;  /* the last answer, or NULL */
  uint64_t cached_generation;     /* the generation it was asked at */
};

static void *
cacheextents_open (nbdkit_next_open *next, nbdkit_context *context,
                   int readonly, const char *exportname, int is_tls)
{
  struct handle *h;

  if (next (context, readonly, exportname) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  pthread_mutex_init (&h->lock, NULL);
  return h;
}

static void
cacheextents_close (void *handle)
{
  struct handle *h = handle;

  nbdkit_extents_free (h->cached);
  pthread_mutex_destroy (&h->lock);
  free (h);
}

/* Add the extents of FROM that overlap [offset, offset+count) to TO.
 * The first is found by bisection: a client walking a large map asks
 * many times, each time a little further on.
 */
static int
copy_extents (const struct nbdkit_extents *from, uint32_t count,
              uint64_t offset, struct nbdkit_extents *to, int *err)
{
  size_t lo = 0, hi = nbdkit_extents_count (from), i;
  uint64_t end = offset + count;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    struct nbdkit_extent e = nbdkit_get_extent (from, mid);
    if (e.offset + e.length <= offset)
      lo = mid + 1;
    else
      hi = mid;
  }
  for (i = lo; i < nbdkit_extents_count (from); ++i) {
    struct nbdkit_extent e = nbdkit_get_extent (from, i);
    if (i > lo && e.offset >= end)
      break;
    if (nbdkit_add_extent (to, e.offset, e.length, e.type) == -1) {
      *err = errno;
      return -1;
    }
  }
  return 0;
}

/* Called with the lock: is OFFSET inside a valid cached answer? */
static bool
cache_covers (const struct handle *h, uint64_t offset)
{
  size_t n;
  struct nbdkit_extent first, last;

  if (h->cached == NULL ||
      h->cached_generation != __atomic_load_n (&generation, __ATOMIC_ACQUIRE))
    return false;
  n = nbdkit_extents_count (h->cached);
  if (n == 0)
    return false;
  first = nbdkit_get_extent (h->cached, 0);
  last = nbdkit_get_extent (h->cached, n - 1);
  return offset >= first.offset && offset < last.offset + last.length;
}

static int
cacheextents_extents (nbdkit_next *next, void *handle, uint32_t count,
                      uint64_t offset, uint32_t flags,
                      struct nbdkit_extents *extents, int *err)
{
  struct handle *h = handle;
  struct nbdkit_extents *answer;
  int64_t size;
  uint64_t gen;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&h->lock);
    if (cache_covers (h, offset))
      return copy_extents (h->cached, count, offset, extents, err);
  }

  size = next->get_size (next);
  if (size == -1) {
    *err = EIO;
    return -1;
  }
  /* Ask for everything the layer below is willing to say, even when the
   * client wants one extent, and keep all of it.  The generation is
   * taken first: a write finishing meanwhile makes the answer stale.
   */
  gen = __atomic_load_n (&generation, __ATOMIC_ACQUIRE);
  answer = nbdkit_extents_new (offset, size);
  if (answer == NULL) {
    *err = errno;
    return -1;
  }
  if (next->extents (next, count, offset, flags & ~NBDKIT_FLAG_REQ_ONE,
                     answer, err) == -1 ||
      copy_extents (answer, count, offset, extents, err) == -1) {
    nbdkit_extents_free (answer);
    return -1;
  }

  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&h->lock);
  nbdkit_extents_free (h->cached);
  h->cached = answer;
  h->cached_generation = gen;
  return 0;
}

/* After any change to the data, on success or failure. */
static int
changed (int r)
{
  __atomic_add_fetch (&generation, 1, __ATOMIC_RELEASE);
  return r;
}

static int
cacheextents_pwrite (nbdkit_next *next, void *handle, const void *buf,
                     uint32_t count, uint64_t offset, uint32_t flags,
                     int *err)
{
  return changed (next->pwrite (next, buf, count, offset, flags, err));
}

static int
cacheextents_trim (nbdkit_next *next, void *handle, uint32_t count,
                   uint64_t offset, uint32_t flags, int *err)
{
  return changed (next->trim (next, count, offset, flags, err));
}

static int
cacheextents_zero (nbdkit_next *next, void *handle, uint32_t count,
                   uint64_t offset, uint32_t flags, int *err)
{
  return changed (next->zero (next, count, offset, flags, err));
}

static struct nbdkit_filter filter = {
  .name              = "cacheextents",
  .longname          = "nbdkit cacheextents filter",
  .version           = PACKAGE_VERSION,
  .description       = "Cache the last block status answer",
  .open              = cacheextents_open,
  .close             = cacheextents_close,
  .extents           = cacheextents_extents,
  .pwrite            = cacheextents_pwrite,
  .trim              = cacheextents_trim,
  .zero              = cacheextents_zero,
};

NBDKIT_REGISTER_FILTER (filter)
