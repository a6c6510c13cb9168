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

/* The callback table.  Its layout is a binary interface: the field order
 * is the one every nbdkit-compatible server reads, so a plugin binary built
 * against any compatible header (ours or upstream nbdkit's) loads here.
 * Fields are only ever appended; _struct_size tells the server how many a
 * plugin knows about, and anything past it reads as "not provided".
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

  void *(*open) (int readonly);
  void (*close) (void *handle);

  int64_t (*get_size) (void *handle);

  int (*can_write) (void *handle);
  int (*can_flush) (void *handle);
  int (*is_rotational) (void *handle);
  int (*can_trim) (void *handle);

  /* The data callbacks of API version 1 (no flags argument).  In
   * version 2 these slots are unused and the callbacks below are used.
   */
#if NBDKIT_API_VERSION == 1
  int (*pread) (void *handle, void *buf, uint32_t count, uint64_t offset);
  int (*pwrite) (void *handle, const void *buf,
                 uint32_t count, uint64_t offset);
  int (*flush) (void *handle);
  int (*trim) (void *handle, uint32_t count, uint64_t offset);
  int (*zero) (void *handle, uint32_t count, uint64_t offset, int may_trim);
#else
  int (*_pread_v1) (void *, void *, uint32_t, uint64_t);
  int (*_pwrite_v1) (void *, const void *, uint32_t, uint64_t);
  int (*_flush_v1) (void *);
  int (*_trim_v1) (void *, uint32_t, uint64_t);
  int (*_zero_v1) (void *, uint32_t, uint64_t, int);
#endif

  /* When true, errno after a failed callback is the error to report;
   * otherwise the plugin calls nbdkit_set_error (or EIO is used).
   */
  int errno_is_preserved;

  void (*dump_plugin) (void);

  int (*can_zero) (void *handle);
  int (*can_fua) (void *handle);

  /* The data callbacks of API version 2 (with flags). */
#if NBDKIT_API_VERSION == 1
  int (*_pread_v2) (void *, void *, uint32_t, uint64_t, uint32_t);
  int (*_pwrite_v2) (void *, const void *, uint32_t, uint64_t, uint32_t);
  int (*_flush_v2) (void *, uint32_t);
  int (*_trim_v2) (void *, uint32_t, uint64_t, uint32_t);
  int (*_zero_v2) (void *, uint32_t, uint64_t, uint32_t);
#else
  int (*pread) (void *handle, void *buf, uint32_t count, uint64_t offset,
                uint32_t flags);
  int (*pwrite) (void *handle, const void *buf,
                 uint32_t count, uint64_t offset, uint32_t flags);
  int (*flush) (void *handle, uint32_t flags);
  int (*trim) (void *handle, uint32_t count, uint64_t offset, uint32_t flags);
  int (*zero) (void *handle, uint32_t count, uint64_t offset, uint32_t flags);
#endif

  const char *magic_config_key;

  int (*can_multi_conn) (void *handle);

  int (*can_extents) (void *handle);
  int (*extents) (void *handle, uint32_t count, uint64_t offset,
                  uint32_t flags, struct nbdkit_extents *extents);
  int (*can_cache) (void *handle);
  int (*cache) (void *handle, uint32_t count, uint64_t offset,
                uint32_t flags);

  int (*thread_model) (void);

  int (*can_fast_zero) (void *handle);

  int (*preconnect) (int readonly);

  int (*get_ready) (void);
  int (*after_fork) (void);

  int (*list_exports) (int readonly, int is_tls,
                       struct nbdkit_exports *exports);
  const char *(*default_export) (int readonly, int is_tls);
  const char *(*export_description) (void *handle);

  void (*cleanup) (void);

  int (*block_size) (void *handle,
                     uint32_t *minimum, uint32_t *preferred,
                     uint32_t *maximum);
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
