/* SPDX-License-Identifier: BSD-3-Clause
 * The LUKS filter: serve the decrypted payload of a LUKSv1 disk.  Each
 * connection reads the header and unlocks a key slot with the
 * passphrase (luks-header.c); reads are decrypted and writes encrypted
 * sector by sector (luks-crypto.c).
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "luks.h"
#include "utils.h"

/* The passphrase (passphrase=), as nbdkit_read_password returned it. */
static char *passphrase;

/* Writes of part of a sector read, change and write the whole sector:
 * this lock keeps two of them on one sector from losing either change,
 * across connections too.
 */
static pthread_mutex_t partial_sector_lock = PTHREAD_MUTEX_INITIALIZER;

/* Requests are encrypted through a buffer of at most this size. */
#define BOUNCE_SIZE (256 * 1024)

static void
luks_unload (void)
{
  if (passphrase) {
    explicit_bzero (passphrase, strlen (passphrase));
    free (passphrase);
  }
}

static int
luks_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
             const char *key, const char *value)
{
  if (strcmp (key, "passphrase") != 0)
    return next (nxdata, key, value);

  if (passphrase) {
    nbdkit_error ("passphrase= may be given only once");
    return -1;
  }
  if (nbdkit_read_password (value, &passphrase) == -1) {
    /* Only the -, +FILE and -FD forms fail: VALUE is not the secret. */
    nbdkit_error ("passphrase=%s: could not read the passphrase", value);
    passphrase = NULL;
    return -1;
  }
  return 0;
}

static int
luks_config_complete (nbdkit_next_config_complete *next,
                      nbdkit_backend *nxdata)
{
  if (passphrase == NULL) {
    nbdkit_error ("the passphrase=<SECRET> parameter is required");
    return -1;
  }
  return next (nxdata);
}

#define luks_config_help \
  "passphrase=<SECRET>  (required) The passphrase of a key slot: the\n" \
  "                     secret itself, '-' to ask for it, '+FILE' to\n" \
  "                     read it from FILE or '-FD' from a descriptor."

/* The volume this connection unlocked. */
struct handle {
  struct luks_volume volume;
  uint64_t size;                /* of the payload, whole sectors */
};

static void *
luks_open (nbdkit_next_open *next, nbdkit_context *context,
           int readonly, const char *exportname, int is_tls)
{
  struct handle *h;

  if (next (context, readonly, exportname) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  return h;
}

static void
luks_close (void *handle)
{
  struct handle *h = handle;

  explicit_bzero (h, sizeof *h);
  free (h);
}

static int
luks_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;
  int64_t size;

  if (luks_volume_open (next, passphrase, &h->volume) == -1)
    return -1;
  size = next->get_size (next);
  if (size == -1)
    return -1;
  h->size = ROUND_DOWN ((uint64_t) size - h->volume.payload_offset,
                        (uint64_t) LUKS_SECTOR_SIZE);
  return 0;
}

static int64_t
luks_get_size (nbdkit_next *next, void *handle)
{
  struct handle *h = handle;

  return h->size;
}

/* Clients must work in whole sectors, which the cipher needs. */
static int
luks_block_size (nbdkit_next *next, void *handle, uint32_t *minimum,
                 uint32_t *preferred, uint32_t *maximum)
{
  if (next->block_size (next, minimum, preferred, maximum) == -1)
    return -1;
  if (*minimum == 0) {
    *minimum = LUKS_SECTOR_SIZE;
    *preferred = LUKS_SECTOR_SIZE;
    *maximum = 0xffffffff;
    return 0;
  }
  *minimum = MAX (*minimum, LUKS_SECTOR_SIZE);
  *preferred = MAX (*preferred, *minimum);
  return 0;
}

/* The layer below holds ciphertext: its holes, trims and zeroes do not
 * read back as zeroes here, so zeroes are written as encrypted data.
 */
static int
luks_can_extents (nbdkit_next *next, void *handle)
{
  return 0;
}

static int
luks_can_trim (nbdkit_next *next, void *handle)
{
  return 0;
}

static int
luks_can_zero (nbdkit_next *next, void *handle)
{
  return NBDKIT_ZERO_EMULATE;
}

static int
luks_can_fast_zero (nbdkit_next *next, void *handle)
{
  return 0;
}

