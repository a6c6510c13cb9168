/* SPDX-License-Identifier: BSD-3-Clause
 * Bytes the data format takes from outside its text: the contents of a
 * file ("<FILE") and the output of a shell script ("<(SCRIPT)").
 */

#ifndef NBDKIT_DATA_EXTERNAL_H
#define NBDKIT_DATA_EXTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Each reads at most LIMIT bytes into a new buffer (*BUF, *LEN; free it)
 * and returns 0, or returns -1 after nbdkit_error.
 */
extern int read_file (const char *path, uint64_t limit,
                      unsigned char **buf, size_t *len);
extern int run_script (const char *script, uint64_t limit,
                       unsigned char **buf, size_t *len);

#endif /* NBDKIT_DATA_EXTERNAL_H */
