/* SPDX-License-Identifier: BSD-3-Clause
 * The cc plugin's private header: the compiled plugin it forwards to
 * (cc.c) and the forwarding callbacks (forward.c).
 */

#ifndef NBDKIT_CC_H
#define NBDKIT_CC_H

#include <stdbool.h>
#include <stdint.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

/* cc.c: the compiled plugin's callbacks (fields it does not set are
 * NULL), valid once sub_loaded is true.
 */
extern struct nbdkit_plugin sub;
extern bool sub_loaded;

/* source.c */
extern int source_prepare (const char *value, char **source);
extern const char *source_tmpdir (void);
extern const char *source_script_dir (void);
extern void source_remove_tmpdir (void);
extern void source_free (void);

/* forward.c */
extern void *forward_open (int readonly);
extern void forward_close (void *handle);
extern int forward_get_ready (void);
extern int forward_after_fork (void);
extern void forward_cleanup (void);
extern int forward_preconnect (int readonly);
extern int forward_list_exports (int readonly, int is_tls,
                                 struct nbdkit_exports *exports);
extern const char *forward_default_export (int readonly, int is_tls);
extern const char *forward_export_description (void *handle);
extern int64_t forward_get_size (void *handle);
extern int forward_block_size (void *handle, uint32_t *minimum,
                               uint32_t *preferred, uint32_t *maximum);
extern int forward_can_write (void *handle);
extern int forward_can_flush (void *handle);
extern int forward_is_rotational (void *handle);
extern int forward_can_trim (void *handle);
extern int forward_can_zero (void *handle);
extern int forward_can_fast_zero (void *handle);
extern int forward_can_fua (void *handle);
extern int forward_can_multi_conn (void *handle);
extern int forward_can_extents (void *handle);
extern int forward_can_cache (void *handle);
extern int forward_pread (void *handle, void *buf, uint32_t count,
                          uint64_t offset, uint32_t flags);
extern int forward_pwrite (void *handle, const void *buf, uint32_t count,
                           uint64_t offset, uint32_t flags);
extern int forward_flush (void *handle, uint32_t flags);
extern int forward_trim (void *handle, uint32_t count, uint64_t offset,
                         uint32_t flags);
extern int forward_zero (void *handle, uint32_t count, uint64_t offset,
                         uint32_t flags);
extern int forward_extents (void *handle, uint32_t count, uint64_t offset,
                            uint32_t flags, struct nbdkit_extents *extents);
extern int forward_cache (void *handle, uint32_t count, uint64_t offset,
                          uint32_t flags);

#endif /* NBDKIT_CC_H */
