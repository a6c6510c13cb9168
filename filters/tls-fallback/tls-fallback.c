/* SPDX-License-Identifier: BSD-3-Clause
 * The tls-fallback filter: a client that did not negotiate TLS gets a
 * small read-only disk holding a message instead of the plugin's data.
 * The plugin is not even opened for it.
 */

#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "utils.h"

/* The handle of a plaintext connection; TLS connections have
 * NBDKIT_HANDLE_NOT_NEEDED and go to the plugin.
 */
static char plaintext_handle;
#define PLAINTEXT ((void *) &plaintext_handle)

/* tlsreadme=: the message served to plaintext clients, padded with
 * NULs to a multiple of 512 bytes.
 */
static const char default_message[] =
  "This NBD server requires TLS authentication before it will serve "
  "useful data.\n";
static const char *message = default_message;

#define SECTOR 512

static int
tls_fallback_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                     const char *key, const char *value)
{
  if (strcmp (key, "tlsreadme") == 0) {
    message = nbdkit_strdup_intern (value);
    return message ? 0 : -1;
  }
  return next (nxdata, key, value);
}

#define tls_fallback_config_help \
  "tlsreadme=<MESSAGE>  Contents of the disk served to plaintext clients."

/* A plugin serving one connection at a time would be held up by any
 * plaintext client that stays connected.
 */
static int
tls_fallback_get_ready (int thread_model)
{
  if (thread_model == NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS) {
    nbdkit_error ("tls-fallback: the plugin (or a filter) serializes "
                  "connections, so one plaintext client could block "
                  "every TLS client; this filter needs parallel connections");
    return -1;
  }
  return 0;
}

/* Plaintext clients see one export, the default one. */
static int
tls_fallback_list_exports (nbdkit_next_list_exports *next,
                           nbdkit_backend *nxdata, int readonly, int is_tls,
                           struct nbdkit_exports *exports)
{
  if (!is_tls)
    return nbdkit_add_export (exports, "", NULL);
  return next (nxdata, readonly, exports);
}

static const char *
tls_fallback_default_export (nbdkit_next_default_export *next,
                             nbdkit_backend *nxdata, int readonly, int is_tls)
{
  if (!is_tls)
    return "";
  return next (nxdata, readonly);
}

static void *
tls_fallback_open (nbdkit_next_open *next, nbdkit_context *context,
                   int readonly, const char *exportname, int is_tls)
{
  if (!is_tls)
    return PLAINTEXT;           /* the export name is ignored */
  if (next (context, readonly, exportname) == -1)
    return NULL;
  return NBDKIT_HANDLE_NOT_NEEDED;
}

/* Every callback below answers for plaintext connections itself: they
 * have no layer below to ask.
 */
static const char *
tls_fallback_export_description (nbdkit_next *next, void *handle)
{
  if (handle == PLAINTEXT)
    return NULL;
  return next->export_description (next);
}

static int64_t
tls_fallback_get_size (nbdkit_next *next, void *handle)
{
  if (handle == PLAINTEXT) {
    size_t len = strlen (message);
    return len ? ROUND_UP ((int64_t) len, SECTOR) : SECTOR;
  }
  return next->get_size (next);
}

static int
tls_fallback_block_size (nbdkit_next *next, void *handle, uint32_t *minimum,
                         uint32_t *preferred, uint32_t *maximum)
{
  if (handle == PLAINTEXT) {
    *minimum = *preferred = *maximum = 0;     /* no constraints */
    return 0;
  }
  return next->block_size (next, minimum, preferred, maximum);
}

/* Plaintext: read-only, nothing but reads.  TLS: the plugin's answer. */
#define PLAINTEXT_CAN(name, plaintext_answer)                           \
  static int                                                            \
  tls_fallback_##name (nbdkit_next *next, void *handle)                 \
  {                                                                     \
    if (handle == PLAINTEXT)                                            \
      return plaintext_answer;                                          \
    return next->name (next);                                           \
  }
PLAINTEXT_CAN (can_write, 0)
PLAINTEXT_CAN (can_flush, 0)
PLAINTEXT_CAN (is_rotational, 0)
PLAINTEXT_CAN (can_trim, 0)
PLAINTEXT_CAN (can_zero, NBDKIT_ZERO_NONE)
PLAINTEXT_CAN (can_fast_zero, 0)
PLAINTEXT_CAN (can_extents, 0)
PLAINTEXT_CAN (can_fua, NBDKIT_FUA_NONE)
PLAINTEXT_CAN (can_multi_conn, 0)
PLAINTEXT_CAN (can_cache, NBDKIT_CACHE_NONE)

static int
tls_fallback_pread (nbdkit_next *next, void *handle, void *buf,
                    uint32_t count, uint64_t offset, uint32_t flags,
                    int *err)
{
  if (handle == PLAINTEXT) {
    size_t len = strlen (message);
    size_t n = 0;

    /* The server has checked the range against the size. */
    if (offset < len)
      n = MIN ((uint64_t) count, len - offset);
    if (n > 0)
      memcpy (buf, message + offset, n);
    memset ((char *) buf + n, 0, count - n);
    return 0;
  }
  return next->pread (next, buf, count, offset, flags, err);
}

static struct nbdkit_filter filter = {
  .name               = "tls-fallback",
  .longname           = "nbdkit tls-fallback filter",
  .version            = PACKAGE_VERSION,
  .description        = "Serve a message disk to clients without TLS",
  .config             = tls_fallback_config,
  .config_help        = tls_fallback_config_help,
  .get_ready          = tls_fallback_get_ready,
  .list_exports       = tls_fallback_list_exports,
  .default_export     = tls_fallback_default_export,
  .open               = tls_fallback_open,
  .export_description = tls_fallback_export_description,
  .get_size           = tls_fallback_get_size,
  .block_size         = tls_fallback_block_size,
  .can_write          = tls_fallback_can_write,
  .can_flush          = tls_fallback_can_flush,
  .is_rotational      = tls_fallback_is_rotational,
  .can_trim           = tls_fallback_can_trim,
  .can_zero           = tls_fallback_can_zero,
  .can_fast_zero      = tls_fallback_can_fast_zero,
  .can_extents        = tls_fallback_can_extents,
  .can_fua            = tls_fallback_can_fua,
  .can_multi_conn     = tls_fallback_can_multi_conn,
  .can_cache          = tls_fallback_can_cache,
  .pread              = tls_fallback_pread,
};

NBDKIT_REGISTER_FILTER (filter)
