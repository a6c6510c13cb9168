/* SPDX-License-Identifier: BSD-3-Clause
 * Finding one member of a tar archive by reading its headers (v7,
 * ustar, GNU and pax formats).
 */

#ifndef NBDKIT_TAR_HEADERS_H
#define NBDKIT_TAR_HEADERS_H

#include <stdint.h>

#include <nbdkit-filter.h>

/* Where a member's data lies in the archive. */
struct tar_member {
  uint64_t offset;
  uint64_t size;
};

/* Look for the regular file called NAME in the archive NEXT serves,
 * reading headers in the first LIMIT bytes only (0: no limit).
 * Errors, including a missing member, are reported with nbdkit_error.
 */
extern int tar_find_member (nbdkit_next *next, const char *name,
                            uint64_t limit, struct tar_member *member);

#endif /* NBDKIT_TAR_HEADERS_H */
