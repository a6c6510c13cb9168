/* SPDX-License-Identifier: BSD-3-Clause
 * The cc plugin's callbacks once the script is compiled: each calls the
 * compiled plugin's own, and where that plugin left a callback out, does
 * what nbdkit does for a plugin without it, so that the compiled plugin
 * behaves exactly as if nbdkit had loaded it directly.
 */

#include <config.h>

#include <errno.h>
#include <stddef.h>

#include "cc.h"

/* The cc plugin reports errors through nbdkit_set_error (it does not
 * preserve errno), so a failed call passes the compiled plugin's errno
 * on if that plugin said errno is its error.
 */
static int
failed (void)
{
  if (sub.errno_is_preserved)
    nbdkit_set_error (errno);
  return -1;
}

/* A data callback that the plugin's own can_* answers claimed exists. */
static int
missing (const char *name)
{
  nbdkit_error ("the compiled plugin has no %s callback", name);
  nbdkit_set_error (EIO);
  return -1;
}

void *
forward_open (int readonly)
{
  return sub.open ? sub.open (readonly) : NBDKIT_HANDLE_NOT_NEEDED;
}

void
forward_close (void *handle)
{
  if (sub.close)
    sub.close (handle);
}

int
forward_get_ready (void)
{
  return sub.get_ready ? sub.get_ready () : 0;
}

int
forward_after_fork (void)
{
  return sub.after_fork ? sub.after_fork () : 0;
}

void
forward_cleanup (void)
{
  if (sub.cleanup)
    sub.cleanup ();
}

int
forward_preconnect (int readonly)
{
  return sub.preconnect ? sub.preconnect (readonly) : 0;
}

int
forward_list_exports (int readonly, int is_tls,
                      struct nbdkit_exports *exports)
{
  if (sub.list_exports == NULL)
    return nbdkit_use_default_export (exports);
  return sub.list_exports (readonly, is_tls, exports);
}

const char *
forward_default_export (int readonly, int is_tls)
{
  return sub.default_export ? sub.default_export (readonly, is_tls) : "";
}

const char *
forward_export_description (void *handle)
{
  return sub.export_description ? sub.export_description (handle) : NULL;
}

int64_t
forward_get_size (void *handle)
{
  return sub.get_size (handle);
}

int
forward_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                    uint32_t *maximum)
{
  if (sub.block_size)
    return sub.block_size (handle, minimum, preferred, maximum);
  *minimum = *preferred = *maximum = 0;
  return 0;
}

/* A can_* callback if there is one, else whether the operation exists. */
static int
can (int (*fn) (void *), void *handle, bool fallback)
{
  return fn ? fn (handle) : fallback;
}

int
forward_can_write (void *handle)
{
  return can (sub.can_write, handle, sub.pwrite != NULL);
}

int
forward_can_flush (void *handle)
{
  return can (sub.can_flush, handle, sub.flush != NULL);
}

int
forward_is_rotational (void *handle)
{
  return can (sub.is_rotational, handle, false);
}

int
forward_can_trim (void *handle)
{
  return can (sub.can_trim, handle, sub.trim != NULL);
}

/* False makes nbdkit emulate zeroing with writes, as for a plugin
 * without a zero callback.
 */
int
forward_can_zero (void *handle)
{
  if (sub.zero == NULL)
    return 0;
  return can (sub.can_zero, handle, true);
}

/* Without its own answer: fast zero is possible exactly when zeroing is
 * emulated (the request then fails at once, which is fast).
 */
int
forward_can_fast_zero (void *handle)
{
  int r;

  if (sub.can_fast_zero)
    return sub.can_fast_zero (handle);
  r = forward_can_zero (handle);
  return r == -1 ? -1 : r == 0;
}

int
forward_can_fua (void *handle)
{
  int r;

  if (sub.can_fua)
    return sub.can_fua (handle);
  r = forward_can_flush (handle);
  if (r == -1)
    return -1;
  return r ? NBDKIT_FUA_EMULATE : NBDKIT_FUA_NONE;
}

int
forward_can_multi_conn (void *handle)
{
  return can (sub.can_multi_conn, handle, false);
}

int
forward_can_extents (void *handle)
{
  return can (sub.can_extents, handle, sub.extents != NULL);
}

int
forward_can_cache (void *handle)
{
  int r;

  if (sub.can_cache == NULL)
    return sub.cache ? NBDKIT_CACHE_NATIVE : NBDKIT_CACHE_NONE;
  r = sub.can_cache (handle);
  if (r == NBDKIT_CACHE_NATIVE && sub.cache == NULL)
    r = NBDKIT_CACHE_EMULATE;
  return r;
}

int
forward_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
               uint32_t flags)
{
  if (sub.pread (handle, buf, count, offset, flags) == -1)
    return failed ();
  return 0;
}

int
forward_pwrite (void *handle, const void *buf, uint32_t count,
                uint64_t offset, uint32_t flags)
{
  if (sub.pwrite == NULL)
    return missing ("pwrite");
  if (sub.pwrite (handle, buf, count, offset, flags) == -1)
    return failed ();
  return 0;
}

int
forward_flush (void *handle, uint32_t flags)
{
  if (sub.flush == NULL)
    return missing ("flush");
  if (sub.flush (handle, flags) == -1)
    return failed ();
  return 0;
}

int
forward_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  if (sub.trim == NULL)
    return missing ("trim");
  if (sub.trim (handle, count, offset, flags) == -1)
    return failed ();
  return 0;
}

int
forward_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  if (sub.zero == NULL)
    return missing ("zero");
  if (sub.zero (handle, count, offset, flags) == -1)
    return failed ();
  return 0;
}

int
forward_extents (void *handle, uint32_t count, uint64_t offset,
                 uint32_t flags, struct nbdkit_extents *extents)
{
  if (sub.extents == NULL)
    return missing ("extents");
  if (sub.extents (handle, count, offset, flags, extents) == -1)
    return failed ();
  return 0;
}

int
forward_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  if (sub.cache == NULL)
    return missing ("cache");
  if (sub.cache (handle, count, offset, flags) == -1)
    return failed ();
  return 0;
}
