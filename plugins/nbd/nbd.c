/* SPDX-License-Identifier: BSD-3-Clause
 * The nbd plugin: forward every client to another NBD server through
 * libnbd, passing its size, flags, block sizes, extents and errors
 * through unchanged.  connect.c makes the upstream connections and
 * forward.c carries the requests over them.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "nbd-internal.h"
#include "utils.h"

/* With shared=true, the one upstream connection every client uses. */
static struct upstream *shared_upstream;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

static void
nbdplug_unload (void)
{
  nbdplug_params_free ();
}

static void
nbdplug_dump_plugin (void)
{
  struct nbd_handle *nbd = nbd_create ();

  if (nbd == NULL) {
    nbdkit_error ("nbd_create: %s", nbd_get_error ());
    return;
  }
  printf ("libnbd_version=%s\n", nbd_get_version (nbd));
  printf ("libnbd_tls=%d\n", nbd_supports_tls (nbd) == 1);
  printf ("libnbd_uri=%d\n", nbd_supports_uri (nbd) == 1);
#ifdef AF_VSOCK
  printf ("libnbd_vsock=1\n");
#else
  printf ("libnbd_vsock=0\n");
#endif
  printf ("libnbd_dynamic_list=1\n");
  nbd_close (nbd);
}

static struct upstream *
open_upstream (const char *export)
{
  struct nbd_handle *nbd = upstream_connect (export, false);

  return nbd ? upstream_start (nbd) : NULL;
}

/* The shared connection is made once nbdkit has forked, so that the
 * owner thread and any command= subprocess belong to the server process.
 */
static int
nbdplug_after_fork (void)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&shared_lock);

  if (!params.shared || shared_upstream)
    return 0;
  shared_upstream = open_upstream (params.export);
  return shared_upstream ? 0 : -1;
}

static void
nbdplug_cleanup (void)
{
  upstream_stop (shared_upstream);
  shared_upstream = NULL;
}

/* Without dynamic exports only the default export is listed; with them,
 * whatever the server lists.
 */
static int
add_listed_export (void *user_data, const char *name, const char *description)
{
  struct nbdkit_exports *exports = user_data;

  /* nbdkit_add_export reports its own failures (an over-long name, too
   * many exports) and that entry is left out; libnbd ignores the result.
   */
  nbdkit_add_export (exports, name, *description ? description : NULL);
  return 0;
}

static int
nbdplug_list_exports (int readonly, int is_tls, struct nbdkit_exports *exports)
{
  struct nbd_handle *nbd;
  int r = 0;

  if (!params.dynamic_export)
    return nbdkit_use_default_export (exports);

  nbd = upstream_connect (NULL, true);
  if (nbd == NULL)
    return -1;
  if (!nbd_aio_is_negotiating (nbd)) {
    nbdkit_error ("the NBD server cannot list exports (oldstyle protocol)");
    r = -1;
  }
  else if (nbd_opt_list (nbd, (nbd_list_callback) {
        .callback = add_listed_export, .user_data = exports }) == -1) {
    nbdkit_error ("listing the exports of the NBD server: %s",
                  nbd_get_error ());
    r = -1;
  }
  if (nbd_aio_is_negotiating (nbd))
    nbd_opt_abort (nbd);
  nbd_close (nbd);
  return r;
}

/* With dynamic exports, the server's canonical name for its default
 * export, if it says.
 */
static const char *
nbdplug_default_export (int readonly, int is_tls)
{
  struct nbd_handle *nbd;
  const char *ret = "";

  if (!params.dynamic_export)
    return "";

  nbd = upstream_connect (NULL, true);
  if (nbd == NULL)
    return NULL;
  if (nbd_aio_is_negotiating (nbd) && nbd_opt_info (nbd) == 0) {
    CLEANUP_FREE char *name = nbd_get_canonical_export_name (nbd);
    if (name)
      ret = nbdkit_strdup_intern (name);
  }
  if (nbd_aio_is_negotiating (nbd))
    nbd_opt_abort (nbd);
  nbd_close (nbd);
  return ret;
}

static void *
nbdplug_open (int readonly)
{
  if (params.shared) {
    /* after_fork normally made it; nbdkit -s does not call after_fork. */
    if (nbdplug_after_fork () == -1)
      return NULL;
    return shared_upstream;
  }
  return open_upstream (params.dynamic_export ? nbdkit_export_name ()
                        : params.export);
}

