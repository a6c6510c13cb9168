/* SPDX-License-Identifier: BSD-3-Clause
 * allocator=sparse: the allocator interface over the sparse array of
 * sparse.c.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "allocator.h"
#include "sparse.h"

struct sparse_allocator {
  struct allocator a;
  struct sparse_array *sa;
};

#define SA(a) (((struct sparse_allocator *) (a))->sa)

static void
s_free (struct allocator *a)
{
  sparse_array_free (SA (a));
  free (a);
}

static int
s_read (struct allocator *a, void *buf, uint32_t count, uint64_t offset)
{
  sparse_array_read (SA (a), buf, count, offset);
  return 0;
}

static int
s_write (struct allocator *a, const void *buf, uint32_t count,
         uint64_t offset)
{
  if (sparse_array_write (SA (a), buf, count, offset) == -1) {
    nbdkit_error ("allocator=sparse: storing %" PRIu32 " bytes: %m", count);
    return -1;
  }
  return 0;
}

static int
s_fill (struct allocator *a, int c, uint64_t count, uint64_t offset)
{
  if (sparse_array_fill (SA (a), c, count, offset) == -1) {
    nbdkit_error ("allocator=sparse: storing %" PRIu64 " bytes: %m", count);
    return -1;
  }
  return 0;
}

static int
s_zero (struct allocator *a, uint64_t count, uint64_t offset)
{
  sparse_array_zero (SA (a), count, offset);
  return 0;
}

static int
s_extents (struct allocator *a, uint32_t count, uint64_t offset,
           struct nbdkit_extents *extents)
{
  return sparse_array_extents (SA (a), count, offset, extents);
}

static uint64_t
s_allocated (struct allocator *a)
{
  return sparse_array_allocated (SA (a));
}

static const struct allocator_ops sparse_ops = {
  .name = "sparse",
  .free = s_free,
  .read = s_read,
  .write = s_write,
  .fill = s_fill,
  .zero = s_zero,
  .extents = s_extents,
  .allocated = s_allocated,
};

struct allocator *
allocator_sparse_new (void)
{
  struct sparse_allocator *s = calloc (1, sizeof *s);

  if (s == NULL)
    return NULL;
  s->a.ops = &sparse_ops;
  s->sa = sparse_array_new ();
  if (s->sa == NULL) {
    free (s);
    return NULL;
  }
  return &s->a;
}
