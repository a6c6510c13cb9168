/* SPDX-License-Identifier: BSD-3-Clause
 * The sparse array: a 4-level radix tree of 32 KiB pages covering a 63-bit
 * address space.  Reads and writes run in parallel under a shared lock and
 * install new pages with compare-and-swap; the lock is taken exclusively
 * only while pages and tables are freed.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "blocks.h"
#include "cleanup.h"
#include "sparse.h"
#include "utils.h"

/* 15 bits of page offset plus 4 levels of 12 bits of page index cover
 * exactly 2^63 bytes.  Every table is itself 32 KiB.
 */
#define PAGE_BITS     15
#define PAGE_SIZE     (UINT64_C (1) << PAGE_BITS)
#define LEVEL_BITS    12
#define LEVEL_ENTRIES (1u << LEVEL_BITS)
#define LEVELS        4
#define MAX_OFFSET    (UINT64_C (1) << (PAGE_BITS + LEVELS * LEVEL_BITS))

/* A block status reply with more extents than this stops early; the
 * protocol lets a server describe less than the requested range.
 */
#define MAX_EXTENTS   1024

/* Interior tables point to tables, leaf tables (level LEVELS-1) point to
 * pages.  Under the shared lock slots are accessed only atomically.
 */
struct table {
  void *slot[LEVEL_ENTRIES];
};
_Static_assert (sizeof (struct table) == PAGE_SIZE,
                "tables and pages come from the same blocks");

struct sparse_array {
  struct table root;            /* level 0, lives as long as the array */
  pthread_rwlock_t lock;        /* write-held only while freeing */
  uint64_t allocated;           /* bytes of pages, atomic */
  struct blocks *blocks;        /* pages and tables (blocks.c) */
};

static inline void *
slot_load (void **slot)
{
  return __atomic_load_n (slot, __ATOMIC_ACQUIRE);
}

static inline void
slot_clear (void **slot)
{
  __atomic_store_n (slot, NULL, __ATOMIC_RELEASE);
}

/* The index into the table at LEVEL for page number PAGE. */
static inline unsigned
level_index (uint64_t page, int level)
{
  return (page >> ((LEVELS - 1 - level) * LEVEL_BITS)) & (LEVEL_ENTRIES - 1);
}

/* Number of pages covered by one slot of a table at LEVEL. */
static inline uint64_t
level_span (int level)
{
  return UINT64_C (1) << ((LEVELS - 1 - level) * LEVEL_BITS);
}

/* Install a zeroed block (a page or a table) in an empty SLOT, or
 * return what another thread installed first.  Returns NULL with errno =
 * ENOMEM.  *INSTALLED tells whether this call's block won.  DENSE: it is
 * a page about to be written whole (blocks.c).
 */
