/* SPDX-License-Identifier: BSD-3-Clause
 * The python plugin's private header: the loaded script, holding the
 * GIL for a scope, calling the script's functions and turning Python
 * exceptions and return values into nbdkit errors and C values.
 */

#ifndef NBDKIT_PYTHON_INTERNAL_H
#define NBDKIT_PYTHON_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

/* The highest API_VERSION a script may ask for. */
#define PYTHON_MAX_API_VERSION 2

/* python.c */
extern const char *script;      /* script=, as given; NULL until loaded */
extern int py_api_version;      /* the script's API_VERSION (1 if absent) */
extern PyObject *py_main_module; /* the script's module, __main__ */

/* module.c */
extern PyObject *create_nbdkit_module (void);
extern _Thread_local int py_last_error; /* this thread's last set_error */

/* helpers.c */
static inline void
py_release_gil (PyGILState_STATE *state)
{
  PyGILState_Release (*state);
}

/* Hold the GIL (creating a thread state for this thread if needed)
 * until the end of the enclosing scope.  Declare it before any
 * CLEANUP_PY_DECREF variable so that those are released first.
 */
#define PY_GIL_FOR_SCOPE                                                \
  __attribute__ ((cleanup (py_release_gil)))                            \
  PyGILState_STATE py_gil_state_ = PyGILState_Ensure ()

static inline void
py_decref_ptr (PyObject **obj)
{
  Py_XDECREF (*obj);
}
#define CLEANUP_PY_DECREF __attribute__ ((cleanup (py_decref_ptr)))

extern bool py_defined (const char *name);
extern PyObject *py_call (const char *name, const char *format, ...);
extern PyObject *py_call_handle (const char *name, void *handle,
                                 const char *format, ...);
extern int py_report_exception (const char *callback);
extern char *py_format_exception (void);
extern int py_to_bool (const char *callback, PyObject *obj);
extern int py_to_int64 (const char *callback, PyObject *obj, int64_t *r);
extern int py_to_uint64 (const char *callback, const char *what,
                         PyObject *obj, uint64_t *r);
extern const char *py_to_interned_string (const char *callback,
                                          PyObject *obj);

/* connection.c: the per-connection callbacks and the can_* answers. */
extern int py_preconnect (int readonly);
extern int py_list_exports (int readonly, int is_tls,
                            struct nbdkit_exports *exports);
extern const char *py_default_export (int readonly, int is_tls);
extern void *py_open (int readonly);
extern void py_close (void *handle);
extern const char *py_export_description (void *handle);
extern int64_t py_get_size (void *handle);
extern int py_block_size (void *handle, uint32_t *minimum,
                          uint32_t *preferred, uint32_t *maximum);
extern int py_can_write (void *handle);
extern int py_can_flush (void *handle);
extern int py_is_rotational (void *handle);
extern int py_can_trim (void *handle);
extern int py_can_zero (void *handle);
extern int py_can_fast_zero (void *handle);
extern int py_can_extents (void *handle);
extern int py_can_fua (void *handle);
extern int py_can_multi_conn (void *handle);
extern int py_can_cache (void *handle);

/* data.c: the data callbacks. */
extern int py_pread (void *handle, void *buf, uint32_t count,
                     uint64_t offset, uint32_t flags);
extern int py_pwrite (void *handle, const void *buf, uint32_t count,
                      uint64_t offset, uint32_t flags);
extern int py_flush (void *handle, uint32_t flags);
extern int py_trim (void *handle, uint32_t count, uint64_t offset,
                    uint32_t flags);
extern int py_zero (void *handle, uint32_t count, uint64_t offset,
                    uint32_t flags);
extern int py_cache (void *handle, uint32_t count, uint64_t offset,
                     uint32_t flags);
extern int py_extents (void *handle, uint32_t count, uint64_t offset,
                       uint32_t flags, struct nbdkit_extents *extents);

#endif /* NBDKIT_PYTHON_INTERNAL_H */
