/* SPDX-License-Identifier: BSD-3-Clause
 * The tar filter: serve one member of an uncompressed tar archive, read
 * and written in place.  Each connection finds the member's data in the
 * archive (tar-headers.c) and shifts every request into it.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "tar-headers.h"
#include "utils.h"

/* tar-entry=: the member to serve, exactly as `tar tf` lists it. */
static char *entry;

/* tar-limit=: headers are looked for in this many bytes of the archive
 * only (0: the whole archive).
 */
static uint64_t limit = 0;

static void
tar_unload (void)
{
  free (entry);
}

static int
tar_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
            const char *key, const char *value)
{
  if (strcmp (key, "tar-entry") == 0) {
    if (*value == '\0') {
      nbdkit_error ("tar-entry: the member name must not be empty");
      return -1;
    }
    free (entry);
    entry = strdup (value);
    if (entry == NULL) {
      nbdkit_error ("strdup: %m");
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "tar-limit") == 0) {
    const char *error;
    int64_t r = parse_human_size (value, &error);
    if (r == -1) {
      nbdkit_error ("tar-limit=%s: %s", value, error);
      return -1;
    }
    limit = r;
    return 0;
  }
  return next (nxdata, key, value);
}

static int
tar_config_complete (nbdkit_next_config_complete *next,
                     nbdkit_backend *nxdata)
{
  if (entry == NULL) {
    nbdkit_error ("the tar-entry=NAME parameter is required");
    return -1;
  }
  return next (nxdata);
}

#define tar_config_help \
  "tar-entry=<NAME>     (required) The member of the archive to serve.\n" \
  "tar-limit=<SIZE>     Look for it in this many bytes only (default: all)."

/* Where this connection's member lies in the archive. */
struct handle {
  struct tar_member member;
};

static void *
tar_open (nbdkit_next_open *next, nbdkit_context *context,
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
tar_close (void *handle)
{
  free (handle);
}

static int
tar_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;

  return tar_find_member (next, entry, limit, &h->member);
}

static int64_t
tar_get_size (nbdkit_next *next, void *handle)
{
  struct handle *h = handle;

  return h->member.size;
}

static int
tar_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
           uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;

  return next->pread (next, buf, count, offset + h->member.offset, flags,
                      err);
}

static int
tar_pwrite (nbdkit_next *next, void *handle, const void *buf,
            uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;

  return next->pwrite (next, buf, count, offset + h->member.offset, flags,
                       err);
}

static int
tar_trim (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
          uint32_t flags, int *err)
{
  struct handle *h = handle;

  return next->trim (next, count, offset + h->member.offset, flags, err);
}

static int
tar_zero (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
          uint32_t flags, int *err)
{
  struct handle *h = handle;

  return next->zero (next, count, offset + h->member.offset, flags, err);
}

/* The archive's extents, moved back and cut at the end of the member. */
static int
tar_extents (nbdkit_next *next, void *handle, uint32_t count,
             uint64_t offset, uint32_t flags,
             struct nbdkit_extents *extents, int *err)
{
  struct handle *h = handle;
  uint64_t base = h->member.offset, end = base + h->member.size;
  struct nbdkit_extents *inner;
  size_t i;
  int r = -1;

  inner = nbdkit_extents_new (offset + base, end);
  if (inner == NULL) {
    *err = errno;
    return -1;
  }
  if (next->extents (next, count, offset + base, flags, inner, err) == -1)
    goto out;
  for (i = 0; i < nbdkit_extents_count (inner); ++i) {
    struct nbdkit_extent e = nbdkit_get_extent (inner, i);
    uint64_t e_end = MIN (e.offset + e.length, end);

    if (e.offset >= e_end)
      break;
    if (nbdkit_add_extent (extents, e.offset - base, e_end - e.offset,
                           e.type) == -1) {
      *err = errno;
      goto out;
    }
  }
  r = 0;
 out:
  nbdkit_extents_free (inner);
  return r;
}

static int
tar_cache (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
           uint32_t flags, int *err)
{
  struct handle *h = handle;

  return next->cache (next, count, offset + h->member.offset, flags, err);
}

static struct nbdkit_filter filter = {
  .name              = "tar",
  .longname          = "nbdkit tar filter",
  .version           = PACKAGE_VERSION,
  .description       = "Serve one member of a tar archive",
  .unload            = tar_unload,
  .config            = tar_config,
  .config_complete   = tar_config_complete,
  .config_help       = tar_config_help,
  .open              = tar_open,
  .close             = tar_close,
  .prepare           = tar_prepare,
  .get_size          = tar_get_size,
  .pread             = tar_pread,
  .pwrite            = tar_pwrite,
  .trim              = tar_trim,
  .zero              = tar_zero,
  .extents           = tar_extents,
  .cache             = tar_cache,
};

NBDKIT_REGISTER_FILTER (filter)
