/* SPDX-License-Identifier: BSD-3-Clause
 * The python plugin's callbacks about a connection: before it opens
 * (preconnect, list_exports, default_export), open and close, and what
 * the export can do (get_size, block_size, can_*).  A missing can_*
 * function gives the answer a C plugin without it would give.
 */

#include <config.h>

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "internal.h"

int
py_preconnect (int readonly)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;

  if (!py_defined ("preconnect"))
    return 0;
  r = py_call ("preconnect", "(N)", PyBool_FromLong (readonly));
  return r ? 0 : -1;
}

/* One entry of list_exports' result: a name, or (name, description)
 * where the description may be None.
 */
static int
add_one_export (struct nbdkit_exports *exports, PyObject *item)
{
  PyObject *name = item, *desc = Py_None;
  const char *name_s, *desc_s = NULL;

  if (PyTuple_Check (item) && PyTuple_GET_SIZE (item) == 2) {
    name = PyTuple_GET_ITEM (item, 0);
    desc = PyTuple_GET_ITEM (item, 1);
  }
  if (!PyUnicode_Check (name) || (desc != Py_None && !PyUnicode_Check (desc))) {
    nbdkit_error ("%s: list_exports: each item must be a name or a "
                  "(name, description) tuple of str, not %s",
                  script, Py_TYPE (item)->tp_name);
    return -1;
  }
  name_s = PyUnicode_AsUTF8 (name);
  if (name_s && desc != Py_None)
    desc_s = PyUnicode_AsUTF8 (desc);
  if (name_s == NULL || (desc != Py_None && desc_s == NULL))
    return py_report_exception ("list_exports");
  return nbdkit_add_export (exports, name_s, desc_s);
}

int
py_list_exports (int readonly, int is_tls, struct nbdkit_exports *exports)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL, *iter = NULL;
  PyObject *item;

  if (!py_defined ("list_exports"))
    return nbdkit_use_default_export (exports);
  r = py_call ("list_exports", "(NN)",
               PyBool_FromLong (readonly), PyBool_FromLong (is_tls));
  if (r == NULL)
    return -1;
  iter = PyObject_GetIter (r);
  if (iter == NULL) {
    PyErr_Clear ();
    nbdkit_error ("%s: list_exports returned %s, expected an iterable of "
                  "names or (name, description) tuples",
                  script, Py_TYPE (r)->tp_name);
    return -1;
  }
  while ((item = PyIter_Next (iter)) != NULL) {
    int ret = add_one_export (exports, item);
    Py_DECREF (item);
    if (ret == -1)
      return -1;
  }
  if (PyErr_Occurred ())
    return py_report_exception ("list_exports");
  return 0;
}

const char *
py_default_export (int readonly, int is_tls)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;

  if (!py_defined ("default_export"))
    return "";
  r = py_call ("default_export", "(NN)",
               PyBool_FromLong (readonly), PyBool_FromLong (is_tls));
  if (r == NULL)
    return NULL;
  return py_to_interned_string ("default_export", r);
}

/* The handle is whatever open returned (a new reference, dropped in
 * close); None is a valid handle.
 */
void *
py_open (int readonly)
{
  PY_GIL_FOR_SCOPE;

  return py_call ("open", "(N)", PyBool_FromLong (readonly));
}

void
py_close (void *handle)
{
  PY_GIL_FOR_SCOPE;

  if (py_defined ("close"))
    Py_XDECREF (py_call_handle ("close", handle, "()"));
  Py_DECREF ((PyObject *) handle);
}

const char *
py_export_description (void *handle)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;

  if (!py_defined ("export_description"))
    return NULL;
  r = py_call_handle ("export_description", handle, "()");
  if (r == NULL)
    return NULL;
  return py_to_interned_string ("export_description", r);
}

int64_t
py_get_size (void *handle)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;
  int64_t size;

  r = py_call_handle ("get_size", handle, "()");
  if (r == NULL || py_to_int64 ("get_size", r, &size) == -1)
    return -1;
  if (size < 0) {
    nbdkit_error ("%s: get_size returned a negative size %" PRIi64,
                  script, size);
    return -1;
  }
  return size;
}

