/* SPDX-License-Identifier: BSD-3-Clause
 * Private to the plugin backend: plugins.c (registration, defaults,
 * can_*) and plugins-data.c (the data operations).
 */

#ifndef NBDKIT_PLUGINS_INTERNAL_H
#define NBDKIT_PLUGINS_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

struct backend_plugin {
  struct backend backend;
  struct nbdkit_plugin plugin;  /* our copy of the plugin's struct */
};

#define PLUGIN(b) (&((struct backend_plugin *) (b))->plugin)

/* Callbacks of API version 1 plugins, which take no flags. */
typedef int (*pread_v1) (void *, void *, uint32_t, uint64_t);
typedef int (*pwrite_v1) (void *, const void *, uint32_t, uint64_t);
typedef int (*flush_v1) (void *);
typedef int (*trim_v1) (void *, uint32_t, uint64_t);
typedef int (*zero_v1) (void *, uint32_t, uint64_t, int);

static inline bool
is_v1 (const struct nbdkit_plugin *p)
{
  return p->_api_version == 1;
}

/* The error for a failed callback (nbdkit-plugin(3) "Error handling"). */
static inline int
plugin_error (const struct nbdkit_plugin *p)
{
  int err = p->errno_is_preserved ? errno : threadlocal_get_error ();
  return err ? err : EIO;
}

/* plugins-data.c */
extern int plugin_pread (struct context *c, void *buf, uint32_t count, uint64_t offset, uint32_t flags, int *err);
extern int plugin_flush (struct context *c, uint32_t flags, int *err);
extern int plugin_pwrite (struct context *c, const void *buf, uint32_t count, uint64_t offset, uint32_t flags, int *err);
extern int plugin_trim (struct context *c, uint32_t count, uint64_t offset, uint32_t flags, int *err);
extern int plugin_zero (struct context *c, uint32_t count, uint64_t offset, uint32_t flags, int *err);
extern int plugin_extents (struct context *c, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents *extents, int *err);
extern int plugin_cache (struct context *c, uint32_t count, uint64_t offset, uint32_t flags, int *err);

#endif /* NBDKIT_PLUGINS_INTERNAL_H */