static void *
slot_install (struct sparse_array *sa, void **slot, bool dense,
              bool *installed)
{
  void *expected = NULL;
  void *p = blocks_get (sa->blocks, dense);

  *installed = false;
  if (p == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (__atomic_compare_exchange_n (slot, &expected, p, false,
                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    *installed = true;
    return p;
  }
  blocks_put (sa->blocks, p, false);
  return expected;
}

/* The leaf table holding PAGE, creating missing tables when CREATE is
 * set.  Returns NULL if absent, or (when creating) with errno = ENOMEM.
 * The caller holds the read lock.
 */
static struct table *
find_leaf (struct sparse_array *sa, uint64_t page, bool create)
{
  struct table *t = &sa->root;
  int level;
  bool installed;

  for (level = 0; level < LEVELS - 1; ++level) {
    void **slot = &t->slot[level_index (page, level)];
    struct table *next = slot_load (slot);

    if (next == NULL) {
      if (!create)
        return NULL;
      next = slot_install (sa, slot, false, &installed);
      if (next == NULL)
        return NULL;
    }
    t = next;
  }
  return t;
}

/* The page at SLOT of a leaf table, allocating it if absent; WHOLE: it
 * is about to be written whole.
 */
static char *
leaf_page (struct sparse_array *sa, void **slot, bool whole)
{
  char *p = slot_load (slot);
  bool installed;

  if (p != NULL)
    return p;
  p = slot_install (sa, slot, whole, &installed);
  if (installed)
    __atomic_add_fetch (&sa->allocated, PAGE_SIZE, __ATOMIC_RELAXED);
  return p;
}

/* Walks the pages of [offset, offset+count) one page-sized piece at a
 * time, remembering the leaf table so that consecutive pages of the same
 * leaf do not walk the tree again.
 */
struct cursor {
  struct sparse_array *sa;
  uint64_t offset;              /* current position */
  uint64_t end;
  struct table *leaf;           /* leaf for leaf_id, or NULL if absent */
  uint64_t leaf_id;             /* page >> LEVEL_BITS of the cached leaf */
  bool leaf_valid;
};

static void
cursor_init (struct cursor *c, struct sparse_array *sa,
             uint64_t offset, uint64_t count)
{
  assert (offset <= MAX_OFFSET && count <= MAX_OFFSET - offset);
  c->sa = sa;
  c->offset = offset;
  c->end = offset + count;
  c->leaf = NULL;
  c->leaf_valid = false;
}

/* The slot for the page at the cursor, or NULL if its leaf table does not
 * exist and CREATE is false.  *IN_PAGE and *LEN describe the piece of
 * this page inside the range.
 */
static void **
cursor_slot (struct cursor *c, bool create, uint64_t *in_page, uint64_t *len)
{
  uint64_t page = c->offset >> PAGE_BITS;
  uint64_t leaf_id = page >> LEVEL_BITS;

  *in_page = c->offset & (PAGE_SIZE - 1);
  *len = MIN (PAGE_SIZE - *in_page, c->end - c->offset);

  if (!c->leaf_valid || c->leaf_id != leaf_id ||
      (c->leaf == NULL && create)) {
    c->leaf = find_leaf (c->sa, page, create);
    c->leaf_id = leaf_id;
    c->leaf_valid = c->leaf != NULL || !create;
  }
  if (c->leaf == NULL)
    return NULL;
  return &c->leaf->slot[page & (LEVEL_ENTRIES - 1)];
}

struct sparse_array *
sparse_array_new (void)
{
  struct sparse_array *sa = calloc (1, sizeof *sa);
  pthread_rwlockattr_t attr;
  int r;

  if (sa == NULL)
    return NULL;
  sa->blocks = blocks_new (PAGE_SIZE);
  if (sa->blocks == NULL) {
    free (sa);
    return NULL;
  }
  /* Readers never nest, so writers can be preferred: a zero request must
   * not wait forever behind a steady stream of reads and writes.
   */
  pthread_rwlockattr_init (&attr);
#ifdef __GLIBC__
  pthread_rwlockattr_setkind_np (&attr,
                                 PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
  r = pthread_rwlock_init (&sa->lock, &attr);
  pthread_rwlockattr_destroy (&attr);
  if (r != 0) {
    blocks_free_all (sa->blocks);
    free (sa);
    errno = r;
    return NULL;
  }
  return sa;
}

static void
forget_table (struct sparse_array *sa, struct table *t, int level)
{
  unsigned i;

  for (i = 0; i < LEVEL_ENTRIES; ++i) {
    void *p = t->slot[i];
    if (p == NULL)
      continue;
    if (level < LEVELS - 1)
      forget_table (sa, p, level + 1);
    blocks_forget (sa->blocks, p);
  }
}

void
sparse_array_free (struct sparse_array *sa)
{
  if (sa == NULL)
    return;
  forget_table (sa, &sa->root, 0);
  blocks_free_all (sa->blocks);
  pthread_rwlock_destroy (&sa->lock);
  free (sa);
}

void
sparse_array_read (struct sparse_array *sa, void *buf,
                   uint32_t count, uint64_t offset)
{
  ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&sa->lock);
  struct cursor c;
  char *out = buf;

  cursor_init (&c, sa, offset, count);
  while (c.offset < c.end) {
    uint64_t in_page, len;
    void **slot = cursor_slot (&c, false, &in_page, &len);
    const char *page = slot ? slot_load (slot) : NULL;

    if (page)
      memcpy (out, page + in_page, len);
    else
      memset (out, 0, len);
    out += len;
    c.offset += len;
  }
}

int
sparse_array_write (struct sparse_array *sa, const void *buf,
                    uint32_t count, uint64_t offset)
{
  ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&sa->lock);
  struct cursor c;
  const char *in = buf;

  cursor_init (&c, sa, offset, count);
  while (c.offset < c.end) {
    uint64_t in_page, len;
    void **slot = cursor_slot (&c, false, &in_page, &len);
    char *page = slot ? slot_load (slot) : NULL;

    /* Zeroes written over a hole leave it a hole. */
    if (page == NULL && !is_zero (in, len)) {
      if (slot == NULL) {
        slot = cursor_slot (&c, true, &in_page, &len);
        if (slot == NULL)
          return -1;
      }
      page = leaf_page (sa, slot, len == PAGE_SIZE);
      if (page == NULL)
        return -1;
    }
    if (page)
      memcpy (page + in_page, in, len);
    in += len;
    c.offset += len;
  }
  return 0;
}

/* Free the pages in [first, last) below table T at LEVEL (covering pages
 * from BASE).  When ONLY_IF_ZERO is set a page is freed only if it holds
 * nothing but zeroes.  Emptied tables below T are freed too.  Returns true
 * if T is now empty.  The caller holds the write lock.
 */
static bool
free_range (struct sparse_array *sa, struct table *t, int level,
            uint64_t base, uint64_t first, uint64_t last, bool only_if_zero)
{
  const uint64_t span = level_span (level);
  unsigned i = first > base ? (first - base) / span : 0;
  bool freed = false;

  for (; i < LEVEL_ENTRIES && base + i * span < last; ++i) {
    void *p = t->slot[i];

    if (p == NULL)
      continue;
    if (level == LEVELS - 1) {
      if (only_if_zero && !is_zero (p, PAGE_SIZE))
        continue;
      slot_clear (&t->slot[i]);
      blocks_put (sa->blocks, p, true);
      __atomic_sub_fetch (&sa->allocated, PAGE_SIZE, __ATOMIC_RELAXED);
      freed = true;
    }
    else if (free_range (sa, p, level + 1, base + i * span,
                         first, last, only_if_zero)) {
      slot_clear (&t->slot[i]);
      blocks_put (sa->blocks, p, true);
      freed = true;
    }
  }

  if (!freed)
    return false;
  for (i = 0; i < LEVEL_ENTRIES; ++i)
    if (t->slot[i] != NULL)
      return false;
  return true;
}

/* Call FN for each allocated page in [first, last) in ascending order,
 * skipping absent tables.  Stops at the first non-zero return of FN and
 * returns it.  The caller holds the read lock.
 */
typedef int (*page_fn) (uint64_t page, void *opaque);

static int
walk_pages (struct table *t, int level, uint64_t base,
            uint64_t first, uint64_t last, page_fn fn, void *opaque)
{
  const uint64_t span = level_span (level);
  unsigned i = first > base ? (first - base) / span : 0;
  int r;

  for (; i < LEVEL_ENTRIES && base + i * span < last; ++i) {
    void *p = slot_load (&t->slot[i]);

    if (p == NULL)
      continue;
    if (level == LEVELS - 1)
      r = fn (base + i, opaque);
    else
      r = walk_pages (p, level + 1, base + i * span, first, last, fn, opaque);
    if (r)
      return r;
  }
  return 0;
}

static int
found_page (uint64_t page, void *opaque)
{
  return 1;
}

/* Whether any page in [first, last) is allocated. */
static bool
any_allocated (struct sparse_array *sa, uint64_t first, uint64_t last)
{
  ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&sa->lock);

  return walk_pages (&sa->root, 0, 0, first, last, found_page, NULL) != 0;
}

