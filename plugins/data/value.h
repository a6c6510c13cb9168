/* SPDX-License-Identifier: BSD-3-Clause
 * The values a data-format expression evaluates to.  Repetition and
 * slicing stay symbolic, so "0*1T" or "( ... )*1000000" cost no memory
 * until the value is written into the disk (allocator.h).
 */

#ifndef NBDKIT_DATA_VALUE_H
#define NBDKIT_DATA_VALUE_H

#include <stdbool.h>
#include <stdint.h>

#include "vector.h"

struct allocator;

/* The largest disk (and so the largest value) NBD can describe. */
#define VALUE_MAX_SIZE ((uint64_t) INT64_MAX)

enum value_kind {
  VALUE_BYTES,                  /* a buffer of literal bytes */
  VALUE_FILL,                   /* one byte repeated size times */
  VALUE_LAYOUT,                 /* a scope: values placed at offsets */
  VALUE_REPEAT,                 /* child repeated count times */
  VALUE_SLICE,                  /* size bytes of child from start */
};

struct value;

struct placement {
  uint64_t offset;
  struct value *value;
};
DEFINE_VECTOR_TYPE (placement_vector, struct placement)

struct value {
  enum value_kind kind;
  uint64_t size;

  /* BYTES made from literal text and not yet shared with a name: the
   * layout it is placed in may append more literal bytes to it.
   */
  bool extendable;

  unsigned char *bytes;         /* BYTES */
  int fill;                     /* FILL */
  placement_vector placements;  /* LAYOUT, later ones overwrite earlier */
  struct value *child;          /* REPEAT, SLICE */
  uint64_t count;               /* REPEAT */
  uint64_t start;               /* SLICE */
};

DEFINE_VECTOR_TYPE (value_ptr_vector, struct value *)

/* Every value belongs to an arena and is freed with it, because names
 * let one value appear in many places.
 */
struct value_arena {
  value_ptr_vector values;
};

extern void value_arena_free (struct value_arena *arena);

/* Constructors return NULL after calling nbdkit_error.  BYTES values
 * take ownership of BUF (a malloc'd buffer), even on failure.
 */
extern struct value *value_new_owned_bytes (struct value_arena *arena,
                                            unsigned char *buf, uint64_t len);
extern struct value *value_new_fill (struct value_arena *arena,
                                     int c, uint64_t len);
extern struct value *value_new_layout (struct value_arena *arena);
extern struct value *value_new_repeat (struct value_arena *arena,
                                       struct value *child, uint64_t count);
extern struct value *value_new_slice (struct value_arena *arena,
                                      struct value *child,
                                      uint64_t start, uint64_t end);

/* Place V at OFFSET in LAYOUT, growing the layout's size to cover it.
 * Returns -1 after nbdkit_error if the result would be too large.
 */
extern int layout_place (struct value_arena *arena, struct value *layout,
                         uint64_t offset, struct value *v);

/* Write the whole of V into SA at offset 0.  SA must be empty. */
extern int value_store (struct value *v, struct allocator *sa);

#endif /* NBDKIT_DATA_VALUE_H */
