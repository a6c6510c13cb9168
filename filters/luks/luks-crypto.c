/* SPDX-License-Identifier: BSD-3-Clause
 * The LUKS filter's ciphers: the names LUKSv1 headers use, mapped to
 * GnuTLS algorithms, and sector by sector encryption with the IV
 * generators plain, plain64 and essiv:HASH (and ecb without IVs).
 */

#include <config.h>

#include <endian.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luks.h"
#include "utils.h"

static const struct luks_hash hashes[] = {
  { "sha1",      GNUTLS_MAC_SHA1,   GNUTLS_DIG_SHA1 },
  { "sha224",    GNUTLS_MAC_SHA224, GNUTLS_DIG_SHA224 },
  { "sha256",    GNUTLS_MAC_SHA256, GNUTLS_DIG_SHA256 },
  { "sha384",    GNUTLS_MAC_SHA384, GNUTLS_DIG_SHA384 },
  { "sha512",    GNUTLS_MAC_SHA512, GNUTLS_DIG_SHA512 },
  /* Not ripemd160: GnuTLS 3.7 refuses HMAC and PBKDF2 with it. */
};

const struct luks_hash *
luks_hash_lookup (const char *name)
{
  size_t i;

  for (i = 0; i < ARRAY_SIZE (hashes); ++i)
    if (strcmp (hashes[i].name, name) == 0)
      return &hashes[i];
  return NULL;
}

/* The GnuTLS algorithms for each cipher, mode and key size.  ECB is
 * done with CBC and a zero IV for every block.
 */
static const struct {
  const char *name, *mode;
  size_t key_bytes;
  gnutls_cipher_algorithm_t algorithm;
} ciphers[] = {
  { "aes", "xts", 32, GNUTLS_CIPHER_AES_128_XTS },
  { "aes", "xts", 64, GNUTLS_CIPHER_AES_256_XTS },
  { "aes", "cbc", 16, GNUTLS_CIPHER_AES_128_CBC },
  { "aes", "cbc", 24, GNUTLS_CIPHER_AES_192_CBC },
  { "aes", "cbc", 32, GNUTLS_CIPHER_AES_256_CBC },
  { "aes", "ecb", 16, GNUTLS_CIPHER_AES_128_CBC },
  { "aes", "ecb", 24, GNUTLS_CIPHER_AES_192_CBC },
  { "aes", "ecb", 32, GNUTLS_CIPHER_AES_256_CBC },
  { "camellia", "cbc", 16, GNUTLS_CIPHER_CAMELLIA_128_CBC },
  { "camellia", "cbc", 24, GNUTLS_CIPHER_CAMELLIA_192_CBC },
  { "camellia", "cbc", 32, GNUTLS_CIPHER_CAMELLIA_256_CBC },
  { "camellia", "ecb", 16, GNUTLS_CIPHER_CAMELLIA_128_CBC },
  { "camellia", "ecb", 24, GNUTLS_CIPHER_CAMELLIA_192_CBC },
  { "camellia", "ecb", 32, GNUTLS_CIPHER_CAMELLIA_256_CBC },
};

static gnutls_cipher_algorithm_t
cipher_lookup (const char *name, const char *mode, size_t key_bytes)
{
  size_t i;

  for (i = 0; i < ARRAY_SIZE (ciphers); ++i)
    if (strcmp (ciphers[i].name, name) == 0 &&
        strcmp (ciphers[i].mode, mode) == 0 &&
        ciphers[i].key_bytes == key_bytes)
      return ciphers[i].algorithm;
  return GNUTLS_CIPHER_UNKNOWN;
}

