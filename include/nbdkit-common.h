/* SPDX-License-Identifier: BSD-3-Clause
 * Public API shared by plugins and filters: constants, the nbdkit_*
 * functions the server exports to them, and the opaque list types.
 * Source compatible with nbdkit's documented API; written for this project.
 */

#ifndef NBDKIT_COMMON_H
#define NBDKIT_COMMON_H

#if !defined(NBDKIT_PLUGIN_H) && !defined(NBDKIT_FILTER_H)
#error "include <nbdkit-plugin.h> or <nbdkit-filter.h>, not this file"
#endif

#include <stdarg.h>
#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <sys/socket.h>

#include <nbdkit-version.h>

#ifdef __cplusplus
#define NBDKIT_EXTERN_DECL(ret, fn, args) extern "C" ret fn args
#define NBDKIT_CXX_LANG_C extern "C"
#else
#define NBDKIT_EXTERN_DECL(ret, fn, args) extern ret fn args
#define NBDKIT_CXX_LANG_C
#endif

#if defined(__GNUC__) || defined(__clang__)
#define NBDKIT_ATTRIBUTE_FORMAT_PRINTF(fmtpos, argpos) \
  __attribute__ ((__format__ (__printf__, fmtpos, argpos)))
#define NBDKIT_ATTRIBUTE_NONNULL(...) __attribute__ ((__nonnull__ (__VA_ARGS__)))
#define NBDKIT_DLL_PUBLIC __attribute__ ((__visibility__ ("default")))
#else
#define NBDKIT_ATTRIBUTE_FORMAT_PRINTF(fmtpos, argpos)
#define NBDKIT_ATTRIBUTE_NONNULL(...)
#define NBDKIT_DLL_PUBLIC
#endif

/* Thread models, from most to least restrictive. */
#define NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS     0
#define NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS    1
#define NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS        2
#define NBDKIT_THREAD_MODEL_PARALLEL                  3

/* Flags passed to data callbacks. */
#define NBDKIT_FLAG_MAY_TRIM  (1 << 0) /* zero: may punch a hole */
#define NBDKIT_FLAG_FUA       (1 << 1) /* write: force unit access */
#define NBDKIT_FLAG_REQ_ONE   (1 << 2) /* extents: one extent is enough */
#define NBDKIT_FLAG_FAST_ZERO (1 << 3) /* zero: fail with ENOTSUP if slow */

/* Answers of can_fua. */
#define NBDKIT_FUA_NONE       0
#define NBDKIT_FUA_EMULATE    1
#define NBDKIT_FUA_NATIVE     2

/* Answers of can_cache. */
#define NBDKIT_CACHE_NONE     0
#define NBDKIT_CACHE_EMULATE  1
#define NBDKIT_CACHE_NATIVE   2

/* Answers of can_zero (filters may also see NBDKIT_ZERO_EMULATE). */
#define NBDKIT_ZERO_NONE      0
#define NBDKIT_ZERO_EMULATE   1
#define NBDKIT_ZERO_NATIVE    2

/* Extent types (base:allocation). */
#define NBDKIT_EXTENT_HOLE    (1 << 0) /* not allocated */
#define NBDKIT_EXTENT_ZERO    (1 << 1) /* reads as zeroes */

/* Returned by open when the plugin keeps no per-connection state. */
#define NBDKIT_HANDLE_NOT_NEEDED ((void *) 1)

struct nbdkit_extent {
  uint64_t offset;
  uint64_t length;
  uint32_t type;
};

struct nbdkit_export {
  char *name;
  char *description;
};

struct nbdkit_extents;
struct nbdkit_exports;

/* Messages. */
NBDKIT_EXTERN_DECL (void, nbdkit_error,
                    (const char *msg, ...))
  NBDKIT_ATTRIBUTE_FORMAT_PRINTF (1, 2);
NBDKIT_EXTERN_DECL (void, nbdkit_verror,
                    (const char *msg, va_list args))
  NBDKIT_ATTRIBUTE_FORMAT_PRINTF (1, 0);
NBDKIT_EXTERN_DECL (void, nbdkit_debug,
                    (const char *msg, ...))
  NBDKIT_ATTRIBUTE_FORMAT_PRINTF (1, 2);
NBDKIT_EXTERN_DECL (void, nbdkit_vdebug,
                    (const char *msg, va_list args))
  NBDKIT_ATTRIBUTE_FORMAT_PRINTF (1, 0);
NBDKIT_EXTERN_DECL (void, nbdkit_set_error, (int err));

/* Paths. */
NBDKIT_EXTERN_DECL (char *, nbdkit_absolute_path, (const char *path));
NBDKIT_EXTERN_DECL (char *, nbdkit_realpath, (const char *path));

/* Parsing configuration values. */
NBDKIT_EXTERN_DECL (int64_t, nbdkit_parse_size, (const char *str));
NBDKIT_EXTERN_DECL (int, nbdkit_parse_probability,
                    (const char *what, const char *str, double *r));
NBDKIT_EXTERN_DECL (int, nbdkit_parse_bool, (const char *str));
NBDKIT_EXTERN_DECL (int, nbdkit_parse_int,
                    (const char *what, const char *str, int *r));
