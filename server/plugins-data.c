/* SPDX-License-Identifier: BSD-3-Clause
 * The plugin backend's data operations: each calls the plugin (casting
 * back the callbacks of API version 1 plugins, which take no flags),
 * emulates what the plugin cannot do natively and turns its errno or
 * nbdkit_set_error into the request's error.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugins-internal.h"
#include "utils.h"

int
plugin_pread (struct context *c, void *buf, uint32_t count, uint64_t offset,
              uint32_t flags, int *err)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  int r;

  threadlocal_set_error (0);
  if (is_v1 (p))
    r = ((pread_v1) (void (*) (void)) p->pread) (c->handle, buf, count, offset);
  else
    r = p->pread (c->handle, buf, count, offset, flags);
  if (r == -1)
    *err = plugin_error (p);
  return r;
}

int
plugin_flush (struct context *c, uint32_t flags, int *err)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  int r;

  threadlocal_set_error (0);
  if (p->flush == NULL) {
    nbdkit_error ("%s: flush requested but the plugin has no flush",
                  c->b->name);
    *err = EINVAL;
    return -1;
  }
  if (is_v1 (p))
    r = ((flush_v1) (void (*) (void)) p->flush) (c->handle);
  else
    r = p->flush (c->handle, flags);
  if (r == -1)
    *err = plugin_error (p);
  return r;
}

int
plugin_pwrite (struct context *c, const void *buf, uint32_t count,
               uint64_t offset, uint32_t flags, int *err)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  int r;

  threadlocal_set_error (0);
  if (p->pwrite == NULL) {
    nbdkit_error ("%s: write requested but the plugin has no pwrite",
                  c->b->name);
    *err = EROFS;
    return -1;
  }
  if (is_v1 (p))
    r = ((pwrite_v1) (void (*) (void)) p->pwrite) (c->handle, buf, count,
                                                  offset);
  else
    r = p->pwrite (c->handle, buf, count, offset, flags);
  if (r == -1)
    *err = plugin_error (p);
  return r;
}

int
plugin_trim (struct context *c, uint32_t count, uint64_t offset,
             uint32_t flags, int *err)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  int r;

  threadlocal_set_error (0);
  if (p->trim == NULL)
    return 0;                   /* trim is advisory */
  if (is_v1 (p))
    r = ((trim_v1) (void (*) (void)) p->trim) (c->handle, count, offset);
  else
    r = p->trim (c->handle, count, offset, flags);
  if (r == -1)
    *err = plugin_error (p);
  return r;
}

/* The plugin's zero if it has one; a plugin may fail it with ENOTSUP to
 * have zeroes written instead (nbdkit-plugin(3)), unless the client asked
 * for a fast zero.
 */
int
plugin_zero (struct context *c, uint32_t count, uint64_t offset,
             uint32_t flags, int *err)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  int r;

  if (c->can_zero != NBDKIT_ZERO_NATIVE)
    return backend_emulate_zero (c, count, offset, flags, err);

  threadlocal_set_error (0);
  if (is_v1 (p)) {
    if (flags & NBDKIT_FLAG_FAST_ZERO) {
      *err = ENOTSUP;
      return -1;
    }
    r = ((zero_v1) (void (*) (void)) p->zero) (c->handle, count, offset,
                                              !!(flags & NBDKIT_FLAG_MAY_TRIM));
  }
  else
    r = p->zero (c->handle, count, offset, flags);
  if (r == 0)
    return 0;
  *err = plugin_error (p);
  if ((flags & NBDKIT_FLAG_FAST_ZERO) || (*err != ENOTSUP && *err != EOPNOTSUPP))
    return -1;
  return backend_emulate_zero (c, count, offset, flags, err);
}

int
plugin_extents (struct context *c, uint32_t count, uint64_t offset,
                uint32_t flags, struct nbdkit_extents *extents, int *err)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  int r;

  threadlocal_set_error (0);
  r = p->extents (c->handle, count, offset, flags, extents);
  if (r == -1) {
    *err = plugin_error (p);
    return -1;
  }
  if (nbdkit_extents_count (extents) == 0) {
    nbdkit_error ("%s: extents: the plugin did not add any extent for "
                  "offset %" PRIu64, c->b->name, offset);
    *err = EIO;
    return -1;
  }
  return 0;
}

int
plugin_cache (struct context *c, uint32_t count, uint64_t offset,
              uint32_t flags, int *err)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  int r;

  threadlocal_set_error (0);
  r = p->cache (c->handle, count, offset, flags);
  if (r == -1)
    *err = plugin_error (p);
  return r;
}