/* Zero the piece of the page at the cursor in place.  Returns true if the
 * page exists and is now entirely zero, so it is worth freeing.
 */
static bool
zero_partial_page (struct cursor *c)
{
  uint64_t in_page, len;
  void **slot = cursor_slot (c, false, &in_page, &len);
  char *page = slot ? slot_load (slot) : NULL;

  c->offset += len;
  if (page == NULL)
    return false;
  memset (page + in_page, 0, len);
  return is_zero (page, PAGE_SIZE);
}

void
sparse_array_zero (struct sparse_array *sa, uint64_t count, uint64_t offset)
{
  uint64_t first_whole, last_whole; /* pages entirely inside the range */
  uint64_t head_page, tail_page;
  bool free_head = false, free_tail = false;
  struct cursor c;

  if (count == 0)
    return;
  cursor_init (&c, sa, offset, count);
  head_page = offset >> PAGE_BITS;
  tail_page = (c.end - 1) >> PAGE_BITS;
  first_whole = (offset + PAGE_SIZE - 1) >> PAGE_BITS;
  last_whole = c.end >> PAGE_BITS;

  /* Partial pages at either end are cleared in place, since concurrent
   * writers may own the other bytes of those pages.
   */
  {
    ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&sa->lock);

    if (offset & (PAGE_SIZE - 1))
      free_head = zero_partial_page (&c);
    if ((c.end & (PAGE_SIZE - 1)) && c.offset < c.end) {
      c.offset = MAX (c.offset, tail_page << PAGE_BITS);
      free_tail = zero_partial_page (&c);
    }
  }

  if (first_whole < last_whole && !any_allocated (sa, first_whole, last_whole))
    first_whole = last_whole;
  if (first_whole >= last_whole && !free_head && !free_tail)
    return;

  /* Pages are unlinked only under the write lock, so no reader or writer
   * can be copying to or from a page while it is freed.  Partial pages
   * are checked again because a write may have landed meanwhile.
   */
  ACQUIRE_WRLOCK_FOR_CURRENT_SCOPE (&sa->lock);
  if (first_whole < last_whole)
    free_range (sa, &sa->root, 0, 0, first_whole, last_whole, false);
  if (free_head)
    free_range (sa, &sa->root, 0, 0, head_page, head_page + 1, true);
  if (free_tail)
    free_range (sa, &sa->root, 0, 0, tail_page, tail_page + 1, true);
}

