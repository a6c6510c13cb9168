/* SPDX-License-Identifier: BSD-3-Clause
 * Calling the script's functions from C: looking them up in __main__,
 * building the arguments, and turning an exception or a return value
 * of the wrong type into an nbdkit error that names the callback.
 * Every function here expects the caller to hold the GIL.
 */

#include <config.h>

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "internal.h"

/* The script's function NAME as a new reference, or NULL (without an
 * exception set) when the script has no callable of that name.
 */
static PyObject *
lookup (const char *name)
{
  PyObject *fn;

  if (py_main_module == NULL)
    return NULL;
  fn = PyObject_GetAttrString (py_main_module, name);
  if (fn == NULL) {
    PyErr_Clear ();
    return NULL;
  }
  if (!PyCallable_Check (fn)) {
    Py_DECREF (fn);
    return NULL;
  }
  return fn;
}

bool
py_defined (const char *name)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *fn = lookup (name);

  return fn != NULL;
}

/* Call NAME with ARGS (a tuple, stolen).  NULL after an error logged. */
static PyObject *
call_with_tuple (const char *name, PyObject *args)
{
  CLEANUP_PY_DECREF PyObject *fn = lookup (name);
  PyObject *r;

  if (args == NULL) {
    py_report_exception (name);
    return NULL;
  }
  if (fn == NULL) {
    Py_DECREF (args);
    nbdkit_error ("%s: the script does not define %s()", script, name);
    return NULL;
  }
  r = PyObject_CallObject (fn, args);
  Py_DECREF (args);
  if (r == NULL)
    py_report_exception (name);
  return r;
}

/* Call the script's NAME with arguments built by Py_BuildValue from
 * FORMAT, which must be a tuple format such as "(iK)" or "()".
 * Returns the result (a new reference) or NULL after logging an error.
 */
PyObject *
py_call (const char *name, const char *format, ...)
{
  va_list ap;
  PyObject *args;

  va_start (ap, format);
  args = Py_VaBuildValue (format, ap);
  va_end (ap);
  return call_with_tuple (name, args);
}

/* As py_call, with the connection's handle as the first argument. */
PyObject *
py_call_handle (const char *name, void *handle, const char *format, ...)
{
  CLEANUP_PY_DECREF PyObject *rest = NULL;
  PyObject *args;
  Py_ssize_t i, n;
  va_list ap;

  va_start (ap, format);
  rest = Py_VaBuildValue (format, ap);
  va_end (ap);
  if (rest == NULL)
    return call_with_tuple (name, NULL);
  n = PyTuple_GET_SIZE (rest);
  args = PyTuple_New (n + 1);
  if (args == NULL)
    return call_with_tuple (name, NULL);
  Py_INCREF ((PyObject *) handle);
  PyTuple_SET_ITEM (args, 0, (PyObject *) handle);
  for (i = 0; i < n; i++) {
    PyObject *item = PyTuple_GET_ITEM (rest, i);
    Py_INCREF (item);
    PyTuple_SET_ITEM (args, i + 1, item);
  }
  return call_with_tuple (name, args);
}

/* The pending exception as text (the traceback as Python prints it),
 * clearing it.  Never NULL; the caller frees it.
 */
