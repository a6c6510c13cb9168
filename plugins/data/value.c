/* SPDX-License-Identifier: BSD-3-Clause
 * Building data-format values and writing them into the disk (allocator.h).
 * Values are trees (layouts of placements, repeats, slices) whose leaves
 * are byte buffers and byte fills; writing walks only the needed ranges.
 */

#include <config.h>

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "allocator.h"
#include "utils.h"
#include "value.h"

/* Repeats of values up to this size are written from one flattened copy
 * of the child rather than by walking the child once per repetition.
 */
#define FLATTEN_MAX (64 * 1024)

/* allocator_write takes a 32-bit count. */
#define WRITE_CHUNK ((uint64_t) 1 << 30)

/* Written data is checked for zeroes in pieces of this size. */
#define ZERO_PIECE 4096

void
value_arena_free (struct value_arena *arena)
{
  for (size_t i = 0; i < arena->values.len; ++i) {
    struct value *v = arena->values.ptr[i];

    free (v->bytes);
    placement_vector_reset (&v->placements);
    free (v);
  }
  value_ptr_vector_reset (&arena->values);
}

static struct value *
value_new (struct value_arena *arena, enum value_kind kind, uint64_t size)
{
  struct value *v;

  v = calloc (1, sizeof *v);
  if (v == NULL) {
    nbdkit_error ("data: calloc: %m");
    return NULL;
  }
  if (value_ptr_vector_append (&arena->values, v) == -1) {
    nbdkit_error ("data: realloc: %m");
    free (v);
    return NULL;
  }
  v->kind = kind;
  v->size = size;
  return v;
}

/* Undo value_new for V, which must be the arena's newest value. */
static void
value_discard (struct value_arena *arena, struct value *v)
{
  assert (arena->values.len > 0 &&
          arena->values.ptr[arena->values.len - 1] == v);
  arena->values.len--;
  free (v->bytes);
  placement_vector_reset (&v->placements);
  free (v);
}

struct value *
value_new_owned_bytes (struct value_arena *arena,
                       unsigned char *buf, uint64_t len)
{
  struct value *v = value_new (arena, VALUE_BYTES, len);

  if (v == NULL) {
    free (buf);
    return NULL;
  }
  v->bytes = buf;
  return v;
}

struct value *
value_new_fill (struct value_arena *arena, int c, uint64_t len)
{
  struct value *v = value_new (arena, VALUE_FILL, len);

  if (v)
    v->fill = c;
  return v;
}

struct value *
value_new_layout (struct value_arena *arena)
{
  return value_new (arena, VALUE_LAYOUT, 0);
}

struct value *
value_new_repeat (struct value_arena *arena,
                  struct value *child, uint64_t count)
{
  uint64_t size;
  struct value *v;

  if (__builtin_mul_overflow (child->size, count, &size) ||
      size > VALUE_MAX_SIZE) {
    nbdkit_error ("data: repeating %" PRIu64 " bytes %" PRIu64 " times "
                  "exceeds the maximum disk size", child->size, count);
    return NULL;
  }

  /* A repeated single byte is a fill, and so is a repeated fill. */
  if (child->kind == VALUE_FILL)
    return value_new_fill (arena, child->fill, size);
  if (child->kind == VALUE_BYTES && child->size == 1)
    return value_new_fill (arena, child->bytes[0], size);

  v = value_new (arena, VALUE_REPEAT, size);
  if (v) {
    v->child = child;
    v->count = count;
  }
  return v;
}

struct value *
value_new_slice (struct value_arena *arena, struct value *child,
                 uint64_t start, uint64_t end)
{
  struct value *v;

  assert (start <= end && end <= child->size);
  if (start == 0 && end == child->size)
    return child;
  if (child->kind == VALUE_FILL)
    return value_new_fill (arena, child->fill, end - start);

  v = value_new (arena, VALUE_SLICE, end - start);
  if (v) {
    v->child = child;
    v->start = start;
  }
  return v;
}

int
layout_place (struct value_arena *arena, struct value *layout,
              uint64_t offset, struct value *v)
{
  uint64_t end;
  struct placement *last;

  assert (layout->kind == VALUE_LAYOUT);
  if (__builtin_add_overflow (offset, v->size, &end) ||
      end > VALUE_MAX_SIZE) {
    nbdkit_error ("data: writing %" PRIu64 " bytes at offset %" PRIu64 " "
                  "exceeds the maximum disk size", v->size, offset);
    return -1;
  }

  /* Runs of literal bytes ("1 2 3", strings) collect into one buffer
   * instead of one value per byte.
   */
  last = layout->placements.len > 0
    ? &layout->placements.ptr[layout->placements.len - 1] : NULL;
  if (last && v->extendable && last->value->extendable &&
      last->offset + last->value->size == offset &&
      arena->values.ptr[arena->values.len - 1] == v) {
    struct value *run = last->value;
    unsigned char *p = realloc (run->bytes, run->size + v->size);

    if (p == NULL) {
      nbdkit_error ("data: realloc: %m");
      return -1;
    }
    memcpy (p + run->size, v->bytes, v->size);
    run->bytes = p;
    run->size += v->size;
    value_discard (arena, v);
  }
  else if (v->size > 0) {
    struct placement pl = { .offset = offset, .value = v };

    if (placement_vector_append (&layout->placements, pl) == -1) {
      nbdkit_error ("data: realloc: %m");
      return -1;
    }
  }

  if (end > layout->size)
    layout->size = end;
  return 0;
}

/* Where value bytes go: the disk's allocator, or a memory buffer when
 * flattening a value that is about to be repeated.
 */
struct sink {
  struct allocator *sa;
  unsigned char *mem;
};

