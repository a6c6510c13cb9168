/* SPDX-License-Identifier: BSD-3-Clause
 * The storage behind the memory and data plugins, chosen with
 * allocator=NAME[,KEY=VALUE...]:
 *   sparse  a sparse radix tree of 32 KiB pages (sparse.c), the default;
 *   malloc  one contiguous buffer, optionally locked in RAM (mlock=true);
 *   zstd    a sparse array of zstd-compressed 32 KiB pages.
 * Unwritten ranges read as zeroes.  Every allocator is safe for
 * concurrent use from many threads.
 */

#ifndef NBDKIT_ALLOCATOR_H
#define NBDKIT_ALLOCATOR_H

#include <stdbool.h>
#include <stdint.h>

struct nbdkit_extents;
struct allocator;

struct allocator_ops {
  const char *name;
  void (*free) (struct allocator *a);
  int (*set_size) (struct allocator *a, uint64_t size);
  int (*read) (struct allocator *a, void *buf, uint32_t count,
               uint64_t offset);
  int (*write) (struct allocator *a, const void *buf, uint32_t count,
                uint64_t offset);
  int (*fill) (struct allocator *a, int c, uint64_t count, uint64_t offset);
  int (*zero) (struct allocator *a, uint64_t count, uint64_t offset);
  int (*extents) (struct allocator *a, uint32_t count, uint64_t offset,
                  struct nbdkit_extents *extents);
  uint64_t (*allocated) (struct allocator *a);
};

struct allocator {
  const struct allocator_ops *ops;
};

/* Parse SPEC ("sparse", "malloc,mlock=true", "zstd"; NULL means
 * sparse) and make an empty allocator.  On error calls nbdkit_error
 * naming the problem and returns NULL.
 */
extern struct allocator *allocator_create (const char *spec);

/* Check SPEC without creating anything (for .config). */
extern int allocator_check (const char *spec);

/* The names accepted by allocator_create, for --help and errors. */
#define ALLOCATOR_NAMES "sparse|malloc[,mlock=true]|zstd"

static inline void
allocator_free (struct allocator *a)
{
  if (a)
    a->ops->free (a);
}

/* The size the plugin will serve: the malloc allocator reserves (and
 * with mlock=true locks) it now; the others ignore it.  Writes beyond
 * it still work (the data plugin writes before it knows the size).
 */
static inline int
allocator_set_size (struct allocator *a, uint64_t size)
{
  return a->ops->set_size ? a->ops->set_size (a, size) : 0;
}

/* The data operations return -1 with errno set (and nbdkit_error
 * called) on failure.
 */
static inline int
allocator_read (struct allocator *a, void *buf, uint32_t count,
                uint64_t offset)
{
  return a->ops->read (a, buf, count, offset);
}

static inline int
allocator_write (struct allocator *a, const void *buf, uint32_t count,
                 uint64_t offset)
{
  return a->ops->write (a, buf, count, offset);
}

static inline int
allocator_fill (struct allocator *a, int c, uint64_t count, uint64_t offset)
{
  return a->ops->fill (a, c, count, offset);
}

static inline int
allocator_zero (struct allocator *a, uint64_t count, uint64_t offset)
{
  return a->ops->zero (a, count, offset);
}

static inline int
allocator_extents (struct allocator *a, uint32_t count, uint64_t offset,
                   struct nbdkit_extents *extents)
{
  return a->ops->extents (a, count, offset, extents);
}

static inline uint64_t
allocator_allocated (struct allocator *a)
{
  return a->ops->allocated (a);
}

/* The constructors, for allocator.c. */
extern struct allocator *allocator_sparse_new (void);
extern struct allocator *allocator_malloc_new (bool mlock);
extern struct allocator *allocator_zstd_new (void);

#endif /* NBDKIT_ALLOCATOR_H */
