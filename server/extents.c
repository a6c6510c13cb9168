/* SPDX-License-Identifier: BSD-3-Clause
 * Extent lists (base:allocation): plugins add extents in ascending,
 * contiguous order; adjacent extents of the same type are merged and the
 * list is clipped to the requested range.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "internal.h"
#include "utils.h"

/* nbd-protocol.md: a server SHOULD NOT send more than 2^20 descriptors. */
#define MAX_EXTENTS (1 << 20)

DEFINE_VECTOR_TYPE (extent_list, struct nbdkit_extent)

struct nbdkit_extents {
  extent_list extents;
  uint64_t start, end;          /* the range of interest */
  uint64_t next;                /* where the next extent must start */
};

struct nbdkit_extents *
extents_new_internal (uint64_t start, uint64_t end)
{
  struct nbdkit_extents *r;

  if (start > INT64_MAX || end > INT64_MAX || start > end) {
    nbdkit_error ("nbdkit_extents_new: start (%" PRIu64 ") or end (%" PRIu64
                  ") is out of range", start, end);
    errno = ERANGE;
    return NULL;
  }
  r = calloc (1, sizeof *r);
  if (r == NULL) {
    nbdkit_error ("nbdkit_extents_new: calloc: %m");
    return NULL;
  }
  r->start = r->next = start;
  r->end = end;
  return r;
}

NBDKIT_DLL_PUBLIC struct nbdkit_extents *
nbdkit_extents_new (uint64_t start, uint64_t end)
{
  return extents_new_internal (start, end);
}

NBDKIT_DLL_PUBLIC void
nbdkit_extents_free (struct nbdkit_extents *exts)
{
  if (exts) {
    extent_list_reset (&exts->extents);
    free (exts);
  }
}

NBDKIT_DLL_PUBLIC size_t
nbdkit_extents_count (const struct nbdkit_extents *exts)
{
  return exts->extents.len;
}

NBDKIT_DLL_PUBLIC struct nbdkit_extent
nbdkit_get_extent (const struct nbdkit_extents *exts, size_t i)
{
  assert (i < exts->extents.len);
  return exts->extents.ptr[i];
}

NBDKIT_DLL_PUBLIC int
nbdkit_add_extent (struct nbdkit_extents *exts,
                   uint64_t offset, uint64_t length, uint32_t type)
{
  uint64_t end;

  if (length == 0)
    return 0;
  if (__builtin_add_overflow (offset, length, &end) || end > INT64_MAX) {
    nbdkit_error ("nbdkit_add_extent: offset %" PRIu64 " + length %" PRIu64
                  " overflows", offset, length);
    errno = ERANGE;
    return -1;
  }
  /* Once the range is covered, further extents are ignored. */
  if (exts->next >= exts->end && exts->extents.len > 0)
    return 0;
  if (offset != exts->next) {
    /* Extents may start before the range of interest, but never leave a
     * gap or overlap what was already added.
     */
    if (!(exts->extents.len == 0 && offset < exts->start)) {
      nbdkit_error ("nbdkit_add_extent: extents must be added in ascending "
                    "order and must be contiguous (expected offset %" PRIu64
                    ", got %" PRIu64 ")", exts->next, offset);
      errno = ERANGE;
      return -1;
    }
  }
  exts->next = end;
  /* Clip to the start of the range of interest. */
  if (end <= exts->start)
    return 0;
  if (offset < exts->start) {
    length = end - exts->start;
    offset = exts->start;
  }
  type &= NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;

  if (exts->extents.len > 0) {
    struct nbdkit_extent *last = &exts->extents.ptr[exts->extents.len - 1];
    if (last->type == type) {
      last->length += length;
      return 0;
    }
  }
  if (exts->extents.len >= MAX_EXTENTS)
    return 0;                   /* enough for one reply */
  if (extent_list_append (&exts->extents, (struct nbdkit_extent) {
        .offset = offset, .length = length, .type = type }) == -1) {
    nbdkit_error ("nbdkit_add_extent: realloc: %m");
    return -1;
  }
  return 0;
}

/* Filters: the extents of the whole range [offset, offset+count), asking
 * the next layer repeatedly if it answers with less.
 */
