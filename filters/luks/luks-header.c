/* SPDX-License-Identifier: BSD-3-Clause
 * The LUKSv1 header: read and check it, then find the key slot the
 * passphrase opens (PBKDF2, key material decryption, anti-forensic
 * merge) and check the master key against the header's digest.
 */

#include <config.h>

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "luks.h"
#include "utils.h"

static const uint8_t luks_magic[6] = { 'L', 'U', 'K', 'S', 0xba, 0xbe };

#define KEYSLOT_ENABLED  0x00ac71f3
#define KEYSLOT_DISABLED 0x0000dead

/* The on-disk header (LUKS On-Disk Format Specification 1.2.3);
 * integers are big endian.
 */
struct luks_keyslot {
  uint32_t active;
  uint32_t iterations;
  uint8_t salt[LUKS_SALT_SIZE];
  uint32_t key_material_offset;         /* sectors */
  uint32_t stripes;
} __attribute__ ((__packed__));

struct luks_phdr {
  uint8_t magic[6];
  uint16_t version;
  char cipher_name[32];
  char cipher_mode[32];
  char hash_spec[32];
  uint32_t payload_offset;              /* sectors */
  uint32_t key_bytes;
  uint8_t mk_digest[LUKS_DIGEST_SIZE];
  uint8_t mk_digest_salt[LUKS_SALT_SIZE];
  uint32_t mk_digest_iter;
  char uuid[40];
  struct luks_keyslot keyslots[LUKS_NUM_KEYSLOTS];
} __attribute__ ((__packed__));

_Static_assert (sizeof (struct luks_phdr) == 592, "LUKSv1 header size");

/* The header with its integers in host order and strings terminated. */
struct header {
  struct luks_phdr phdr;
  const struct luks_hash *hash;
};

/* A string field of the header, which need not be terminated. */
static void
terminate (char *field, size_t size)
{
  field[size - 1] = '\0';
}

static int
check_keyslot (const struct luks_keyslot *ks, unsigned i, uint32_t key_bytes,
               uint64_t disk_size)
{
  if (ks->active != KEYSLOT_ENABLED)
    return 0;
  if (ks->iterations == 0 || ks->stripes == 0 ||
      ks->stripes > 0x100000 ||
      (uint64_t) ks->key_material_offset * LUKS_SECTOR_SIZE +
      (uint64_t) key_bytes * ks->stripes > disk_size) {
    nbdkit_error ("LUKS key slot %u is damaged: %" PRIu32 " stripes at "
                  "sector %" PRIu32 " with %" PRIu32 " iterations, disk "
                  "size %" PRIu64, i, ks->stripes, ks->key_material_offset,
                  ks->iterations, disk_size);
    return -1;
  }
  return 0;
}

