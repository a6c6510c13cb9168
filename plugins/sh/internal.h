/* SPDX-License-Identifier: BSD-3-Clause
 * Private header of the sh and eval plugins: running a script method
 * (call.c), its shared temporary directory (tmpdir.c), the plugin
 * callbacks written in terms of methods (methods*.c), and
 * the hooks each plugin defines to say which program answers a method.
 */

#ifndef NBDKIT_SH_INTERNAL_H
#define NBDKIT_SH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vector.h"

DEFINE_VECTOR_TYPE (byte_buffer, char)

/* nbdkit-sh-plugin(3) "Exit codes".  Any other exit status, or death by
 * a signal, is an error like SCRIPT_ERROR.
 */
enum script_status {
  SCRIPT_OK = 0,
  SCRIPT_ERROR = 1,             /* already reported with nbdkit_error */
  SCRIPT_MISSING = 2,           /* the script does not implement it */
  SCRIPT_FALSE = 3,             /* boolean methods: false */
};

/* The most arguments a method is called with, the program included. */
#define SCRIPT_MAX_ARGS 8

/* The most a method other than pread may print on stdout. */
#define SCRIPT_OUTPUT_MAX (64 * 1024 * 1024)

/* The highest exit status with a meaning (printed by --dump-plugin). */
#define SCRIPT_MAX_KNOWN_STATUS 3

/* A connection: the handle open printed (passed to every method as
 * $2), and the can_zero answer (-1 until known) which a missing
 * can_fast_zero is derived from.
 */
struct script_handle {
  char *name;
  int can_zero;
};

/* Hooks defined by each plugin (sh.c, eval.c). */

/* The program answering METHOD, or NULL if nothing does (the method then
 * counts as missing without running anything).  *VIA_SHELL: run it as
 * /bin/sh PROGRAM, not by executing it (eval's fragments, and scripts
 * whose #! line is nbdkit itself).
 */
extern const char *script_for (const char *method, bool *via_shell);
/* True if the plugin knows METHOD is implemented.  eval knows which
 * methods were given; sh cannot tell without running the script.
 */
extern bool script_defines (const char *method);
/* Names the script in error messages (sh: its path), or NULL. */
extern const char *script_label (void);

/* call.c */

/* Run ARGV (ARGV[0] the program, ARGV[1] the method name), or /bin/sh
 * with ARGV if VIA_SHELL, with IN on its standard input.  Standard output is appended to OUT (discarded if OUT
 * is NULL); more than OUT_MAX bytes is an error and the script is
 * killed.  Errors, including a script exiting with status 1, are
 * reported with nbdkit_error and nbdkit_set_error.
 */
extern enum script_status script_call (const char **argv, bool via_shell,
                                       const void *in, size_t in_len,
                                       byte_buffer *out, size_t out_max);
/* Report an error about METHOD, prefixed like the script's own. */
extern void script_error (const char *method, const char *fs, ...)
  __attribute__ ((__format__ (__printf__, 2, 3)));

/* tmpdir.c */

/* $tmpdir: created on first use (during configuration), removed by
 * script_tmpdir_remove or at exit.  NULL if it cannot be created.
 */
extern const char *script_tmpdir (void);
extern void script_tmpdir_remove (void);
extern void script_tmpdir_adopt (void);

/* methods.c: lifecycle, configuration, exports, open, size. */
extern void method_unload (void);
extern void method_dump_plugin (void);
extern int method_config (const char *key, const char *value);
extern int method_config_complete (void);
extern int method_thread_model (void);
extern int method_get_ready (void);
extern int method_after_fork (void);
extern int method_preconnect (int readonly);
extern int method_list_exports (int readonly, int is_tls,
                                struct nbdkit_exports *exports);
extern const char *method_default_export (int readonly, int is_tls);
extern void *method_open (int readonly);
extern void method_close (void *handle);
extern const char *method_export_description (void *handle);
extern int64_t method_get_size (void *handle);
extern int method_block_size (void *handle, uint32_t *minimum,
                              uint32_t *preferred, uint32_t *maximum);

/* methods-can.c: the can_* answers. */
extern int method_can_write (void *handle);
extern int method_can_flush (void *handle);
extern int method_is_rotational (void *handle);
extern int method_can_trim (void *handle);
extern int method_can_zero (void *handle);
extern int method_can_fast_zero (void *handle);
extern int method_can_extents (void *handle);
extern int method_can_fua (void *handle);
extern int method_can_multi_conn (void *handle);
extern int method_can_cache (void *handle);
/* Run the method ARGV[1] with the program script_for chooses (stored
 * in ARGV[0]); see script_call.  SCRIPT_MISSING if there is none.
 */
extern enum script_status method_call (const char **argv,
                                       const void *in, size_t in_len,
                                       byte_buffer *out, size_t out_max);

/* methods-data.c: the data path. */
extern int method_pread (void *handle, void *buf, uint32_t count,
                         uint64_t offset, uint32_t flags);
extern int method_pwrite (void *handle, const void *buf, uint32_t count,
                          uint64_t offset, uint32_t flags);
extern int method_flush (void *handle, uint32_t flags);
extern int method_trim (void *handle, uint32_t count, uint64_t offset,
                        uint32_t flags);
extern int method_zero (void *handle, uint32_t count, uint64_t offset,
                        uint32_t flags);
extern int method_extents (void *handle, uint32_t count, uint64_t offset,
                           uint32_t flags, struct nbdkit_extents *extents);
extern int method_cache (void *handle, uint32_t count, uint64_t offset,
                         uint32_t flags);

/* The callbacks sh and eval share, for their struct nbdkit_plugin. */
#define SCRIPT_PLUGIN_CALLBACKS                                           \
  .dump_plugin        = method_dump_plugin,                               \
  .thread_model       = method_thread_model,                              \
  .get_ready          = method_get_ready,                                 \
  .after_fork         = method_after_fork,                                \
  .preconnect         = method_preconnect,                                \
  .list_exports       = method_list_exports,                              \
  .default_export     = method_default_export,                            \
  .open               = method_open,                                      \
  .close              = method_close,                                     \
  .export_description = method_export_description,                        \
  .get_size           = method_get_size,                                  \
  .block_size         = method_block_size,                                \
  .can_write          = method_can_write,                                 \
  .can_flush          = method_can_flush,                                 \
  .is_rotational      = method_is_rotational,                             \
  .can_trim           = method_can_trim,                                  \
  .can_zero           = method_can_zero,                                  \
  .can_fast_zero      = method_can_fast_zero,                             \
  .can_extents        = method_can_extents,                               \
  .can_fua            = method_can_fua,                                   \
  .can_multi_conn     = method_can_multi_conn,                            \
  .can_cache          = method_can_cache,                                 \
  .pread              = method_pread,                                     \
  .pwrite             = method_pwrite,                                    \
  .flush              = method_flush,                                     \
  .trim               = method_trim,                                      \
  .zero               = method_zero,                                      \
  .extents            = method_extents,                                   \
  .cache              = method_cache

#endif /* NBDKIT_SH_INTERNAL_H */