/* The IV part of the mode: "plain", "plain64" or "essiv:HASH". */
static int
parse_ivgen (const char *iv, struct luks_cipher *cipher, const char *name)
{
  if (strcmp (iv, "plain") == 0)
    cipher->ivgen = LUKS_IV_PLAIN;
  else if (strcmp (iv, "plain64") == 0)
    cipher->ivgen = LUKS_IV_PLAIN64;
  else if (strncmp (iv, "essiv:", 6) == 0) {
    cipher->ivgen = LUKS_IV_ESSIV;
    cipher->essiv_hash = luks_hash_lookup (iv + 6);
    if (cipher->essiv_hash == NULL) {
      nbdkit_error ("LUKS cipher %s: the ESSIV hash %s is not supported",
                    cipher->spec, iv + 6);
      return -1;
    }
    /* ESSIV encrypts with a key the size of the hash's digest. */
    cipher->essiv_algorithm =
      cipher_lookup (name, "cbc",
                     gnutls_hash_get_len (cipher->essiv_hash->digest));
    if (cipher->essiv_algorithm == GNUTLS_CIPHER_UNKNOWN) {
      nbdkit_error ("LUKS cipher %s: %s has no key of the size of a %s "
                    "digest for ESSIV", cipher->spec, name, iv + 6);
      return -1;
    }
  }
  else {
    nbdkit_error ("LUKS cipher %s: the IV generator %s is not supported "
                  "(plain, plain64 and essiv:HASH are)", cipher->spec, iv);
    return -1;
  }
  return 0;
}

int
luks_cipher_parse (const char *name, const char *mode, uint32_t key_bytes,
                   struct luks_cipher *cipher)
{
  char chain[32];
  const char *dash = strchr (mode, '-');
  size_t len = dash ? (size_t) (dash - mode) : strlen (mode);

  memset (cipher, 0, sizeof *cipher);
  snprintf (cipher->spec, sizeof cipher->spec, "%s-%s", name, mode);
  if (len >= sizeof chain) {
    nbdkit_error ("LUKS cipher %s is not supported", cipher->spec);
    return -1;
  }
  memcpy (chain, mode, len);
  chain[len] = '\0';

  cipher->key_bytes = key_bytes;
  cipher->algorithm = cipher_lookup (name, chain, key_bytes);
  if (cipher->algorithm == GNUTLS_CIPHER_UNKNOWN) {
    nbdkit_error ("LUKS cipher %s with a %" PRIu32 "-bit key is not "
                  "supported (aes in xts, cbc or ecb mode and camellia in "
                  "cbc or ecb mode are)", cipher->spec, key_bytes * 8);
    return -1;
  }
  cipher->block_size = gnutls_cipher_get_block_size (cipher->algorithm);

  if (strcmp (chain, "ecb") == 0) {
    if (dash) {
      nbdkit_error ("LUKS cipher %s: ecb takes no IV generator",
                    cipher->spec);
      return -1;
    }
    cipher->ivgen = LUKS_IV_NONE;
    return 0;
  }
  if (!dash) {
    nbdkit_error ("LUKS cipher %s: the mode has no IV generator",
                  cipher->spec);
    return -1;
  }
  return parse_ivgen (dash + 1, cipher, name);
}

/* The per-call state: the main cipher and, for ESSIV, the IV cipher. */
struct sector_cipher {
  const struct luks_cipher *cipher;
  gnutls_cipher_hd_t main, essiv;
};

static int
sector_cipher_init (struct sector_cipher *sc,
                    const struct luks_cipher *cipher, const uint8_t *key)
{
  uint8_t zero_iv[16] = { 0 };
  uint8_t essiv_key[64];
  gnutls_datum_t k = { (unsigned char *) key, cipher->key_bytes };
  gnutls_datum_t iv = { zero_iv, cipher->block_size };
  int r;

  sc->cipher = cipher;
  sc->main = sc->essiv = NULL;
  r = gnutls_cipher_init (&sc->main, cipher->algorithm, &k, &iv);
  if (r < 0) {
    nbdkit_error ("LUKS cipher %s: %s", cipher->spec, gnutls_strerror (r));
    sc->main = NULL;
    return -1;
  }
  if (cipher->ivgen != LUKS_IV_ESSIV)
    return 0;

  r = gnutls_hash_fast (cipher->essiv_hash->digest, key, cipher->key_bytes,
                        essiv_key);
  if (r == 0) {
    k.data = essiv_key;
    k.size = gnutls_hash_get_len (cipher->essiv_hash->digest);
    r = gnutls_cipher_init (&sc->essiv, cipher->essiv_algorithm, &k, &iv);
  }
  explicit_bzero (essiv_key, sizeof essiv_key);
  if (r < 0) {
    nbdkit_error ("LUKS cipher %s: ESSIV: %s", cipher->spec,
                  gnutls_strerror (r));
    sc->essiv = NULL;
    gnutls_cipher_deinit (sc->main);
    sc->main = NULL;
    return -1;
  }
  return 0;
}