static void
nbdplug_close (void *handle)
{
  if (!params.shared)
    upstream_stop (handle);
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

/* What the server said during the handshake; libnbd answers from memory. */
static struct nbd_handle *
nbd_of (void *handle)
{
  return ((struct upstream *) handle)->nbd;
}

static const char *
nbdplug_export_description (void *handle)
{
  CLEANUP_FREE char *desc = nbd_get_export_description (nbd_of (handle));

  return desc ? nbdkit_strdup_intern (desc) : NULL;
}

static int64_t
nbdplug_get_size (void *handle)
{
  int64_t size = nbd_get_size (nbd_of (handle));

  if (size == -1)
    nbdkit_error ("nbd_get_size: %s", nbd_get_error ());
  return size;
}

/* Pass the server's constraints on, adjusted where nbdkit is stricter
 * than the server was (nbd-protocol.md "Block size constraints").
 */
static int
nbdplug_block_size (void *handle,
                    uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
  struct nbd_handle *nbd = nbd_of (handle);
  int64_t mi = nbd_get_block_size (nbd, LIBNBD_SIZE_MINIMUM);
  int64_t pr = nbd_get_block_size (nbd, LIBNBD_SIZE_PREFERRED);
  int64_t ma = nbd_get_block_size (nbd, LIBNBD_SIZE_MAXIMUM);

  *minimum = *preferred = *maximum = 0;
  if (mi == -1 || pr == -1 || ma == -1) {
    nbdkit_error ("nbd_get_block_size: %s", nbd_get_error ());
    return -1;
  }
  if (mi == 0 && pr == 0 && ma == 0)
    return 0;                   /* the server gave no constraints */

  if (mi == 0)
    mi = 1;
  if (!is_power_of_2 (mi) || mi > 65536 ||
      (pr != 0 && !is_power_of_2 (pr))) {
    nbdkit_debug ("ignoring invalid block sizes from the NBD server: "
                  "minimum=%" PRIi64 " preferred=%" PRIi64
                  " maximum=%" PRIi64, mi, pr, ma);
    return 0;
  }
  pr = MIN (MAX (pr, MAX (mi, 512)), 32 * 1024 * 1024);
  if (ma == 0 || ma > UINT32_MAX)
    ma = UINT32_MAX;
  else if (ma < pr) {
    nbdkit_debug ("NBD server maximum block size %" PRIi64 " is below "
                  "the preferred size %" PRIi64 "; ignoring it", ma, pr);
    ma = UINT32_MAX;
  }
  else
    ma = ROUND_DOWN (ma, mi);
  *minimum = mi;
  *preferred = pr;
  *maximum = ma;
  return 0;
}

/* libnbd's tri-state answers: 1, 0, or -1 with an error. */
static int
answer (int r, const char *what)
{
  if (r == -1)
    nbdkit_error ("%s: %s", what, nbd_get_error ());
  return r;
}

static int
nbdplug_can_write (void *handle)
{
  int r = answer (nbd_is_read_only (nbd_of (handle)), "nbd_is_read_only");

  return r == -1 ? -1 : !r;
}

static int
nbdplug_can_flush (void *handle)
{
  return answer (nbd_can_flush (nbd_of (handle)), "nbd_can_flush");
}

static int
nbdplug_is_rotational (void *handle)
{
  return answer (nbd_is_rotational (nbd_of (handle)), "nbd_is_rotational");
}

static int
nbdplug_can_trim (void *handle)
{
  return answer (nbd_can_trim (nbd_of (handle)), "nbd_can_trim");
}

static int
nbdplug_can_zero (void *handle)
{
  return answer (nbd_can_zero (nbd_of (handle)), "nbd_can_zero");
}

static int
nbdplug_can_fast_zero (void *handle)
{
  return answer (nbd_can_fast_zero (nbd_of (handle)), "nbd_can_fast_zero");
}

static int
nbdplug_can_extents (void *handle)
{
  return answer (nbd_can_meta_context (nbd_of (handle),
                                       LIBNBD_CONTEXT_BASE_ALLOCATION),
                 "nbd_can_meta_context");
}

static int
nbdplug_can_fua (void *handle)
{
  int r = answer (nbd_can_fua (nbd_of (handle)), "nbd_can_fua");

  return r == -1 ? -1 : r ? NBDKIT_FUA_NATIVE : NBDKIT_FUA_NONE;
}

static int
nbdplug_can_multi_conn (void *handle)
{
  return answer (nbd_can_multi_conn (nbd_of (handle)), "nbd_can_multi_conn");
}

static int
nbdplug_can_cache (void *handle)
{
  int r = answer (nbd_can_cache (nbd_of (handle)), "nbd_can_cache");

  return r == -1 ? -1 : r ? NBDKIT_CACHE_NATIVE : NBDKIT_CACHE_NONE;
}

/* Data operations: queued for the connection's owner thread, which
 * sends them; the client thread waits for the reply.
 */

static int
nbdplug_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
               uint32_t flags)
{
  struct request r = {
    .op = REQUEST_PREAD, .buf = buf, .count = count, .offset = offset,
  };

  return upstream_request (handle, &r, "pread");
}

