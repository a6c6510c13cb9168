/* SPDX-License-Identifier: BSD-3-Clause
 * What the fuzz targets share: the client side of one in-process
 * connection (plain or TLS PSK), and resetting the plugin between inputs.
 */

#ifndef NBDKIT_FUZZ_HARNESS_H
#define NBDKIT_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* The PSK identity the server accepts (fuzz_harness_psk_file). */
#define FUZZ_PSK_USER "fuzz"
#define FUZZ_PSK_KEY  "0123456789abcdef0123456789abcdef"

/* Ignore SIGPIPE and, unless NBDKIT_FUZZ_VERBOSE is set, keep libFuzzer
 * quiet about the server's stderr.
 */
extern void fuzz_harness_init (void);

/* Write a --tls-psk file for FUZZ_PSK_USER into a temporary directory
 * (removed at exit) and return its name.
 */
extern const char *fuzz_harness_psk_file (void);

/* One connection: send PREFIX then DATA, reading and discarding every
 * reply, close the write side and read until the server closes.
 */
extern void fuzz_exchange (const uint8_t *prefix, size_t prefix_len,
                           const uint8_t *data, size_t len);

/* The same, but first negotiate STARTTLS and a TLS PSK session, then send
 * DATA inside it.
 */
extern void fuzz_exchange_tls (const uint8_t *data, size_t len);

/* The client's half of a valid newstyle handshake ending in
 * NBD_OPT_GO "", written into BUF (FUZZ_HANDSHAKE_MAX bytes); returns its
 * length.  VARIANT: 0 structured replies and base:allocation, 1
 * structured replies, 2 simple replies, 3 NBD_OPT_EXPORT_NAME without
 * NO_ZEROES.
 */
#define FUZZ_HANDSHAKE_MAX 256
extern size_t fuzz_handshake (uint8_t *buf, unsigned variant);

/* Empty the plugin's disk: its unload, then its get_ready, so that an
 * input never sees what an earlier one wrote.
 */
extern void fuzz_reset_plugin (void);

/* Empty filter NAME's state kept between connections (the cow overlay,
 * the cache): its unload, then its get_ready.  Only for filters whose
 * unload frees nothing their parameters set.
 */
extern void fuzz_reset_filter (const char *name);

/* Write BUF at OFFSET directly into the plugin (under every filter). */
extern void fuzz_write_plugin (const void *buf, size_t len, uint64_t offset);

#endif /* NBDKIT_FUZZ_HARNESS_H */