NBDKIT_DLL_PUBLIC struct nbdkit_extents *
nbdkit_extents_full (nbdkit_next *next, uint32_t count, uint64_t offset,
                     uint32_t flags, int *err)
{
  struct nbdkit_extents *ret;
  uint64_t end = offset + count;

  ret = nbdkit_extents_new (offset, end);
  if (ret == NULL) {
    *err = errno;
    return NULL;
  }
  while (offset < end) {
    struct nbdkit_extents *part = nbdkit_extents_new (offset, end);
    size_t i;

    if (part == NULL) {
      *err = errno;
      goto error;
    }
    if (next->extents (next, end - offset, offset,
                       flags & ~NBDKIT_FLAG_REQ_ONE, part, err) == -1) {
      nbdkit_extents_free (part);
      goto error;
    }
    for (i = 0; i < part->extents.len; ++i) {
      struct nbdkit_extent e = part->extents.ptr[i];
      if (nbdkit_add_extent (ret, e.offset, e.length, e.type) == -1) {
        *err = errno;
        nbdkit_extents_free (part);
        goto error;
      }
      offset = e.offset + e.length;
    }
    if (part->extents.len == 0) {
      nbdkit_extents_free (part);
      nbdkit_error ("nbdkit_extents_full: the next layer returned no extents");
      *err = EIO;
      goto error;
    }
    nbdkit_extents_free (part);
  }
  return ret;

 error:
  nbdkit_extents_free (ret);
  return NULL;
}

/* Filters: extents rounded to ALIGN (a power of 2): a block that mixes
 * types is reported with the types all its parts share.
 */
NBDKIT_DLL_PUBLIC int
nbdkit_extents_aligned (nbdkit_next *next, uint32_t count, uint64_t offset,
                        uint32_t flags, uint32_t align,
                        struct nbdkit_extents *exts, int *err)
{
  size_t i, j;
  struct nbdkit_extent *e, *e2;

  assert (is_power_of_2 (align));
  if (next->extents (next, count, offset, flags, exts, err) == -1)
    return -1;

  for (i = 0; i < exts->extents.len; ++i) {
    e = &exts->extents.ptr[i];
    if (!IS_ALIGNED (e->length, align)) {
      /* Fold the following extents into this one up to alignment. */
      if (e->length > align) {
        /* Split off the aligned head; the tail is handled next round. */
        uint64_t head = ROUND_DOWN (e->length, align);
        struct nbdkit_extent tail = {
          .offset = e->offset + head, .length = e->length - head,
          .type = e->type };
        e->length = head;
        if (extent_list_insert (&exts->extents, tail, i + 1) == -1) {
          nbdkit_error ("realloc: %m");
          *err = errno;
          return -1;
        }
        continue;
      }
      /* Short extent: absorb successors up to one aligned block. */
      j = i + 1;
      while (e->length < align) {
        if (j >= exts->extents.len) {
          /* Ask for more. */
          struct nbdkit_extents *more;
          uint64_t pos = e->offset + e->length;
          more = nbdkit_extents_new (pos, pos + align - e->length);
          if (more == NULL) {
            *err = errno;
            return -1;
          }
          if (next->extents (next, align - e->length, pos, flags, more,
                             err) == -1) {
            nbdkit_extents_free (more);
            return -1;
          }
          for (size_t k = 0; k < more->extents.len; ++k) {
            if (extent_list_append (&exts->extents,
                                    more->extents.ptr[k]) == -1) {
              nbdkit_error ("realloc: %m");
              *err = errno;
              nbdkit_extents_free (more);
              return -1;
            }
            e = &exts->extents.ptr[i];
          }
          nbdkit_extents_free (more);
          if (j >= exts->extents.len)
            break;
        }
        e2 = &exts->extents.ptr[j];
        uint64_t take = MIN (e2->length, align - e->length);
        e->type &= e2->type;
        e->length += take;
        if (take == e2->length)
          extent_list_remove (&exts->extents, j);
        else {
          e2->offset += take;
          e2->length -= take;
        }
        e = &exts->extents.ptr[i];
      }
    }
  }
  /* Drop any unaligned tail that could not be completed. */
  while (exts->extents.len > 1 &&
         !IS_ALIGNED (exts->extents.ptr[exts->extents.len - 1].length, align))
    exts->extents.len--;
  return 0;
}

/* For the server: read access to the list. */
const struct nbdkit_extent *
extents_array (const struct nbdkit_extents *exts, size_t *len)
{
  *len = exts->extents.len;
  return exts->extents.ptr;
}
