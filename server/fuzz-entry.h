/* SPDX-License-Identifier: BSD-3-Clause
 * The server as a library, for the libFuzzer targets in tests/fuzz/
 * (built only with -Dfuzzing=true).
 */

#ifndef NBDKIT_FUZZ_ENTRY_H
#define NBDKIT_FUZZ_ENTRY_H

/* Load the in-tree PLUGIN under FILTERS (outermost first), give the
 * chain PARAMS ("KEY=VALUE") and make it ready, as nbdkit -f -t 1 would
 * before serving.  TLS_PSK, if not NULL, is a --tls-psk file and turns
 * on --tls=on.  The arrays end with NULL.  Exits on any error.
 */
extern void fuzz_server_init (const char *plugin, const char *const *filters,
                              const char *const *params,
                              const char *tls_psk);

/* Serve one client on SOCK (both directions) as nbdkit -s does, in the
 * calling thread, while CLIENT (OPAQUE) plays the client in a thread of
 * the harness.  Returns once the connection has closed and CLIENT has
 * returned.
 */
extern void fuzz_server_serve (int sock, void (*client) (void *opaque),
                               void *opaque);

#endif /* NBDKIT_FUZZ_ENTRY_H */
