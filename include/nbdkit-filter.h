/* SPDX-License-Identifier: BSD-3-Clause
 * The filter API: a filter sits between the client and the plugin, sees
 * every call and forwards it to the next layer.  See nbdkit-filter(3).
 * Filters must be built against the same version of these headers as the
 * server that loads them.
 */

#ifndef NBDKIT_FILTER_H
#define NBDKIT_FILTER_H

#include <nbdkit-common.h>

#ifndef NBDKIT_API_VERSION
#define NBDKIT_API_VERSION 2
#endif

/* The server refuses a filter built for another version of this API. */
#define NBDKIT_FILTER_API_VERSION 6

typedef struct backend nbdkit_backend;
typedef struct context nbdkit_context;
typedef struct nbdkit_next_ops nbdkit_next;

/* Calls into the next layer during configuration and connection set-up. */
typedef int nbdkit_next_config (nbdkit_backend *nxdata,
                                const char *key, const char *value);
typedef int nbdkit_next_config_complete (nbdkit_backend *nxdata);
typedef int nbdkit_next_get_ready (nbdkit_backend *nxdata);
typedef int nbdkit_next_after_fork (nbdkit_backend *nxdata);
typedef int nbdkit_next_preconnect (nbdkit_backend *nxdata, int readonly);
typedef int nbdkit_next_list_exports (nbdkit_backend *nxdata, int readonly,
                                      struct nbdkit_exports *exports);
typedef const char *nbdkit_next_default_export (nbdkit_backend *nxdata,
                                                int readonly);
typedef int nbdkit_next_open (nbdkit_context *context,
                              int readonly, const char *exportname);

/* The next layer of an open connection.  Call as next->pread (next, ...).
 * Errors come back through *err rather than errno.
 */
struct nbdkit_next_ops {
  int (*prepare) (nbdkit_next *next);
  int (*finalize) (nbdkit_next *next);

  int64_t (*get_size) (nbdkit_next *next);
  const char *(*export_description) (nbdkit_next *next);
  int (*block_size) (nbdkit_next *next, uint32_t *minimum,
                     uint32_t *preferred, uint32_t *maximum);

  int (*can_write) (nbdkit_next *next);
  int (*can_flush) (nbdkit_next *next);
  int (*is_rotational) (nbdkit_next *next);
  int (*can_trim) (nbdkit_next *next);
  int (*can_zero) (nbdkit_next *next);
  int (*can_fast_zero) (nbdkit_next *next);
  int (*can_extents) (nbdkit_next *next);
  int (*can_fua) (nbdkit_next *next);
  int (*can_multi_conn) (nbdkit_next *next);
  int (*can_cache) (nbdkit_next *next);

  int (*pread) (nbdkit_next *next, void *buf, uint32_t count,
                uint64_t offset, uint32_t flags, int *err);
  int (*pwrite) (nbdkit_next *next, const void *buf, uint32_t count,
                 uint64_t offset, uint32_t flags, int *err);
  int (*flush) (nbdkit_next *next, uint32_t flags, int *err);
  int (*trim) (nbdkit_next *next, uint32_t count, uint64_t offset,
               uint32_t flags, int *err);
  int (*zero) (nbdkit_next *next, uint32_t count, uint64_t offset,
               uint32_t flags, int *err);
  int (*extents) (nbdkit_next *next, uint32_t count, uint64_t offset,
                  uint32_t flags, struct nbdkit_extents *extents, int *err);
  int (*cache) (nbdkit_next *next, uint32_t count, uint64_t offset,
                uint32_t flags, int *err);
};

/* The filter API is tied to the exact server version: the server reads
 * these two leading fields (the same two every nbdkit-compatible server
 * reads first) and refuses the filter unless both match its own.
 */
struct nbdkit_filter {
  int _api_version;             /* NBDKIT_FILTER_API_VERSION */
  const char *_version;         /* NBDKIT_VERSION_STRING */

  const char *name;             /* short name, required */
  const char *longname;
  const char *version;
  const char *description;

  void (*load) (void);
  void (*unload) (void);

  int (*config) (nbdkit_next_config *next, nbdkit_backend *nxdata,
                 const char *key, const char *value);
  int (*config_complete) (nbdkit_next_config_complete *next,
                          nbdkit_backend *nxdata);
  const char *config_help;
  int (*thread_model) (void);
  int (*get_ready) (int thread_model);
  int (*after_fork) (nbdkit_backend *backend);
  void (*cleanup) (nbdkit_backend *backend);

