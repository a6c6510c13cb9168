/* SPDX-License-Identifier: BSD-3-Clause
 * allocator=malloc[,mlock=true]: the disk is one contiguous anonymous
 * mapping (zero pages cost nothing until written), reserved at the
 * served size and grown if something writes beyond it.  With mlock=true
 * the whole mapping is locked in RAM so that it is never swapped out.
 * Every byte counts as allocated data in extents.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "allocator.h"
#include "cleanup.h"

struct malloc_allocator {
  struct allocator a;
  bool mlock;
  pthread_rwlock_t lock;        /* write-held only while growing */
  unsigned char *mem;
  uint64_t size;                /* bytes mapped */
};

#define M(a) ((struct malloc_allocator *) (a))

static void
m_free (struct allocator *a)
{
  struct malloc_allocator *m = M (a);

  if (m->mem)
    munmap (m->mem, m->size);
  pthread_rwlock_destroy (&m->lock);
  free (m);
}

/* Make the mapping at least SIZE bytes.  Called with the lock held for
 * writing (or before any other thread can see M).
 */
static int
grow (struct malloc_allocator *m, uint64_t size)
{
  void *p;

  if (size <= m->size)
    return 0;
  if (size > SIZE_MAX / 2) {
    errno = ENOMEM;
    goto fail;
  }
  if (m->mem == NULL)
    p = mmap (NULL, size, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  else
    p = mremap (m->mem, m->size, size, MREMAP_MAYMOVE);
  if (p == MAP_FAILED)
    goto fail;
  if (m->mlock && mlock (p, size) == -1) {
    int err = errno;
    nbdkit_error ("allocator=malloc,mlock=true: cannot lock %" PRIu64
                  " bytes in RAM: %s (see the locked memory limit, "
                  "ulimit -l)", size, strerror (err));
    if (m->mem == NULL)
      munmap (p, size);
    else
      m->mem = p;
    errno = err;
    return -1;
  }
  m->mem = p;
  m->size = size;
  return 0;

 fail:
  nbdkit_error ("allocator=malloc: cannot allocate %" PRIu64 " bytes: %m",
                size);
  return -1;
}

static int
m_set_size (struct allocator *a, uint64_t size)
{
  struct malloc_allocator *m = M (a);
  ACQUIRE_WRLOCK_FOR_CURRENT_SCOPE (&m->lock);

  return grow (m, size);
}

static int
m_read (struct allocator *a, void *buf, uint32_t count, uint64_t offset)
{
  struct malloc_allocator *m = M (a);
  ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&m->lock);
  uint64_t n = 0;

  if (offset < m->size) {
    n = m->size - offset < count ? m->size - offset : count;
    memcpy (buf, m->mem + offset, n);
  }
  memset ((char *) buf + n, 0, count - n);
  return 0;
}

/* Run FN over [OFFSET, OFFSET+COUNT), growing the mapping first if the
 * range goes past it.
 */
static int
m_apply (struct malloc_allocator *m, uint64_t count, uint64_t offset,
         void (*fn) (unsigned char *, uint64_t, const void *),
         const void *arg)
{
  if (offset + count > m->size) {
    ACQUIRE_WRLOCK_FOR_CURRENT_SCOPE (&m->lock);
    if (grow (m, offset + count) == -1)
      return -1;
  }
  ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&m->lock);
  fn (m->mem + offset, count, arg);
  return 0;
}

static void
do_copy (unsigned char *p, uint64_t n, const void *arg)
{
  memcpy (p, arg, n);
}

static void
do_fill (unsigned char *p, uint64_t n, const void *arg)
{
  memset (p, *(const int *) arg, n);
}

static int
m_write (struct allocator *a, const void *buf, uint32_t count,
         uint64_t offset)
{
  return m_apply (M (a), count, offset, do_copy, buf);
}

static int
m_fill (struct allocator *a, int c, uint64_t count, uint64_t offset)
{
  return m_apply (M (a), count, offset, do_fill, &c);
}

static int
m_zero (struct allocator *a, uint64_t count, uint64_t offset)
{
  struct malloc_allocator *m = M (a);
  ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&m->lock);

  /* Beyond the mapping everything already reads as zero. */
  if (offset < m->size) {
    if (count > m->size - offset)
      count = m->size - offset;
    memset (m->mem + offset, 0, count);
  }
  return 0;
}

static int
m_extents (struct allocator *a, uint32_t count, uint64_t offset,
           struct nbdkit_extents *extents)
{
  return nbdkit_add_extent (extents, offset, count, 0);
}

static uint64_t
m_allocated (struct allocator *a)
{
  struct malloc_allocator *m = M (a);
  ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&m->lock);

  return m->size;
}

static const struct allocator_ops malloc_ops = {
  .name = "malloc",
  .free = m_free,
  .set_size = m_set_size,
  .read = m_read,
  .write = m_write,
  .fill = m_fill,
  .zero = m_zero,
  .extents = m_extents,
  .allocated = m_allocated,
};

struct allocator *
allocator_malloc_new (bool lock)
{
  struct malloc_allocator *m = calloc (1, sizeof *m);

  if (m == NULL)
    return NULL;
  m->a.ops = &malloc_ops;
  m->mlock = lock;
  pthread_rwlock_init (&m->lock, NULL);
  return &m->a;
}
