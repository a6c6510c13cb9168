/* SPDX-License-Identifier: BSD-3-Clause
 * Decoding base64 (RFC 4648, standard alphabet), shared by the data
 * plugin's base64= parameter and the info plugin's base64exportname mode.
 */

#ifndef NBDKIT_BASE64_H
#define NBDKIT_BASE64_H

#include <stddef.h>

/* Decode STR, ignoring whitespace.  On success returns 0 and a new buffer
 * in *OUT (free it) holding *LEN bytes.  Returns -1 with a static
 * description of the problem in *ERROR if STR is not valid base64, or -1
 * with *ERROR NULL and errno set if memory ran out.
 */
extern int base64_decode (const char *str, unsigned char **out, size_t *len,
                          const char **error);

#endif /* NBDKIT_BASE64_H */
