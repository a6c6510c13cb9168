/* SPDX-License-Identifier: BSD-3-Clause
 * Growable arrays.  DEFINE_VECTOR_TYPE (name, type) declares
 *   typedef struct { type *ptr; size_t len, cap; } name;
 * with name_reserve, name_append, name_insert, name_remove, name_reset.
 * Initialize with `name v = empty_vector;`.
 */

#ifndef NBDKIT_VECTOR_H
#define NBDKIT_VECTOR_H

#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <assert.h>

#define empty_vector { .ptr = NULL, .len = 0, .cap = 0 }

/* Grow the storage of a vector with element size ELEM so that N more
 * elements fit.  Returns -1 and sets errno on failure.
 */
static inline int
generic_vector_reserve (void **ptr, size_t *cap, size_t len, size_t n,
                        size_t elem)
{
  size_t want, newcap;
  void *p;

  if (__builtin_add_overflow (len, n, &want)) {
    errno = ENOMEM;
    return -1;
  }
  if (want <= *cap)
    return 0;
  newcap = *cap ? *cap : 4;
  while (newcap < want) {
    if (__builtin_mul_overflow (newcap, (size_t) 2, &newcap)) {
      errno = ENOMEM;
      return -1;
    }
  }
  if (__builtin_mul_overflow (newcap, elem, &want)) {
    errno = ENOMEM;
    return -1;
  }
  p = realloc (*ptr, want);
  if (p == NULL)
    return -1;
  *ptr = p;
  *cap = newcap;
  return 0;
}

#define DEFINE_VECTOR_TYPE(name, type)                                  \
  typedef struct {                                                      \
    type *ptr;                                                          \
    size_t len;                                                         \
    size_t cap;                                                         \
  } name;                                                               \
                                                                        \
  static inline __attribute__ ((__unused__)) int                        \
  name##_reserve (name *v, size_t n)                                    \
  {                                                                     \
    return generic_vector_reserve ((void **) &v->ptr, &v->cap,          \
                                   v->len, n, sizeof (type));           \
  }                                                                     \
                                                                        \
  static inline __attribute__ ((__unused__)) int                        \
  name##_insert (name *v, type elem, size_t i)                          \
  {                                                                     \
    assert (i <= v->len);                                               \
    if (name##_reserve (v, 1) == -1)                                    \
      return -1;                                                        \
    memmove (&v->ptr[i + 1], &v->ptr[i], (v->len - i) * sizeof (type)); \
    v->ptr[i] = elem;                                                   \
    v->len++;                                                           \
    return 0;                                                           \
  }                                                                     \
                                                                        \
  static inline __attribute__ ((__unused__)) int                        \
  name##_append (name *v, type elem)                                    \
  {                                                                     \
    if (v->len >= v->cap && name##_reserve (v, 1) == -1)                \
      return -1;                                                        \
    v->ptr[v->len++] = elem;                                            \
    return 0;                                                           \
  }                                                                     \
                                                                        \
  static inline __attribute__ ((__unused__)) void                       \
  name##_remove (name *v, size_t i)                                     \
  {                                                                     \
    assert (i < v->len);                                                \
    memmove (&v->ptr[i], &v->ptr[i + 1],                                \
             (v->len - i - 1) * sizeof (type));                         \
    v->len--;                                                           \
  }                                                                     \
                                                                        \
  static inline __attribute__ ((__unused__)) void                       \
  name##_reset (name *v)                                                \
  {                                                                     \
    free (v->ptr);                                                      \
    v->ptr = NULL;                                                      \
    v->len = v->cap = 0;                                                \
  }

DEFINE_VECTOR_TYPE (string_vector, char *)

/* Free every string in V, then V itself. */
static inline __attribute__ ((__unused__)) void
string_vector_free_all (string_vector *v)
{
  for (size_t i = 0; i < v->len; ++i)
    free (v->ptr[i]);
  string_vector_reset (v);
}

#endif /* NBDKIT_VECTOR_H */
