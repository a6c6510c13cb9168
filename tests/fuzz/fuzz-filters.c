/* SPDX-License-Identifier: BSD-3-Clause
 * libFuzzer target: requests through the blocksize, cow, cache,
 * partition and xz filters over the memory plugin.  The memory plugin
 * holds disk.img.xz (a 256 KiB MBR disk, made by make-seeds.py), so the
 * export is its first partition, decompressed.
 *
 * Input: as for fuzz-transmission, but the mode byte only chooses the
 * handshake (bits 0-1).  The cow overlay and the cache are emptied after
 * every input, so an input never sees what an earlier one wrote.
 */

#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "fuzz-entry.h"
#include "fuzz-harness.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define DISK_IMAGE SRCDIR "/tests/fuzz/disk.img.xz"

/* The compressed disk, read whole. */
static char *
read_image (size_t *len)
{
  FILE *fp = fopen (DISK_IMAGE, "r");
  char *buf;

  if (fp == NULL || fseek (fp, 0, SEEK_END) == -1 ||
      (*len = ftell (fp)) == (size_t) -1 || fseek (fp, 0, SEEK_SET) == -1 ||
      (buf = malloc (*len)) == NULL || fread (buf, 1, *len, fp) != *len) {
    perror (DISK_IMAGE);
    exit (EXIT_FAILURE);
  }
  fclose (fp);
  return buf;
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  static const char *const filters[] = {
    "blocksize", "cow", "cache", "partition", "xz", NULL
  };
  static char size_param[64];
  static const char *params[] = {
    size_param, "minblock=512", "maxdata=16K", "cow-block-size=4K",
    "cache-min-block-size=4K", "partition=1", NULL
  };
  char *image;
  size_t len;

  image = read_image (&len);
  snprintf (size_param, sizeof size_param, "size=%zu", len);
  fuzz_harness_init ();
  fuzz_server_init ("memory", filters, params, NULL);
  fuzz_write_plugin (image, len, 0);
  free (image);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  uint8_t prefix[FUZZ_HANDSHAKE_MAX];
  size_t n;

  if (size < 1)
    return -1;
  n = fuzz_handshake (prefix, data[0] & 3);
  fuzz_exchange (prefix, n, data + 1, size - 1);
  fuzz_reset_filter ("cow");
  fuzz_reset_filter ("cache");
  return 0;
}