  int (*preconnect) (nbdkit_next_preconnect *next, nbdkit_backend *nxdata,
                     int readonly);
  int (*list_exports) (nbdkit_next_list_exports *next, nbdkit_backend *nxdata,
                       int readonly, int is_tls,
                       struct nbdkit_exports *exports);
  const char *(*default_export) (nbdkit_next_default_export *next,
                                 nbdkit_backend *nxdata,
                                 int readonly, int is_tls);
  void *(*open) (nbdkit_next_open *next, nbdkit_context *context,
                 int readonly, const char *exportname, int is_tls);
  void (*close) (void *handle);
  int (*prepare) (nbdkit_next *next, void *handle, int readonly);
  int (*finalize) (nbdkit_next *next, void *handle);

  int64_t (*get_size) (nbdkit_next *next, void *handle);
  const char *(*export_description) (nbdkit_next *next, void *handle);
  int (*block_size) (nbdkit_next *next, void *handle, uint32_t *minimum,
                     uint32_t *preferred, uint32_t *maximum);

  int (*can_write) (nbdkit_next *next, void *handle);
  int (*can_flush) (nbdkit_next *next, void *handle);
  int (*is_rotational) (nbdkit_next *next, void *handle);
  int (*can_trim) (nbdkit_next *next, void *handle);
  int (*can_zero) (nbdkit_next *next, void *handle);
  int (*can_fast_zero) (nbdkit_next *next, void *handle);
  int (*can_extents) (nbdkit_next *next, void *handle);
  int (*can_fua) (nbdkit_next *next, void *handle);
  int (*can_multi_conn) (nbdkit_next *next, void *handle);
  int (*can_cache) (nbdkit_next *next, void *handle);

  int (*pread) (nbdkit_next *next, void *handle, void *buf, uint32_t count,
                uint64_t offset, uint32_t flags, int *err);
  int (*pwrite) (nbdkit_next *next, void *handle, const void *buf,
                 uint32_t count, uint64_t offset, uint32_t flags, int *err);
  int (*flush) (nbdkit_next *next, void *handle, uint32_t flags, int *err);
  int (*trim) (nbdkit_next *next, void *handle, uint32_t count,
               uint64_t offset, uint32_t flags, int *err);
  int (*zero) (nbdkit_next *next, void *handle, uint32_t count,
               uint64_t offset, uint32_t flags, int *err);
  int (*extents) (nbdkit_next *next, void *handle, uint32_t count,
                  uint64_t offset, uint32_t flags,
                  struct nbdkit_extents *extents, int *err);
  int (*cache) (nbdkit_next *next, void *handle, uint32_t count,
                uint64_t offset, uint32_t flags, int *err);
};

/* Managing next contexts by hand (background connections, retries). */
NBDKIT_EXTERN_DECL (nbdkit_backend *, nbdkit_context_get_backend,
                    (nbdkit_context *context));
NBDKIT_EXTERN_DECL (nbdkit_next *, nbdkit_next_context_open,
                    (nbdkit_backend *backend, int readonly,
                     const char *exportname, int shared));
NBDKIT_EXTERN_DECL (void, nbdkit_next_context_close, (nbdkit_next *next));
NBDKIT_EXTERN_DECL (nbdkit_next *, nbdkit_context_set_next,
                    (nbdkit_context *context, nbdkit_next *next));

/* Extents helpers for filters. */
NBDKIT_EXTERN_DECL (struct nbdkit_extents *, nbdkit_extents_full,
                    (nbdkit_next *next, uint32_t count, uint64_t offset,
                     uint32_t flags, int *err));
NBDKIT_EXTERN_DECL (int, nbdkit_extents_aligned,
                    (nbdkit_next *next, uint32_t count, uint64_t offset,
                     uint32_t flags, uint32_t align,
                     struct nbdkit_extents *extents, int *err));

#define NBDKIT_REGISTER_FILTER(filter)                                  \
  NBDKIT_CXX_LANG_C NBDKIT_DLL_PUBLIC struct nbdkit_filter *            \
  filter_init (void);                                                   \
  NBDKIT_CXX_LANG_C NBDKIT_DLL_PUBLIC struct nbdkit_filter *            \
  filter_init (void)                                                    \
  {                                                                     \
    (filter)._api_version = NBDKIT_FILTER_API_VERSION;                  \
    (filter)._version = NBDKIT_VERSION_STRING;                          \
    return &(filter);                                                   \
  }

#endif /* NBDKIT_FILTER_H */