/* Read and decrypt whole sectors: COUNT and OFFSET are aligned. */
static int
read_sectors (nbdkit_next *next, struct handle *h, uint8_t *buf,
              uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  if (next->pread (next, buf, count, h->volume.payload_offset + offset,
                   flags, err) == -1)
    return -1;
  if (luks_crypt_sectors (&h->volume.cipher, h->volume.master_key, false,
                          offset / LUKS_SECTOR_SIZE, buf, count) == -1) {
    *err = EIO;
    return -1;
  }
  return 0;
}

/* Encrypt (in place) and write whole sectors. */
static int
write_sectors (nbdkit_next *next, struct handle *h, uint8_t *buf,
               uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  if (luks_crypt_sectors (&h->volume.cipher, h->volume.master_key, true,
                          offset / LUKS_SECTOR_SIZE, buf, count) == -1) {
    *err = EIO;
    return -1;
  }
  return next->pwrite (next, buf, count, h->volume.payload_offset + offset,
                       flags, err);
}

static int
luks_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;
  CLEANUP_FREE uint8_t *bounce = NULL;
  uint8_t *p = buf;

  if (IS_ALIGNED (offset | count, LUKS_SECTOR_SIZE))
    return read_sectors (next, h, buf, count, offset, flags, err);

  /* Unaligned (from a filter above): through whole sectors. */
  bounce = malloc (BOUNCE_SIZE);
  if (bounce == NULL) {
    *err = ENOMEM;
    return -1;
  }
  while (count > 0) {
    uint64_t start = ROUND_DOWN (offset, (uint64_t) LUKS_SECTOR_SIZE);
    uint32_t skip = offset - start;
    uint32_t n = MIN (count, BOUNCE_SIZE - skip);
    uint32_t len = ROUND_UP (skip + n, LUKS_SECTOR_SIZE);

    if (read_sectors (next, h, bounce, len, start, flags, err) == -1)
      return -1;
    memcpy (p, bounce + skip, n);
    p += n;
    count -= n;
    offset += n;
  }
  return 0;
}

static int
luks_pwrite (nbdkit_next *next, void *handle, const void *buf,
             uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;
  CLEANUP_FREE uint8_t *bounce = NULL;
  const uint8_t *p = buf;

  bounce = malloc (MIN (count + 2 * LUKS_SECTOR_SIZE, BOUNCE_SIZE));
  if (bounce == NULL) {
    *err = ENOMEM;
    return -1;
  }
  while (count > 0) {
    uint64_t start = ROUND_DOWN (offset, (uint64_t) LUKS_SECTOR_SIZE);
    uint32_t skip = offset - start;
    uint32_t n = MIN (count, BOUNCE_SIZE - skip);
    uint32_t len = ROUND_UP (skip + n, LUKS_SECTOR_SIZE);
    int r;

    if (len > n) {
      ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&partial_sector_lock);
      /* Part of a sector: keep what the rest of it holds. */
      r = read_sectors (next, h, bounce, len, start, 0, err);
      if (r == 0) {
        memcpy (bounce + skip, p, n);
        r = write_sectors (next, h, bounce, len, start, flags, err);
      }
    }
    else {
      memcpy (bounce, p, n);
      r = write_sectors (next, h, bounce, len, start, flags, err);
    }
    if (r == -1)
      return -1;
    p += n;
    count -= n;
    offset += n;
  }
  return 0;
}

static int
luks_cache (nbdkit_next *next, void *handle, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;
  uint64_t start = ROUND_DOWN (offset, (uint64_t) LUKS_SECTOR_SIZE);
  uint64_t end = ROUND_UP (offset + count, (uint64_t) LUKS_SECTOR_SIZE);

  return next->cache (next, end - start, h->volume.payload_offset + start,
                      flags, err);
}

static struct nbdkit_filter filter = {
  .name              = "luks",
  .longname          = "nbdkit luks filter",
  .version           = PACKAGE_VERSION,
  .description       = "Read and write LUKSv1 encrypted disks",
  .unload            = luks_unload,
  .config            = luks_config,
  .config_complete   = luks_config_complete,
  .config_help       = luks_config_help,
  .open              = luks_open,
  .close             = luks_close,
  .prepare           = luks_prepare,
  .get_size          = luks_get_size,
  .block_size        = luks_block_size,
  .can_extents       = luks_can_extents,
  .can_trim          = luks_can_trim,
  .can_zero          = luks_can_zero,
  .can_fast_zero     = luks_can_fast_zero,
  .pread             = luks_pread,
  .pwrite            = luks_pwrite,
  .cache             = luks_cache,
};

NBDKIT_REGISTER_FILTER (filter)
