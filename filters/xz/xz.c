/* SPDX-License-Identifier: BSD-3-Clause
 * The xz filter: serve the uncompressed contents of an .xz file, read
 * only, with random access through the file's block index.  Each
 * connection keeps the last few decompressed blocks (blkcache.c).
 */

#include <config.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "blkcache.h"
#include "utils.h"
#include "xzfile.h"

/* xz-max-block=: files with a larger block (uncompressed) are refused,
 * which bounds the memory one cached block may take.
 */
static uint64_t max_block = 512 * 1024 * 1024;

/* xz-max-depth=: how many decompressed blocks a connection caches. */
static unsigned max_depth = 8;

static int
xz_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
           const char *key, const char *value)
{
  if (strcmp (key, "xz-max-block") == 0) {
    const char *error;
    int64_t r = parse_human_size (value, &error);
    if (r == -1) {
      nbdkit_error ("xz-max-block=%s: %s", value, error);
      return -1;
    }
    if (r == 0) {
      nbdkit_error ("xz-max-block=%s: must be greater than 0", value);
      return -1;
    }
    max_block = r;
    return 0;
  }
  if (strcmp (key, "xz-max-depth") == 0) {
    if (nbdkit_parse_unsigned ("xz-max-depth", value, &max_depth) == -1)
      return -1;
    if (max_depth == 0) {
      nbdkit_error ("xz-max-depth=%s: must be at least 1", value);
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

#define xz_config_help \
  "xz-max-block=<SIZE>  Largest block accepted (default 512M).\n" \
  "xz-max-depth=<N>     Decompressed blocks cached per connection " \
  "(default 8)."

struct handle {
  struct xzfile *xz;            /* the index, read in prepare */
  struct blkcache *cache;
};

static void *
xz_open (nbdkit_next_open *next, nbdkit_context *context,
         int readonly, const char *exportname, int is_tls)
{
  struct handle *h;

  /* The compressed file is never written. */
  if (next (context, 1, exportname) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  h->cache = blkcache_new (max_depth);
  if (h->cache == NULL) {
    free (h);
    return NULL;
  }
  return h;
}

static void
xz_close (void *handle)
{
  struct handle *h = handle;

  blkcache_free (h->cache);
  xzfile_close (h->xz);
  free (h);
}

static int
xz_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;

  h->xz = xzfile_open (next, max_block);
  return h->xz ? 0 : -1;
}

static int64_t
xz_get_size (nbdkit_next *next, void *handle)
{
  struct handle *h = handle;

  return xzfile_size (h->xz);
}

/* Any alignment works; the compressed file's constraints do not apply
 * to the uncompressed data.
 */
static int
xz_block_size (nbdkit_next *next, void *handle, uint32_t *minimum,
               uint32_t *preferred, uint32_t *maximum)
{
  *minimum = 1;
  *preferred = 4096;
  *maximum = 0xffffffff;
  return 0;
}

static int
xz_can_write (nbdkit_next *next, void *handle)
{
  return 0;
}

/* The layer below describes the compressed file, not ours. */
static int
xz_can_extents (nbdkit_next *next, void *handle)
{
  return 0;
}

/* The data never changes, so every connection sees the same bytes. */
static int
xz_can_multi_conn (nbdkit_next *next, void *handle)
{
  return 1;
}

/* A prefetch decompresses the blocks into the cache. */
static int
xz_can_cache (nbdkit_next *next, void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

/* Run COUNT bytes at OFFSET through the cache block by block; BUF may
 * be NULL to only load the blocks.
 */
static int
for_each_block (nbdkit_next *next, struct handle *h, char *buf,
                uint32_t count, uint64_t offset, int *err)
{
  while (count > 0) {
    struct xz_block blk;
    uint64_t skip;
    uint32_t n;

    xzfile_find_block (h->xz, offset, &blk);
    skip = offset - blk.offset;
    n = MIN (count, blk.size - skip);
    if (blkcache_read (h->cache, h->xz, next, &blk, skip, buf ? n : 0, buf,
                       err) == -1)
      return -1;
    if (buf)
      buf += n;
    count -= n;
    offset += n;
  }
  return 0;
}

static int
xz_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
          uint64_t offset, uint32_t flags, int *err)
{
  return for_each_block (next, handle, buf, count, offset, err);
}

static int
xz_cache (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
          uint32_t flags, int *err)
{
  return for_each_block (next, handle, NULL, count, offset, err);
}

static struct nbdkit_filter filter = {
  .name              = "xz",
  .longname          = "nbdkit xz filter",
  .version           = PACKAGE_VERSION,
  .description       = "Serve the uncompressed contents of an .xz file",
  .config            = xz_config,
  .config_help       = xz_config_help,
  .open              = xz_open,
  .close             = xz_close,
  .prepare           = xz_prepare,
  .get_size          = xz_get_size,
  .block_size        = xz_block_size,
  .can_write         = xz_can_write,
  .can_extents       = xz_can_extents,
  .can_multi_conn    = xz_can_multi_conn,
  .can_cache         = xz_can_cache,
  .pread             = xz_pread,
  .cache             = xz_cache,
};

NBDKIT_REGISTER_FILTER (filter)
