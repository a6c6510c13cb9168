/* SPDX-License-Identifier: BSD-3-Clause
 * The plugin API: the callback table a plugin fills in and registers with
 * NBDKIT_REGISTER_PLUGIN.  See nbdkit-plugin(3).
 */

#ifndef NBDKIT_PLUGIN_H
#define NBDKIT_PLUGIN_H

/* Plugins choose the API version before including this header.  Version 1
 * is the original one whose data callbacks take no flags; version 2 is
 * current.
 */
#ifndef NBDKIT_API_VERSION
#define NBDKIT_API_VERSION 1
#endif

#if NBDKIT_API_VERSION != 1 && NBDKIT_API_VERSION != 2
#error "NBDKIT_API_VERSION must be 1 or 2"
#endif

#include <nbdkit-common.h>

/* The server reads the first three fields before anything else, so they
 * stay at the start of the struct in every version.
 */
struct nbdkit_plugin {
  uint64_t _struct_size;        /* sizeof (struct nbdkit_plugin) */
  int _api_version;             /* NBDKIT_API_VERSION */
  int _thread_model;            /* THREAD_MODEL */

  const char *name;             /* short name, required */
  const char *longname;
  const char *version;
  const char *description;

  void (*load) (void);
  void (*unload) (void);

  int (*config) (const char *key, const char *value);
  int (*config_complete) (void);
  const char *config_help;
  const char *magic_config_key;
  int (*thread_model) (void);
  int (*get_ready) (void);
  int (*after_fork) (void);
  void (*cleanup) (void);
  void (*dump_plugin) (void);

  int (*preconnect) (int readonly);
  int (*list_exports) (int readonly, int is_tls,
                       struct nbdkit_exports *exports);
  const char *(*default_export) (int readonly, int is_tls);
  void *(*open) (int readonly);
  void (*close) (void *handle);

  const char *(*export_description) (void *handle);
  int64_t (*get_size) (void *handle);
  int (*block_size) (void *handle,
                     uint32_t *minimum, uint32_t *preferred,
                     uint32_t *maximum);
  int (*can_write) (void *handle);
  int (*can_flush) (void *handle);
  int (*is_rotational) (void *handle);
  int (*can_trim) (void *handle);
  int (*can_zero) (void *handle);
  int (*can_fast_zero) (void *handle);
  int (*can_extents) (void *handle);
  int (*can_fua) (void *handle);
  int (*can_multi_conn) (void *handle);
  int (*can_cache) (void *handle);

  /* The data callbacks.  Their signatures depend on the API version; the
   * server calls them according to _api_version.
   */
#if NBDKIT_API_VERSION == 1
  int (*pread) (void *handle, void *buf, uint32_t count, uint64_t offset);
  int (*pwrite) (void *handle, const void *buf,
                 uint32_t count, uint64_t offset);
  int (*flush) (void *handle);
  int (*trim) (void *handle, uint32_t count, uint64_t offset);
  int (*zero) (void *handle, uint32_t count, uint64_t offset, int may_trim);
#else
  int (*pread) (void *handle, void *buf, uint32_t count, uint64_t offset,
                uint32_t flags);
  int (*pwrite) (void *handle, const void *buf,
                 uint32_t count, uint64_t offset, uint32_t flags);
  int (*flush) (void *handle, uint32_t flags);
  int (*trim) (void *handle, uint32_t count, uint64_t offset, uint32_t flags);
  int (*zero) (void *handle, uint32_t count, uint64_t offset, uint32_t flags);
#endif
  int (*extents) (void *handle, uint32_t count, uint64_t offset,
                  uint32_t flags, struct nbdkit_extents *extents);
  int (*cache) (void *handle, uint32_t count, uint64_t offset,
                uint32_t flags);

  /* When true, errno after a failed callback is the error to report;
   * otherwise the plugin calls nbdkit_set_error (or EIO is used).
   */
  int errno_is_preserved;
};

#define NBDKIT_REGISTER_PLUGIN(plugin)                                  \
  NBDKIT_CXX_LANG_C NBDKIT_DLL_PUBLIC struct nbdkit_plugin *            \
  plugin_init (void);                                                   \
  NBDKIT_CXX_LANG_C NBDKIT_DLL_PUBLIC struct nbdkit_plugin *            \
  plugin_init (void)                                                    \
  {                                                                     \
    (plugin)._struct_size = sizeof (plugin);                            \
    (plugin)._api_version = NBDKIT_API_VERSION;                         \
    (plugin)._thread_model = THREAD_MODEL;                              \
    return &(plugin);                                                   \
  }

#endif /* NBDKIT_PLUGIN_H */
