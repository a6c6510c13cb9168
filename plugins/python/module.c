/* SPDX-License-Identifier: BSD-3-Clause
 * The "nbdkit" module a script imports: the server functions it may
 * call (debug, set_error, export_name, ...) and the constants used in
 * callback arguments and answers (THREAD_MODEL_*, FLAG_*, FUA_*, ...).
 */

#include <config.h>

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "internal.h"

static PyObject *
module_debug (PyObject *self, PyObject *args)
{
  const char *msg;

  if (!PyArg_ParseTuple (args, "s:debug", &msg))
    return NULL;
  nbdkit_debug ("%s", msg);
  Py_RETURN_NONE;
}

/* The value of this thread's last nbdkit.set_error: zero() checks
 * whether the script asked to fall back to writing zeroes.
 */
_Thread_local int py_last_error;

/* The errno the client gets when the callback then raises. */
static PyObject *
module_set_error (PyObject *self, PyObject *args)
{
  int err;

  if (!PyArg_ParseTuple (args, "i:set_error", &err))
    return NULL;
  nbdkit_set_error (err);
  py_last_error = err;
  Py_RETURN_NONE;
}

static PyObject *
module_export_name (PyObject *self, PyObject *args)
{
  const char *name;

  if (!PyArg_ParseTuple (args, ":export_name"))
    return NULL;
  name = nbdkit_export_name ();
  if (name == NULL) {
    PyErr_SetString (PyExc_RuntimeError,
                     "export_name: called outside a connection");
    return NULL;
  }
  /* The client may send any bytes: keep them rather than fail. */
  return PyUnicode_DecodeUTF8 (name, strlen (name), "surrogateescape");
}

static PyObject *
module_is_tls (PyObject *self, PyObject *args)
{
  int r;

  if (!PyArg_ParseTuple (args, ":is_tls"))
    return NULL;
  r = nbdkit_is_tls ();
  if (r == -1) {
    PyErr_SetString (PyExc_RuntimeError, "is_tls: failed");
    return NULL;
  }
  return PyBool_FromLong (r);
}

static PyObject *
module_parse_size (PyObject *self, PyObject *args)
{
  const char *str;
  int64_t size;

  if (!PyArg_ParseTuple (args, "s:parse_size", &str))
    return NULL;
  size = nbdkit_parse_size (str);
  if (size == -1) {
    PyErr_Format (PyExc_ValueError, "parse_size: cannot parse '%s' as a size",
                  str);
    return NULL;
  }
  return PyLong_FromLongLong (size);
}

static PyObject *
module_shutdown (PyObject *self, PyObject *args)
{
  if (!PyArg_ParseTuple (args, ":shutdown"))
    return NULL;
  nbdkit_shutdown ();
  Py_RETURN_NONE;
}

static PyObject *
module_disconnect (PyObject *self, PyObject *args)
{
  int force;

  if (!PyArg_ParseTuple (args, "p:disconnect", &force))
    return NULL;
  nbdkit_disconnect (force);
  Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
  { "debug", module_debug, METH_VARARGS,
    "debug(msg): a debug message, shown with nbdkit -v" },
  { "set_error", module_set_error, METH_VARARGS,
    "set_error(errno): the error the client gets when the callback raises" },
  { "export_name", module_export_name, METH_VARARGS,
    "export_name(): the export name the client asked for" },
  { "is_tls", module_is_tls, METH_VARARGS,
    "is_tls(): whether this connection uses TLS" },
  { "parse_size", module_parse_size, METH_VARARGS,
    "parse_size(str): a size such as '100M' in bytes" },
  { "shutdown", module_shutdown, METH_VARARGS,
    "shutdown(): ask the server to exit" },
  { "disconnect", module_disconnect, METH_VARARGS,
    "disconnect(force): close this connection (force: at once)" },
  { NULL, NULL, 0, NULL }
};

static struct PyModuleDef module_def = {
  PyModuleDef_HEAD_INIT,
  .m_name = "nbdkit",
  .m_doc = "The nbdkit server's functions and constants for plugins",
  .m_size = -1,
  .m_methods = module_methods,
};

static const struct {
  const char *name;
  long value;
} module_constants[] = {
  { "THREAD_MODEL_SERIALIZE_CONNECTIONS",
    NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS },
  { "THREAD_MODEL_SERIALIZE_ALL_REQUESTS",
    NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS },
  { "THREAD_MODEL_SERIALIZE_REQUESTS", NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS },
  { "THREAD_MODEL_PARALLEL", NBDKIT_THREAD_MODEL_PARALLEL },
  { "FLAG_MAY_TRIM", NBDKIT_FLAG_MAY_TRIM },
  { "FLAG_FUA", NBDKIT_FLAG_FUA },
  { "FLAG_REQ_ONE", NBDKIT_FLAG_REQ_ONE },
  { "FLAG_FAST_ZERO", NBDKIT_FLAG_FAST_ZERO },
  { "FUA_NONE", NBDKIT_FUA_NONE },
  { "FUA_EMULATE", NBDKIT_FUA_EMULATE },
  { "FUA_NATIVE", NBDKIT_FUA_NATIVE },
  { "CACHE_NONE", NBDKIT_CACHE_NONE },
  { "CACHE_EMULATE", NBDKIT_CACHE_EMULATE },
  { "CACHE_NATIVE", NBDKIT_CACHE_NATIVE },
  { "EXTENT_HOLE", NBDKIT_EXTENT_HOLE },
  { "EXTENT_ZERO", NBDKIT_EXTENT_ZERO },
};

/* The module's init function, registered with PyImport_AppendInittab
 * before the interpreter starts.
 */
PyObject *
create_nbdkit_module (void)
{
  PyObject *m = PyModule_Create (&module_def);
  size_t i;

  if (m == NULL)
    return NULL;
  for (i = 0; i < sizeof module_constants / sizeof module_constants[0]; i++)
    if (PyModule_AddIntConstant (m, module_constants[i].name,
                                 module_constants[i].value) == -1) {
      Py_DECREF (m);
      return NULL;
    }
  return m;
}