int
sparse_array_fill (struct sparse_array *sa, int c,
                   uint64_t count, uint64_t offset)
{
  struct cursor cur;

  if (c == 0) {
    sparse_array_zero (sa, count, offset);
    return 0;
  }

  ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&sa->lock);
  cursor_init (&cur, sa, offset, count);
  while (cur.offset < cur.end) {
    uint64_t in_page, len;
    void **slot = cursor_slot (&cur, true, &in_page, &len);
    char *page;

    if (slot == NULL)
      return -1;
    page = leaf_page (sa, slot, len == PAGE_SIZE);
    if (page == NULL)
      return -1;
    memset (page + in_page, c, len);
    cur.offset += len;
  }
  return 0;
}

/* Builds the extent list: runs of pages of one type are merged here so
 * that the list handed to nbdkit_add_extent stays short.
 */
struct extents_state {
  struct nbdkit_extents *extents;
  uint64_t start, end;          /* byte range requested */
  uint64_t run_start;           /* start of the pending run */
  uint64_t run_end;             /* end of the pending run */
  uint32_t run_type;
  size_t added;
  int error;
};

static int
extents_emit (struct extents_state *s, uint64_t start, uint64_t end,
              uint32_t type)
{
  if (start >= end)
    return 0;
  if (s->run_end == start && s->run_type == type) {
    s->run_end = end;
    return 0;
  }
  if (s->run_end > s->run_start) {
    if (nbdkit_add_extent (s->extents, s->run_start,
                           s->run_end - s->run_start, s->run_type) == -1) {
      s->error = -1;
      return -1;
    }
    if (++s->added >= MAX_EXTENTS)
      return 1;
  }
  s->run_start = start;
  s->run_end = end;
  s->run_type = type;
  return 0;
}

static int
extents_page (uint64_t page, void *opaque)
{
  struct extents_state *s = opaque;
  uint64_t start = MAX (page << PAGE_BITS, s->start);
  uint64_t end = MIN ((page + 1) << PAGE_BITS, s->end);

  if (extents_emit (s, s->run_end, start,
                    NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO))
    return 1;
  return extents_emit (s, start, end, 0);
}

int
sparse_array_extents (struct sparse_array *sa,
                      uint32_t count, uint64_t offset,
                      struct nbdkit_extents *extents)
{
  ACQUIRE_RDLOCK_FOR_CURRENT_SCOPE (&sa->lock);
  struct extents_state s = {
    .extents = extents,
    .start = offset, .end = offset + count,
    .run_start = offset, .run_end = offset,
  };

  if (count == 0)
    return 0;
  assert (offset <= MAX_OFFSET && count <= MAX_OFFSET - offset);

  if (walk_pages (&sa->root, 0, 0, offset >> PAGE_BITS,
                  ((s.end - 1) >> PAGE_BITS) + 1, extents_page, &s) == 0)
    extents_emit (&s, s.run_end, s.end,
                  NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO);
  if (s.error)
    return -1;
  /* Flush the pending run, unless the list was cut short. */
  if (s.added < MAX_EXTENTS && s.run_end > s.run_start &&
      nbdkit_add_extent (extents, s.run_start, s.run_end - s.run_start,
                         s.run_type) == -1)
    return -1;
  return 0;
}

uint64_t
sparse_array_allocated (struct sparse_array *sa)
{
  return __atomic_load_n (&sa->allocated, __ATOMIC_RELAXED);
}