/* Convert to host order and check everything used later. */
static int
parse_header (struct header *h, uint64_t disk_size)
{
  struct luks_phdr *p = &h->phdr;
  unsigned i;

  if (memcmp (p->magic, luks_magic, sizeof luks_magic) != 0) {
    nbdkit_error ("this disk does not have a LUKS header");
    return -1;
  }
  p->version = be16toh (p->version);
  if (p->version != 1) {
    nbdkit_error ("LUKS version %" PRIu16 " is not supported, only LUKSv1 "
                  "(make it with cryptsetup luksFormat --type luks1)",
                  p->version);
    return -1;
  }
  terminate (p->cipher_name, sizeof p->cipher_name);
  terminate (p->cipher_mode, sizeof p->cipher_mode);
  terminate (p->hash_spec, sizeof p->hash_spec);
  p->payload_offset = be32toh (p->payload_offset);
  p->key_bytes = be32toh (p->key_bytes);
  p->mk_digest_iter = be32toh (p->mk_digest_iter);

  h->hash = luks_hash_lookup (p->hash_spec);
  if (h->hash == NULL) {
    nbdkit_error ("LUKS hash %s is not supported", p->hash_spec);
    return -1;
  }
  if (p->key_bytes == 0 || p->key_bytes > LUKS_MAX_KEY_BYTES) {
    nbdkit_error ("LUKS master key size %" PRIu32 " bytes is not supported",
                  p->key_bytes);
    return -1;
  }
  if (p->mk_digest_iter == 0) {
    nbdkit_error ("LUKS header: master key digest iterations is 0");
    return -1;
  }
  if ((uint64_t) p->payload_offset * LUKS_SECTOR_SIZE > disk_size ||
      (uint64_t) p->payload_offset * LUKS_SECTOR_SIZE < sizeof *p) {
    nbdkit_error ("LUKS payload offset (sector %" PRIu32 ") is not inside "
                  "the disk (size %" PRIu64 ")", p->payload_offset,
                  disk_size);
    return -1;
  }
  for (i = 0; i < LUKS_NUM_KEYSLOTS; ++i) {
    struct luks_keyslot *ks = &p->keyslots[i];

    ks->active = be32toh (ks->active);
    ks->iterations = be32toh (ks->iterations);
    ks->key_material_offset = be32toh (ks->key_material_offset);
    ks->stripes = be32toh (ks->stripes);
    if (check_keyslot (ks, i, p->key_bytes, disk_size) == -1)
      return -1;
  }
  return 0;
}

/* The AF splitter's diffusion: each digest-sized piece of BUF becomes
 * HASH (big-endian piece number || piece), cut to the piece's size.
 */
static int
af_diffuse (const struct luks_hash *hash, uint8_t *buf, size_t len)
{
  size_t dlen = gnutls_hash_get_len (hash->digest);
  uint8_t out[64];
  size_t i, n;
  uint32_t be;
  gnutls_hash_hd_t hd;

  for (i = 0; i * dlen < len; ++i) {
    n = MIN (dlen, len - i * dlen);
    be = htobe32 ((uint32_t) i);
    if (gnutls_hash_init (&hd, hash->digest) < 0)
      return -1;
    gnutls_hash (hd, &be, sizeof be);
    gnutls_hash (hd, buf + i * dlen, n);
    gnutls_hash_deinit (hd, out);
    memcpy (buf + i * dlen, out, n);
  }
  explicit_bzero (out, sizeof out);
  return 0;
}

/* Merge STRIPES stripes of KEY_BYTES each in MATERIAL into KEY. */
static int
af_merge (const struct luks_hash *hash, const uint8_t *material,
          size_t key_bytes, uint32_t stripes, uint8_t *key)
{
  uint32_t s;
  size_t i;

  memset (key, 0, key_bytes);
  for (s = 0; s < stripes; ++s) {
    for (i = 0; i < key_bytes; ++i)
      key[i] ^= material[s * key_bytes + i];
    if (s + 1 < stripes && af_diffuse (hash, key, key_bytes) == -1) {
      nbdkit_error ("LUKS: hashing with %s failed", hash->name);
      return -1;
    }
  }
  return 0;
}

/* 1 if KEY is the master key (its PBKDF2 matches the digest), else 0. */
static int
master_key_matches (const struct header *h, const uint8_t *key)
{
  const struct luks_phdr *p = &h->phdr;
  gnutls_datum_t k = { (unsigned char *) key, p->key_bytes };
  gnutls_datum_t salt = { (unsigned char *) p->mk_digest_salt,
                          LUKS_SALT_SIZE };
  uint8_t digest[LUKS_DIGEST_SIZE];
  int r;

  r = gnutls_pbkdf2 (h->hash->mac, &k, &salt, p->mk_digest_iter,
                     digest, sizeof digest);
  if (r < 0) {
    nbdkit_error ("LUKS: PBKDF2: %s", gnutls_strerror (r));
    return -1;
  }
  return memcmp (digest, p->mk_digest, sizeof digest) == 0;
}

