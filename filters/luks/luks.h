/* SPDX-License-Identifier: BSD-3-Clause
 * The LUKS filter's private header: the LUKSv1 on-disk constants, the
 * cipher a volume uses (luks-crypto.c) and the unlocked volume
 * (luks-header.c).
 */

#ifndef NBDKIT_LUKS_H
#define NBDKIT_LUKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include <nbdkit-filter.h>

/* LUKSv1 counts in 512-byte sectors, for offsets and for the IVs. */
#define LUKS_SECTOR_SIZE 512
#define LUKS_NUM_KEYSLOTS 8
#define LUKS_DIGEST_SIZE 20
#define LUKS_SALT_SIZE 32
/* The largest master key of the ciphers we know (AES-256 in XTS). */
#define LUKS_MAX_KEY_BYTES 64

/* A hash named by the header's hash-spec (or an ESSIV spec). */
struct luks_hash {
  const char *name;
  gnutls_mac_algorithm_t mac;         /* for PBKDF2 */
  gnutls_digest_algorithm_t digest;   /* for the AF splitter and ESSIV */
};

/* How the IV of each sector is made. */
enum luks_ivgen {
  LUKS_IV_NONE,                 /* ecb: no IV, each block on its own */
  LUKS_IV_PLAIN,                /* sector number, 32 bits little endian */
  LUKS_IV_PLAIN64,              /* sector number, 64 bits little endian */
  LUKS_IV_ESSIV,                /* sector number encrypted with H(key) */
};

/* The cipher of a volume, from the header's cipher-name, cipher-mode
 * and key-bytes.
 */
struct luks_cipher {
  char spec[80];                       /* "aes-xts-plain64", for messages */
  gnutls_cipher_algorithm_t algorithm; /* with the key size included */
  size_t key_bytes;
  size_t block_size;                   /* of the cipher, 16 */
  enum luks_ivgen ivgen;
  const struct luks_hash *essiv_hash;  /* LUKS_IV_ESSIV only */
  gnutls_cipher_algorithm_t essiv_algorithm;
};

/* luks-crypto.c */
extern const struct luks_hash *luks_hash_lookup (const char *name);
extern int luks_cipher_parse (const char *name, const char *mode,
                              uint32_t key_bytes, struct luks_cipher *cipher);
/* Encrypt or decrypt LEN bytes (whole sectors) in place; the first
 * sector has IV number FIRST_SECTOR.  0 or -1 with an nbdkit_error.
 */
extern int luks_crypt_sectors (const struct luks_cipher *cipher,
                               const uint8_t *key, bool encrypt,
                               uint64_t first_sector, void *buf, size_t len);

/* luks-header.c */

/* An unlocked volume: the cipher, the master key, where data begins. */
struct luks_volume {
  struct luks_cipher cipher;
  uint8_t master_key[LUKS_MAX_KEY_BYTES];
  uint64_t payload_offset;             /* in bytes */
};

/* Read the header through NEXT and unlock a key slot with PASSPHRASE. */
extern int luks_volume_open (nbdkit_next *next, const char *passphrase,
                             struct luks_volume *volume);

#endif /* NBDKIT_LUKS_H */