static int
sink_fill (struct sink *sink, int c, uint64_t len, uint64_t offset)
{
  if (sink->mem) {
    memset (sink->mem + offset, c, len);
    return 0;
  }
  if (c == 0) {
    return allocator_zero (sink->sa, len, offset);
  }
  return allocator_fill (sink->sa, c, len, offset);
}

/* Write LEN bytes from BUF.  Where DEST_IS_ZERO says the destination
 * already reads as zeroes, zero runs are skipped; elsewhere they become
 * holes rather than allocated zeroes.  Either way a repeat of a mostly
 * empty group stays sparse.
 */
static int
sink_write (struct sink *sink, const unsigned char *buf,
            uint64_t len, uint64_t offset, bool dest_is_zero)
{
  if (sink->mem) {
    memcpy (sink->mem + offset, buf, len);
    return 0;
  }

  while (len > 0) {
    uint64_t n = MIN (len, ZERO_PIECE);
    bool zero = is_zero ((const char *) buf, n);

    while (n < len && n < WRITE_CHUNK) {
      uint64_t m = MIN (len - n, ZERO_PIECE);

      if (is_zero ((const char *) buf + n, m) != zero)
        break;
      n += m;
    }
    if (zero) {
      if (!dest_is_zero && allocator_zero (sink->sa, n, offset) == -1)
        return -1;
    }
    else if (allocator_write (sink->sa, buf, n, offset) == -1)
      return -1;
    buf += n;
    offset += n;
    len -= n;
  }
  return 0;
}

static int write_range (struct value *v, struct sink *sink, uint64_t dest,
                        uint64_t from, uint64_t len, bool dest_is_zero);

static int
write_layout (struct value *v, struct sink *sink, uint64_t dest,
              uint64_t from, uint64_t len, bool dest_is_zero)
{
  uint64_t to = from + len, written = from;

  /* A scope covers its whole range: bytes it never wrote are zeroes,
   * even where something else was written before.
   */
  if (!dest_is_zero) {
    if (sink_fill (sink, 0, len, dest) == -1)
      return -1;
    dest_is_zero = true;
  }

  for (size_t i = 0; i < v->placements.len; ++i) {
    const struct placement *p = &v->placements.ptr[i];
    uint64_t lo = MAX (from, p->offset);
    uint64_t hi = MIN (to, p->offset + p->value->size);

    /* Placements may overlap ("1 2 3 @0 4"): only one that starts past
     * everything written so far lies on zeroes.
     */
    if (lo < hi &&
        write_range (p->value, sink, dest + (lo - from), lo - p->offset,
                     hi - lo, lo >= written) == -1)
      return -1;
    written = MAX (written, hi);
  }
  return 0;
}

/* Write a repeat of a small child from a buffer holding the child
 * cyclically, so that any starting phase can be copied in one piece.
 */
static int
write_repeat_flat (struct value *v, struct sink *sink, uint64_t dest,
                   uint64_t from, uint64_t len, bool dest_is_zero)
{
  uint64_t period = v->child->size;
  uint64_t span = period * MAX (1, FLATTEN_MAX / period);
  CLEANUP_FREE unsigned char *buf = NULL;
  struct sink mem_sink = { .sa = NULL };
  uint64_t i, done;

  buf = calloc (1, period + span);
  if (buf == NULL) {
    nbdkit_error ("data: calloc: %m");
    return -1;
  }
  mem_sink.mem = buf;
  if (write_range (v->child, &mem_sink, 0, 0, period, true) == -1)
    return -1;
  for (i = period; i < period + span; ++i)
    buf[i] = buf[i - period];

  for (done = 0; done < len; ) {
    uint64_t phase = (from + done) % period;
    uint64_t n = MIN (len - done, span);

    if (sink_write (sink, buf + phase, n, dest + done, dest_is_zero) == -1)
      return -1;
    done += n;
  }
  return 0;
}

/* Small children are flattened; large ones, which may be mostly holes,
 * are walked once per repetition.
 */
static int
write_repeat (struct value *v, struct sink *sink, uint64_t dest,
              uint64_t from, uint64_t len, bool dest_is_zero)
{
  uint64_t period = v->child->size;
  uint64_t done;

  if (period <= FLATTEN_MAX && len > period)
    return write_repeat_flat (v, sink, dest, from, len, dest_is_zero);

  for (done = 0; done < len; ) {
    uint64_t phase = (from + done) % period;
    uint64_t n = MIN (len - done, period - phase);

    if (write_range (v->child, sink, dest + done, phase, n,
                     dest_is_zero) == -1)
      return -1;
    done += n;
  }
  return 0;
}

/* Write bytes [FROM, FROM+LEN) of V to the sink at DEST.  DEST_IS_ZERO
 * says the destination range is known to read as zeroes already.
 */
static int
write_range (struct value *v, struct sink *sink, uint64_t dest,
             uint64_t from, uint64_t len, bool dest_is_zero)
{
  assert (from + len <= v->size);
  if (len == 0)
    return 0;

  switch (v->kind) {
  case VALUE_BYTES:
    return sink_write (sink, v->bytes + from, len, dest, dest_is_zero);
  case VALUE_FILL:
    if (v->fill == 0 && dest_is_zero)
      return 0;
    return sink_fill (sink, v->fill, len, dest);
  case VALUE_LAYOUT:
    return write_layout (v, sink, dest, from, len, dest_is_zero);
  case VALUE_REPEAT:
    return write_repeat (v, sink, dest, from, len, dest_is_zero);
  case VALUE_SLICE:
    return write_range (v->child, sink, dest, v->start + from, len,
                        dest_is_zero);
  }
  abort ();
}

int
value_store (struct value *v, struct allocator *sa)
{
  struct sink sink = { .sa = sa, .mem = NULL };

  return write_range (v, &sink, 0, 0, v->size, true);
}
