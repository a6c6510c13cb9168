/* SPDX-License-Identifier: BSD-3-Clause
 * The python plugin's data callbacks.  With API_VERSION 2 they take
 * flags and pread fills a writable memoryview of the request buffer;
 * with API_VERSION 1 (no API_VERSION in the script) they take no flags
 * and pread returns the data.
 */

#include <config.h>

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "internal.h"

/* A memoryview of the request buffer must not outlive the request:
 * once released, a copy the script kept raises instead of touching
 * freed memory.
 */
static void
release_view (PyObject *view)
{
  Py_XDECREF (PyObject_CallMethod (view, "release", NULL));
  PyErr_Clear ();
}

/* Copy a bytes-like result of exactly COUNT bytes into BUF. */
static int
copy_result (PyObject *r, void *buf, uint32_t count)
{
  Py_buffer data;
  int ret = 0;

  if (PyObject_GetBuffer (r, &data, PyBUF_SIMPLE) == -1) {
    PyErr_Clear ();
    nbdkit_error ("%s: pread returned %s, expected a bytes-like object",
                  script, Py_TYPE (r)->tp_name);
    return -1;
  }
  if (data.len != count) {
    nbdkit_error ("%s: pread returned %zd bytes, expected %" PRIu32,
                  script, data.len, count);
    ret = -1;
  }
  else if (data.buf != buf)
    memmove (buf, data.buf, count);
  PyBuffer_Release (&data);
  return ret;
}

int
py_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
          uint32_t flags)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *view = NULL, *r = NULL;
  int ret = 0;

  if (py_api_version == 1) {
    r = py_call_handle ("pread", handle, "(IK)", count,
                        (unsigned long long) offset);
    return r ? copy_result (r, buf, count) : -1;
  }
  view = PyMemoryView_FromMemory (buf, count, PyBUF_WRITE);
  if (view == NULL)
    return py_report_exception ("pread");
  r = py_call_handle ("pread", handle, "(OKI)", view,
                      (unsigned long long) offset, flags);
  /* The script fills buf; returning the data instead also works. */
  if (r && r != Py_None && PyObject_CheckBuffer (r))
    ret = copy_result (r, buf, count);
  release_view (view);
  return r ? ret : -1;
}

int
py_pwrite (void *handle, const void *buf, uint32_t count, uint64_t offset,
           uint32_t flags)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *view = NULL, *r = NULL;

  if (!py_defined ("pwrite")) {
    nbdkit_error ("%s: the script does not define pwrite()", script);
    nbdkit_set_error (EROFS);
    return -1;
  }
  view = PyMemoryView_FromMemory ((char *) buf, count, PyBUF_READ);
  if (view == NULL)
    return py_report_exception ("pwrite");
  if (py_api_version == 1)
    r = py_call_handle ("pwrite", handle, "(OK)", view,
                        (unsigned long long) offset);
  else
    r = py_call_handle ("pwrite", handle, "(OKI)", view,
                        (unsigned long long) offset, flags);
  release_view (view);
  return r ? 0 : -1;
}

int
py_flush (void *handle, uint32_t flags)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;

  if (py_api_version == 1)
    r = py_call_handle ("flush", handle, "()");
  else
    r = py_call_handle ("flush", handle, "(I)", flags);
  return r ? 0 : -1;
}

int
py_trim (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;

  if (py_api_version == 1)
    r = py_call_handle ("trim", handle, "(IK)", count,
                        (unsigned long long) offset);
  else
    r = py_call_handle ("trim", handle, "(IKI)", count,
                        (unsigned long long) offset, flags);
  return r ? 0 : -1;
}

/* Failing with EOPNOTSUPP (no zero(), or the script's own choice) has
 * nbdkit write zeroes instead, unless the client asked for a fast zero.
 */
int
py_zero (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;

  py_last_error = 0;
  if (!py_defined ("zero") ||
      (py_api_version == 1 && (flags & NBDKIT_FLAG_FAST_ZERO))) {
    nbdkit_set_error (EOPNOTSUPP);
    return -1;
  }
  if (py_api_version == 1)
    r = py_call_handle ("zero", handle, "(IKN)", count,
                        (unsigned long long) offset,
                        PyBool_FromLong (flags & NBDKIT_FLAG_MAY_TRIM));
  else
    r = py_call_handle ("zero", handle, "(IKI)", count,
                        (unsigned long long) offset, flags);
  return r ? 0 : -1;
}

int
py_cache (void *handle, uint32_t count, uint64_t offset, uint32_t flags)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;

  r = py_call_handle ("cache", handle, "(IKI)", count,
                      (unsigned long long) offset, flags);
  return r ? 0 : -1;
}

/* One (offset, length, type) tuple of extents' result. */
static int
add_one_extent (struct nbdkit_extents *extents, PyObject *item)
{
  uint64_t offset, length, type;

  if (!PyTuple_Check (item) || PyTuple_GET_SIZE (item) != 3) {
    nbdkit_error ("%s: extents: each item must be an (offset, length, type) "
                  "tuple, not %s", script, Py_TYPE (item)->tp_name);
    return -1;
  }
  if (py_to_uint64 ("extents", "offset", PyTuple_GET_ITEM (item, 0),
                    &offset) == -1 ||
      py_to_uint64 ("extents", "length", PyTuple_GET_ITEM (item, 1),
                    &length) == -1 ||
      py_to_uint64 ("extents", "type", PyTuple_GET_ITEM (item, 2),
                    &type) == -1)
    return -1;
  if (type > UINT32_MAX) {
    nbdkit_error ("%s: extents: type %" PRIu64 " is out of range",
                  script, type);
    return -1;
  }
  return nbdkit_add_extent (extents, offset, length, type);
}

int
py_extents (void *handle, uint32_t count, uint64_t offset, uint32_t flags,
            struct nbdkit_extents *extents)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL, *iter = NULL;
  PyObject *item;

  r = py_call_handle ("extents", handle, "(IKI)", count,
                      (unsigned long long) offset, flags);
  if (r == NULL)
    return -1;
  iter = PyObject_GetIter (r);
  if (iter == NULL) {
    PyErr_Clear ();
    nbdkit_error ("%s: extents returned %s, expected an iterable of "
                  "(offset, length, type) tuples",
                  script, Py_TYPE (r)->tp_name);
    return -1;
  }
  while ((item = PyIter_Next (iter)) != NULL) {
    int ret = add_one_extent (extents, item);
    Py_DECREF (item);
    if (ret == -1)
      return -1;
  }
  if (PyErr_Occurred ())
    return py_report_exception ("extents");
  return 0;
}