static void
sector_cipher_free (struct sector_cipher *sc)
{
  if (sc->essiv)
    gnutls_cipher_deinit (sc->essiv);
  if (sc->main)
    gnutls_cipher_deinit (sc->main);
}

/* Make the IV of SECTOR into IV (block_size bytes). */
static int
make_iv (struct sector_cipher *sc, uint64_t sector, uint8_t *iv)
{
  size_t bs = sc->cipher->block_size;
  uint8_t zero_iv[16] = { 0 };
  uint32_t le32 = htole32 ((uint32_t) sector);
  uint64_t le64 = htole64 (sector);
  int r;

  memset (iv, 0, bs);
  switch (sc->cipher->ivgen) {
  case LUKS_IV_NONE:
    break;
  case LUKS_IV_PLAIN:
    memcpy (iv, &le32, sizeof le32);
    break;
  case LUKS_IV_PLAIN64:
    memcpy (iv, &le64, sizeof le64);
    break;
  case LUKS_IV_ESSIV:
    /* One block encrypted alone: CBC with a zero IV is ECB. */
    memcpy (iv, &le64, sizeof le64);
    gnutls_cipher_set_iv (sc->essiv, zero_iv, bs);
    r = gnutls_cipher_encrypt (sc->essiv, iv, bs);
    if (r < 0) {
      nbdkit_error ("LUKS ESSIV: %s", gnutls_strerror (r));
      return -1;
    }
    break;
  }
  return 0;
}

static int
crypt_range (struct sector_cipher *sc, bool encrypt, uint8_t *p, size_t len)
{
  int r = encrypt ? gnutls_cipher_encrypt (sc->main, p, len)
                  : gnutls_cipher_decrypt (sc->main, p, len);

  if (r < 0) {
    nbdkit_error ("LUKS cipher %s: %s", sc->cipher->spec,
                  gnutls_strerror (r));
    return -1;
  }
  return 0;
}

static int
crypt_sector (struct sector_cipher *sc, bool encrypt, uint64_t sector,
              uint8_t *p)
{
  size_t bs = sc->cipher->block_size;
  uint8_t iv[16];
  size_t i;

  if (make_iv (sc, sector, iv) == -1)
    return -1;
  if (sc->cipher->ivgen != LUKS_IV_NONE) {
    gnutls_cipher_set_iv (sc->main, iv, bs);
    return crypt_range (sc, encrypt, p, LUKS_SECTOR_SIZE);
  }
  for (i = 0; i < LUKS_SECTOR_SIZE; i += bs) {
    gnutls_cipher_set_iv (sc->main, iv, bs);
    if (crypt_range (sc, encrypt, p + i, bs) == -1)
      return -1;
  }
  return 0;
}

int
luks_crypt_sectors (const struct luks_cipher *cipher, const uint8_t *key,
                    bool encrypt, uint64_t first_sector, void *buf,
                    size_t len)
{
  struct sector_cipher sc;
  uint8_t *p = buf;
  size_t i;
  int r = 0;

  if (len % LUKS_SECTOR_SIZE != 0) {
    nbdkit_error ("LUKS: %zu bytes is not a whole number of sectors", len);
    return -1;
  }
  if (sector_cipher_init (&sc, cipher, key) == -1)
    return -1;
  for (i = 0; i < len / LUKS_SECTOR_SIZE; ++i) {
    r = crypt_sector (&sc, encrypt, first_sector + i,
                      p + i * LUKS_SECTOR_SIZE);
    if (r == -1)
      break;
  }
  sector_cipher_free (&sc);
  return r;
}