int
py_block_size (void *handle,
               uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL, *seq = NULL;
  static const char *const what[] = { "minimum", "preferred", "maximum" };
  uint32_t *out[] = { minimum, preferred, maximum };
  uint64_t v;
  int i;

  *minimum = *preferred = *maximum = 0;
  if (!py_defined ("block_size"))
    return 0;
  r = py_call_handle ("block_size", handle, "()");
  if (r == NULL)
    return -1;
  seq = PySequence_Fast (r, "");
  if (seq == NULL || PySequence_Fast_GET_SIZE (seq) != 3) {
    PyErr_Clear ();
    nbdkit_error ("%s: block_size returned %s, expected a tuple "
                  "(minimum, preferred, maximum)",
                  script, Py_TYPE (r)->tp_name);
    return -1;
  }
  for (i = 0; i < 3; i++) {
    if (py_to_uint64 ("block_size", what[i],
                      PySequence_Fast_GET_ITEM (seq, i), &v) == -1)
      return -1;
    if (v > UINT32_MAX) {
      nbdkit_error ("%s: block_size: %s %" PRIu64 " is too large",
                    script, what[i], v);
      return -1;
    }
    *out[i] = v;
  }
  return 0;
}

/* A boolean can_* answer: the script's, or DEFAULT_ANSWER without it. */
static int
can_bool (const char *name, void *handle, int default_answer)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;

  if (!py_defined (name))
    return default_answer;
  r = py_call_handle (name, handle, "()");
  if (r == NULL)
    return -1;
  return py_to_bool (name, r);
}

/* An answer from a set of constants, FIRST..LAST (nbdkit.FUA_*, ...). */
static int
can_enum (const char *name, void *handle, int first, int last,
          const char *constants)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;
  int64_t v;

  r = py_call_handle (name, handle, "()");
  if (r == NULL || py_to_int64 (name, r, &v) == -1)
    return -1;
  if (v < first || v > last) {
    nbdkit_error ("%s: %s returned %" PRIi64 ", which is not one of %s",
                  script, name, v, constants);
    return -1;
  }
  return v;
}

int
py_can_write (void *handle)
{
  return can_bool ("can_write", handle, py_defined ("pwrite"));
}

int
py_can_flush (void *handle)
{
  return can_bool ("can_flush", handle, py_defined ("flush"));
}

int
py_is_rotational (void *handle)
{
  return can_bool ("is_rotational", handle, 0);
}

int
py_can_trim (void *handle)
{
  return can_bool ("can_trim", handle, py_defined ("trim"));
}

/* Without zero() (or when can_zero says no) nbdkit writes zeroes. */
int
py_can_zero (void *handle)
{
  return can_bool ("can_zero", handle, py_defined ("zero"));
}

/* Without zero() a fast zero fails at once, which counts as fast. */
int
py_can_fast_zero (void *handle)
{
  return can_bool ("can_fast_zero", handle, !py_defined ("zero"));
}

int
py_can_extents (void *handle)
{
  return can_bool ("can_extents", handle, py_defined ("extents"));
}

int
py_can_multi_conn (void *handle)
{
  return can_bool ("can_multi_conn", handle, 0);
}

/* Without can_fua, FUA is emulated by flushing when flush works. */
int
py_can_fua (void *handle)
{
  int r;

  if (!py_defined ("can_fua")) {
    r = py_can_flush (handle);
    if (r == -1)
      return -1;
    return r ? NBDKIT_FUA_EMULATE : NBDKIT_FUA_NONE;
  }
  r = can_enum ("can_fua", handle, NBDKIT_FUA_NONE, NBDKIT_FUA_NATIVE,
                "nbdkit.FUA_*");
  /* API_VERSION 1 callbacks have no flags to carry FUA. */
  if (r == NBDKIT_FUA_NATIVE && py_api_version == 1)
    r = NBDKIT_FUA_EMULATE;
  return r;
}

int
py_can_cache (void *handle)
{
  if (!py_defined ("can_cache"))
    return py_defined ("cache") ? NBDKIT_CACHE_NATIVE : NBDKIT_CACHE_NONE;
  return can_enum ("can_cache", handle, NBDKIT_CACHE_NONE,
                   NBDKIT_CACHE_NATIVE, "nbdkit.CACHE_*");
}