/* Try key slot I: 1 and the master key in KEY if PASSPHRASE opens it,
 * 0 if not, -1 on error.
 */
static int
try_keyslot (nbdkit_next *next, const struct header *h,
             const struct luks_cipher *cipher, unsigned i,
             const char *passphrase, uint8_t *key)
{
  const struct luks_phdr *p = &h->phdr;
  const struct luks_keyslot *ks = &p->keyslots[i];
  size_t len = (size_t) p->key_bytes * ks->stripes;
  size_t rlen = ROUND_UP (len, LUKS_SECTOR_SIZE);
  CLEANUP_FREE uint8_t *material = NULL;
  uint8_t slot_key[LUKS_MAX_KEY_BYTES];
  gnutls_datum_t pw = { (unsigned char *) passphrase, strlen (passphrase) };
  gnutls_datum_t salt = { (unsigned char *) ks->salt, LUKS_SALT_SIZE };
  int r, err;

  material = malloc (rlen);
  if (material == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  /* Only LEN bytes are on the disk (checked in parse_header); the rest
   * of the last sector is decrypted but not used.
   */
  memset (material + len, 0, rlen - len);
  if (next->pread (next, material, len,
                   (uint64_t) ks->key_material_offset * LUKS_SECTOR_SIZE,
                   0, &err) == -1) {
    nbdkit_error ("LUKS: reading key slot %u: %s", i, strerror (err));
    return -1;
  }
  r = gnutls_pbkdf2 (h->hash->mac, &pw, &salt, ks->iterations,
                     slot_key, p->key_bytes);
  if (r < 0) {
    nbdkit_error ("LUKS: PBKDF2: %s", gnutls_strerror (r));
    return -1;
  }
  r = luks_crypt_sectors (cipher, slot_key, false, 0, material, rlen);
  explicit_bzero (slot_key, sizeof slot_key);
  if (r == 0)
    r = af_merge (h->hash, material, p->key_bytes, ks->stripes, key);
  explicit_bzero (material, rlen);
  if (r == -1)
    return -1;
  return master_key_matches (h, key);
}

int
luks_volume_open (nbdkit_next *next, const char *passphrase,
                  struct luks_volume *volume)
{
  struct header h;
  int64_t size;
  unsigned i;
  int err, r;

  size = next->get_size (next);
  if (size == -1)
    return -1;
  if ((uint64_t) size < sizeof h.phdr) {
    nbdkit_error ("the disk is too small (%" PRIi64 " bytes) to have a "
                  "LUKS header", size);
    return -1;
  }
  if (next->pread (next, &h.phdr, sizeof h.phdr, 0, 0, &err) == -1) {
    nbdkit_error ("LUKS: reading the header: %s", strerror (err));
    return -1;
  }
  if (parse_header (&h, size) == -1 ||
      luks_cipher_parse (h.phdr.cipher_name, h.phdr.cipher_mode,
                         h.phdr.key_bytes, &volume->cipher) == -1)
    return -1;
  volume->payload_offset =
    (uint64_t) h.phdr.payload_offset * LUKS_SECTOR_SIZE;

  for (i = 0; i < LUKS_NUM_KEYSLOTS; ++i) {
    if (h.phdr.keyslots[i].active != KEYSLOT_ENABLED)
      continue;
    r = try_keyslot (next, &h, &volume->cipher, i, passphrase,
                     volume->master_key);
    if (r == -1)
      return -1;
    if (r == 1) {
      nbdkit_debug ("LUKS: key slot %u unlocked, cipher %s, hash %s, "
                    "payload at %" PRIu64, i, volume->cipher.spec,
                    h.hash->name, volume->payload_offset);
      return 0;
    }
  }
  explicit_bzero (volume->master_key, sizeof volume->master_key);
  nbdkit_error ("LUKS passphrase is not correct, no key slot could be "
                "unlocked");
  return -1;
}
