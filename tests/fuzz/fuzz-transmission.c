/* SPDX-License-Identifier: BSD-3-Clause
 * libFuzzer target: the transmission phase over the memory plugin.  The
 * harness does a fixed, valid handshake, chosen by the first byte, and
 * the rest of the input is the client's requests.
 *
 * Mode byte: bits 0-1 the handshake (0 structured replies and
 * base:allocation, 1 structured replies, 2 simple replies, 3
 * NBD_OPT_EXPORT_NAME without NO_ZEROES), bit 2 a read-only server, bit 3
 * the oldstyle protocol instead.
 */

#include <config.h>

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "fuzz-entry.h"
#include "fuzz-harness.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  static const char *const filters[] = { NULL };
  static const char *const params[] = { "size=128K", NULL };

  fuzz_harness_init ();
  fuzz_server_init ("memory", filters, params, NULL);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  uint8_t prefix[FUZZ_HANDSHAKE_MAX];
  size_t n = 0;

  if (size < 1)
    return -1;
  /* Read by the connection thread, which starts after this. */
  config.readonly = data[0] & 4;
  config.oldstyle = data[0] & 8;
  if (!config.oldstyle)
    n = fuzz_handshake (prefix, data[0] & 3);
  fuzz_exchange (prefix, n, data + 1, size - 1);
  fuzz_reset_plugin ();
  return 0;
}
