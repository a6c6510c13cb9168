/* SPDX-License-Identifier: BSD-3-Clause
 * libFuzzer target: the newstyle option phase, and whatever follows it,
 * of a server with TLS PSK (--tls=on) over the memory plugin.
 *
 * Input: one mode byte, then the client's bytes.  Mode bit 0 clear: the
 * bytes are sent as they are, from the client flags on.  Set: the
 * harness negotiates STARTTLS and a PSK session first, and the bytes are
 * the client's options inside TLS.
 */

#include <config.h>

#include <stddef.h>
#include <stdint.h>

#include "fuzz-entry.h"
#include "fuzz-harness.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  static const char *const filters[] = { NULL };
  static const char *const params[] = { "size=1M", NULL };

  fuzz_harness_init ();
  fuzz_server_init ("memory", filters, params, fuzz_harness_psk_file ());
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  if (size < 1)
    return -1;
  if (data[0] & 1)
    fuzz_exchange_tls (data + 1, size - 1);
  else
    fuzz_exchange (NULL, 0, data + 1, size - 1);
  fuzz_reset_plugin ();
  return 0;
}