static int
nbdplug_pwrite (void *handle, const void *buf, uint32_t count,
                uint64_t offset, uint32_t flags)
{
  struct request r = {
    .op = REQUEST_PWRITE, .buf = (void *) buf, .count = count,
    .offset = offset,
    .flags = flags & NBDKIT_FLAG_FUA ? LIBNBD_CMD_FLAG_FUA : 0,
  };

  return upstream_request (handle, &r, "pwrite");
}

static int
nbdplug_flush (void *handle, uint32_t flags)
{
  struct request r = { .op = REQUEST_FLUSH };

  return upstream_request (handle, &r, "flush");
}

static int
nbdplug_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct request r = {
    .op = REQUEST_TRIM, .count = count, .offset = offset,
    .flags = flags & NBDKIT_FLAG_FUA ? LIBNBD_CMD_FLAG_FUA : 0,
  };

  return upstream_request (handle, &r, "trim");
}

static int
nbdplug_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct request r = { .op = REQUEST_ZERO, .count = count, .offset = offset };

  if (!(flags & NBDKIT_FLAG_MAY_TRIM))
    r.flags |= LIBNBD_CMD_FLAG_NO_HOLE;
  if (flags & NBDKIT_FLAG_FUA)
    r.flags |= LIBNBD_CMD_FLAG_FUA;
  if (flags & NBDKIT_FLAG_FAST_ZERO)
    r.flags |= LIBNBD_CMD_FLAG_FAST_ZERO;
  return upstream_request (handle, &r, "zero");
}

static int
nbdplug_extents (void *handle, uint32_t count, uint64_t offset,
                 uint32_t flags, struct nbdkit_extents *extents)
{
  struct request r = {
    .op = REQUEST_EXTENTS, .count = count, .offset = offset,
    .flags = flags & NBDKIT_FLAG_REQ_ONE ? LIBNBD_CMD_FLAG_REQ_ONE : 0,
    .extents = extents,
  };

  return upstream_request (handle, &r, "extents");
}

static int
nbdplug_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  struct request r = { .op = REQUEST_CACHE, .count = count, .offset = offset };

  return upstream_request (handle, &r, "cache");
}

static struct nbdkit_plugin plugin = {
  .name               = "nbd",
  .longname           = "nbdkit nbd plugin",
  .version            = PACKAGE_VERSION,
  .description        = "Forward to another NBD server",
  .unload             = nbdplug_unload,
  .config             = nbdplug_config,
  .config_complete    = nbdplug_config_complete,
  .config_help        = nbdplug_config_help,
  .magic_config_key   = "uri",
  .dump_plugin        = nbdplug_dump_plugin,
  .after_fork         = nbdplug_after_fork,
  .cleanup            = nbdplug_cleanup,
  .list_exports       = nbdplug_list_exports,
  .default_export     = nbdplug_default_export,
  .open               = nbdplug_open,
  .close              = nbdplug_close,
  .export_description = nbdplug_export_description,
  .get_size           = nbdplug_get_size,
  .block_size         = nbdplug_block_size,
  .can_write          = nbdplug_can_write,
  .can_flush          = nbdplug_can_flush,
  .is_rotational      = nbdplug_is_rotational,
  .can_trim           = nbdplug_can_trim,
  .can_zero           = nbdplug_can_zero,
  .can_fast_zero      = nbdplug_can_fast_zero,
  .can_extents        = nbdplug_can_extents,
  .can_fua            = nbdplug_can_fua,
  .can_multi_conn     = nbdplug_can_multi_conn,
  .can_cache          = nbdplug_can_cache,
  .pread              = nbdplug_pread,
  .pwrite             = nbdplug_pwrite,
  .flush              = nbdplug_flush,
  .trim               = nbdplug_trim,
  .zero               = nbdplug_zero,
  .extents            = nbdplug_extents,
  .cache              = nbdplug_cache,
};

NBDKIT_REGISTER_PLUGIN (plugin)