char *
py_format_exception (void)
{
  PyObject *type, *value, *tb;
  CLEANUP_PY_DECREF PyObject *module = NULL, *lines = NULL, *empty = NULL;
  CLEANUP_PY_DECREF PyObject *joined = NULL;
  const char *text = NULL;
  char *ret;
  size_t len;

#if PY_VERSION_HEX >= 0x030C0000
  /* PyErr_Fetch is deprecated from Python 3.12. */
  value = PyErr_GetRaisedException ();
  if (value == NULL)
    return strdup ("unknown error");
  type = (PyObject *) Py_TYPE (value);
  Py_INCREF (type);
  tb = PyException_GetTraceback (value);
#else
  PyErr_Fetch (&type, &value, &tb);
  if (type == NULL)
    return strdup ("unknown error");
  PyErr_NormalizeException (&type, &value, &tb);
#endif

  module = PyImport_ImportModule ("traceback");
  if (module)
    lines = PyObject_CallMethod (module, "format_exception", "OOO",
                                 type, value ? value : Py_None,
                                 tb ? tb : Py_None);
  if (lines && (empty = PyUnicode_FromString ("")) != NULL)
    joined = PyUnicode_Join (empty, lines);
  if (joined == NULL) {
    /* The traceback module failed: at least the exception's text. */
    PyErr_Clear ();
    joined = PyObject_Str (value ? value : type);
  }
  if (joined)
    text = PyUnicode_AsUTF8 (joined);
  if (text == NULL) {
    PyErr_Clear ();
    text = "unprintable exception";
  }
  ret = strdup (text);
  if (ret) {
    len = strlen (ret);
    while (len > 0 && ret[len - 1] == '\n')
      ret[--len] = '\0';
  }
  Py_XDECREF (type);
  Py_XDECREF (value);
  Py_XDECREF (tb);
  PyErr_Clear ();
  return ret;
}

/* Log the pending exception as the failure of CALLBACK.  The error the
 * client sees is the one the script gave to nbdkit.set_error, else EIO.
 */
int
py_report_exception (const char *callback)
{
  CLEANUP_FREE char *text = NULL;

  /* zero raising after set_error(EOPNOTSUPP) is a request, not a
   * failure (nbdkit-python-plugin(3)).
   */
  if (strcmp (callback, "zero") == 0 &&
      (py_last_error == EOPNOTSUPP || py_last_error == ENOTSUP)) {
    PyErr_Clear ();
    nbdkit_debug ("python: zero: falling back to writing zeroes");
    return -1;
  }
  text = py_format_exception ();

  nbdkit_error ("%s: %s: error: %s", script, callback,
                text ? text : "out of memory");
  return -1;
}

int
py_to_bool (const char *callback, PyObject *obj)
{
  int r = PyObject_IsTrue (obj);

  if (r == -1)
    return py_report_exception (callback);
  return r;
}

int
py_to_int64 (const char *callback, PyObject *obj, int64_t *r)
{
  long long v;

  if (!PyLong_Check (obj)) {
    nbdkit_error ("%s: %s returned %s, expected an int",
                  script, callback, Py_TYPE (obj)->tp_name);
    return -1;
  }
  v = PyLong_AsLongLong (obj);
  if (v == -1 && PyErr_Occurred ())
    return py_report_exception (callback);
  *r = v;
  return 0;
}

/* WHAT names the value within CALLBACK's result, e.g. "offset". */
int
py_to_uint64 (const char *callback, const char *what,
              PyObject *obj, uint64_t *r)
{
  unsigned long long v;

  if (!PyLong_Check (obj)) {
    nbdkit_error ("%s: %s returned %s as the %s, expected an int",
                  script, callback, Py_TYPE (obj)->tp_name, what);
    return -1;
  }
  v = PyLong_AsUnsignedLongLong (obj);
  if (v == (unsigned long long) -1 && PyErr_Occurred ()) {
    PyErr_Clear ();
    nbdkit_error ("%s: %s returned an out of range %s",
                  script, callback, what);
    return -1;
  }
  *r = v;
  return 0;
}

/* A str result as a string that lives until the connection ends. */
const char *
py_to_interned_string (const char *callback, PyObject *obj)
{
  const char *s;

  if (!PyUnicode_Check (obj)) {
    nbdkit_error ("%s: %s returned %s, expected a str",
                  script, callback, Py_TYPE (obj)->tp_name);
    return NULL;
  }
  s = PyUnicode_AsUTF8 (obj);
  if (s == NULL) {
    py_report_exception (callback);
    return NULL;
  }
  return nbdkit_strdup_intern (s);
}