NBDKIT_EXTERN_DECL (int, nbdkit_parse_unsigned,
                    (const char *what, const char *str, unsigned *r));
NBDKIT_EXTERN_DECL (int, nbdkit_parse_int8_t,
                    (const char *what, const char *str, int8_t *r));
NBDKIT_EXTERN_DECL (int, nbdkit_parse_uint8_t,
                    (const char *what, const char *str, uint8_t *r));
NBDKIT_EXTERN_DECL (int, nbdkit_parse_int16_t,
                    (const char *what, const char *str, int16_t *r));
NBDKIT_EXTERN_DECL (int, nbdkit_parse_uint16_t,
                    (const char *what, const char *str, uint16_t *r));
NBDKIT_EXTERN_DECL (int, nbdkit_parse_int32_t,
                    (const char *what, const char *str, int32_t *r));
NBDKIT_EXTERN_DECL (int, nbdkit_parse_uint32_t,
                    (const char *what, const char *str, uint32_t *r));
NBDKIT_EXTERN_DECL (int, nbdkit_parse_int64_t,
                    (const char *what, const char *str, int64_t *r));
NBDKIT_EXTERN_DECL (int, nbdkit_parse_uint64_t,
                    (const char *what, const char *str, uint64_t *r));
NBDKIT_EXTERN_DECL (int, nbdkit_read_password,
                    (const char *value, char **password));
NBDKIT_EXTERN_DECL (int, nbdkit_stdio_safe, (void));

/* Interned strings: valid until the end of the current connection, or
 * until the plugin is unloaded when called outside a connection.
 */
NBDKIT_EXTERN_DECL (const char *, nbdkit_strdup_intern, (const char *str));
NBDKIT_EXTERN_DECL (const char *, nbdkit_strndup_intern,
                    (const char *str, size_t n));
NBDKIT_EXTERN_DECL (const char *, nbdkit_printf_intern,
                    (const char *fmt, ...))
  NBDKIT_ATTRIBUTE_FORMAT_PRINTF (1, 2);
NBDKIT_EXTERN_DECL (const char *, nbdkit_vprintf_intern,
                    (const char *fmt, va_list ap))
  NBDKIT_ATTRIBUTE_FORMAT_PRINTF (1, 0);

/* Time and lifetime. */
NBDKIT_EXTERN_DECL (int, nbdkit_nanosleep, (unsigned sec, unsigned nsec));
NBDKIT_EXTERN_DECL (void, nbdkit_shutdown, (void));
NBDKIT_EXTERN_DECL (void, nbdkit_disconnect, (int force));

/* About the current connection. */
NBDKIT_EXTERN_DECL (const char *, nbdkit_export_name, (void));
NBDKIT_EXTERN_DECL (int, nbdkit_is_tls, (void));
NBDKIT_EXTERN_DECL (int, nbdkit_peer_name,
                    (struct sockaddr *addr, socklen_t *addrlen));
NBDKIT_EXTERN_DECL (int64_t, nbdkit_peer_pid, (void));
NBDKIT_EXTERN_DECL (int64_t, nbdkit_peer_uid, (void));
NBDKIT_EXTERN_DECL (int64_t, nbdkit_peer_gid, (void));
/* The TLS identity of the client, as new strings (free them): the
 * subject and issuer DNs of a verified client certificate, and (an
 * extension of this project) the PSK username.  "" when there is none;
 * NULL with an error reported outside a connection.
 */
NBDKIT_EXTERN_DECL (char *, nbdkit_peer_tls_dn, (void));
NBDKIT_EXTERN_DECL (char *, nbdkit_peer_tls_issuer_dn, (void));
NBDKIT_EXTERN_DECL (char *, nbdkit_peer_tls_username, (void));

/* Extents lists. */
NBDKIT_EXTERN_DECL (struct nbdkit_extents *, nbdkit_extents_new,
                    (uint64_t start, uint64_t end));
NBDKIT_EXTERN_DECL (void, nbdkit_extents_free, (struct nbdkit_extents *));
NBDKIT_EXTERN_DECL (size_t, nbdkit_extents_count,
                    (const struct nbdkit_extents *));
NBDKIT_EXTERN_DECL (struct nbdkit_extent, nbdkit_get_extent,
                    (const struct nbdkit_extents *, size_t));
NBDKIT_EXTERN_DECL (int, nbdkit_add_extent,
                    (struct nbdkit_extents *,
                     uint64_t offset, uint64_t length, uint32_t type));

/* Export lists. */
NBDKIT_EXTERN_DECL (struct nbdkit_exports *, nbdkit_exports_new, (void));
NBDKIT_EXTERN_DECL (void, nbdkit_exports_free, (struct nbdkit_exports *));
NBDKIT_EXTERN_DECL (size_t, nbdkit_exports_count,
                    (const struct nbdkit_exports *));
NBDKIT_EXTERN_DECL (struct nbdkit_export, nbdkit_get_export,
                    (const struct nbdkit_exports *, size_t));
NBDKIT_EXTERN_DECL (int, nbdkit_add_export,
                    (struct nbdkit_exports *,
                     const char *name, const char *description));
NBDKIT_EXTERN_DECL (int, nbdkit_use_default_export,
                    (struct nbdkit_exports *));

#endif /* NBDKIT_COMMON_H */
