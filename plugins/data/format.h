/* SPDX-License-Identifier: BSD-3-Clause
 * The data plugin's compact data format ("0 1 2 @0x1fe 0x55 0xaa"): parse
 * a string of it and store the bytes it describes.  The format itself is
 * described in nbdkit-data-plugin(1).
 */

#ifndef NBDKIT_DATA_FORMAT_H
#define NBDKIT_DATA_FORMAT_H

#include <stdint.h>

struct allocator;

/* Returns the text of $NAME, or NULL if there is no such variable. */
typedef const char *(*data_variable_fn) (const char *name);

/* Evaluate TEXT and write its bytes into SA, which must be empty.
 * Returns the size of the disk it describes (the furthest offset reached),
 * or -1 after nbdkit_error naming the position of the problem.
 */
extern int64_t data_format_store (const char *text, data_variable_fn variable,
                                  struct allocator *sa);

#endif /* NBDKIT_DATA_FORMAT_H */
