/* SPDX-License-Identifier: BSD-3-Clause
 * The python plugin: an embedded Python 3 interpreter runs the script
 * given as script= (the magic key), whose top-level functions are the
 * plugin's callbacks (nbdkit-python-plugin(3)).  This file starts and
 * stops the interpreter, loads the script and runs the callbacks that
 * are not about a connection.
 */

#include <config.h>

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "internal.h"

/* script=: the path as given, set once the script is being loaded. */
const char *script;

/* The script's API_VERSION: 1 (data callbacks without flags) when the
 * script does not set it.
 */
int py_api_version = 1;

/* The script's module (__main__), a strong reference. */
PyObject *py_main_module;

/* The interpreter's main thread state, saved while the GIL is free. */
static PyThreadState *main_thread_state;

/* Start the interpreter with the nbdkit module built in, then let go
 * of the GIL: every callback takes it with PY_GIL_FOR_SCOPE.
 */
static void
python_load (void)
{
  if (PyImport_AppendInittab ("nbdkit", create_nbdkit_module) == -1) {
    nbdkit_error ("python: could not register the nbdkit module");
    return;
  }
#ifdef __SANITIZE_ADDRESS__
  /* Python's own allocator keeps objects in arenas the leak checker
   * does not scan, so everything they point to would look leaked.
   */
  PyPreConfig preconfig;
  PyPreConfig_InitPythonConfig (&preconfig);
  preconfig.allocator = PYMEM_ALLOCATOR_MALLOC;
  preconfig.coerce_c_locale = 0;
  preconfig.coerce_c_locale_warn = 0;
  if (PyStatus_Exception (Py_PreInitialize (&preconfig))) {
    nbdkit_error ("python: could not pre-initialize the interpreter");
    return;
  }
#endif
  /* 0: nbdkit, not Python, handles the signals. */
  Py_InitializeEx (0);
  main_thread_state = PyEval_SaveThread ();
}

/* At exit: what a Python program does when it ends (atexit handlers,
 * flushing sys.stdout and sys.stderr), but the interpreter is not
 * finalized.  Finalizing would wait for threads the script left running
 * and frees memory the process is about to lose anyway.  The GIL stays
 * held, so no other thread runs Python from here on.
 */
static void
python_unload (void)
{
  static const char *const streams[] = { "stdout", "stderr" };
  PyObject *atexit_module;
  size_t i;

  if (main_thread_state == NULL)
    return;
  PyEval_RestoreThread (main_thread_state);
  main_thread_state = NULL;
  if (script) {
    atexit_module = PyImport_ImportModule ("atexit");
    if (atexit_module)
      Py_XDECREF (PyObject_CallMethod (atexit_module, "_run_exitfuncs", NULL));
    Py_XDECREF (atexit_module);
    PyErr_Clear ();
  }
  for (i = 0; i < sizeof streams / sizeof streams[0]; i++) {
    PyObject *stream = PySys_GetObject (streams[i]);
    if (stream)
      Py_XDECREF (PyObject_CallMethod (stream, "flush", NULL));
    PyErr_Clear ();
  }
}

/* The whole script as a string (Python compiles text, not a FILE). */
static char *
read_script (const char *filename)
{
  char *text = NULL;
  size_t size = 0;
  FILE *fp;

  fp = fopen (filename, "re");
  if (fp == NULL) {
    nbdkit_error ("%s: cannot open file: %m", filename);
    return NULL;
  }
  if (getdelim (&text, &size, '\0', fp) == -1) {
    if (ferror (fp)) {
      nbdkit_error ("%s: read: %m", filename);
      fclose (fp);
      free (text);
      return NULL;
    }
    /* An empty file. */
    free (text);
    text = strdup ("");
  }
  else if (!feof (fp) && fgetc (fp) != EOF) {
    nbdkit_error ("%s: the script contains a NUL byte", filename);
    fclose (fp);
    free (text);
    return NULL;
  }
  fclose (fp);
  if (text == NULL)
    nbdkit_error ("strdup: %m");
  return text;
}

/* An exception while loading: the script's own fault, with its
 * traceback (for a SyntaxError, the line and a caret).
 */
static int
report_load_error (void)
{
  CLEANUP_FREE char *text = py_format_exception ();

  nbdkit_error ("%s: error running this script: %s",
                script, text ? text : "out of memory");
  return -1;
}

/* __file__ and sys.argv as if "python3 SCRIPT" had run it. */
static int
set_script_names (PyObject *dict)
{
  CLEANUP_PY_DECREF PyObject *name = PyUnicode_DecodeFSDefault (script);
  CLEANUP_PY_DECREF PyObject *argv = NULL;

  if (name == NULL ||
      PyDict_SetItemString (dict, "__file__", name) == -1 ||
      (argv = Py_BuildValue ("[O]", name)) == NULL ||
      PySys_SetObject ("argv", argv) == -1)
    return report_load_error ();
  return 0;
}

/* API_VERSION, if the script sets it, must be one we implement. */
static int
check_api_version (void)
{
  CLEANUP_PY_DECREF PyObject *v = NULL;
  long version;

  v = PyObject_GetAttrString (py_main_module, "API_VERSION");
  if (v == NULL) {
    PyErr_Clear ();
    py_api_version = 1;
    return 0;
  }
  if (!PyLong_Check (v)) {
    nbdkit_error ("%s: API_VERSION must be an int, not %s",
                  script, Py_TYPE (v)->tp_name);
    return -1;
  }
  version = PyLong_AsLong (v);
  if (version < 1 || version > PYTHON_MAX_API_VERSION) {
    PyErr_Clear ();
    nbdkit_error ("%s: API_VERSION %ld is not supported: this plugin "
                  "supports API versions 1 to %d",
                  script, version, PYTHON_MAX_API_VERSION);
    return -1;
  }
  py_api_version = version;
  nbdkit_debug ("python: %s requested API_VERSION %d", script, py_api_version);
  return 0;
}

/* Compile and run the script in __main__: its top-level statements
 * run now, and its functions become the callbacks.
 */
static int
load_script (const char *filename)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_FREE char *text = NULL;
  CLEANUP_PY_DECREF PyObject *code = NULL, *result = NULL;
  PyObject *dict;

  if (main_thread_state == NULL) {
    nbdkit_error ("python: the interpreter did not start");
    return -1;
  }
  script = strdup (filename);
  if (script == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  text = read_script (filename);
  if (text == NULL)
    return -1;
  code = Py_CompileString (text, filename, Py_file_input);
  if (code == NULL)
    return report_load_error ();

  py_main_module = PyImport_AddModule ("__main__");
  if (py_main_module == NULL)
    return report_load_error ();
  Py_INCREF (py_main_module);
  dict = PyModule_GetDict (py_main_module);
  if (set_script_names (dict) == -1)
    return -1;
  result = PyEval_EvalCode (code, dict, dict);
  if (result == NULL)
    return report_load_error ();
  return check_api_version ();
}

/* A call of a callback without arguments whose result is not used. */
static int
call_optional (const char *name)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;

  if (script == NULL || !py_defined (name))
    return 0;
  r = py_call (name, "()");
  return r ? 0 : -1;
}

static void
python_dump_plugin (void)
{
  const char *version = Py_GetVersion ();

  printf ("python_version=%.*s\n", (int) strcspn (version, " "), version);
  printf ("python_pep_384_abi_version=%d\n", PYTHON_ABI_VERSION);
  printf ("nbdkit_python_maximum_api_version=%d\n", PYTHON_MAX_API_VERSION);
  fflush (stdout);

  if (script && py_defined ("dump_plugin")) {
    PY_GIL_FOR_SCOPE;
    CLEANUP_PY_DECREF PyObject *r = py_call ("dump_plugin", "()");

    /* The script's print() goes through Python's own buffer. */
    Py_XDECREF (PyObject_CallMethod (PySys_GetObject ("stdout"),
                                     "flush", NULL));
    PyErr_Clear ();
  }
}

static int
python_config (const char *key, const char *value)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;

  if (script == NULL) {
    if (strcmp (key, "script") != 0) {
      nbdkit_error ("the first parameter must be "
                    "script=/path/to/python/script.py (got %s=%s)",
                    key, value);
      return -1;
    }
    return load_script (value);
  }
  if (!py_defined ("config")) {
    nbdkit_error ("%s: this script does not define config(), so it takes "
                  "no parameters (got %s=%s)", script, key, value);
    return -1;
  }
  r = py_call ("config", "(ss)", key, value);
  return r ? 0 : -1;
}

static int
python_config_complete (void)
{
  static const char *const required[] = { "open", "get_size", "pread" };
  size_t i;

  if (script == NULL) {
    nbdkit_error ("no script: use nbdkit python /path/to/script.py "
                  "(script= is required)");
    return -1;
  }
  for (i = 0; i < sizeof required / sizeof required[0]; i++)
    if (!py_defined (required[i])) {
      nbdkit_error ("%s: the script must define %s()", script, required[i]);
      return -1;
    }
  return call_optional ("config_complete");
}

#define python_config_help \
  "script=<FILENAME>     (required) The Python plugin to run.\n" \
  "[other arguments may be used by the plugin that you load]"

/* Python code never runs in parallel (the GIL), but a callback that
 * blocks outside Python lets another run.  The default is the safe one.
 */
static int
python_thread_model (void)
{
  PY_GIL_FOR_SCOPE;
  CLEANUP_PY_DECREF PyObject *r = NULL;
  int64_t model;

  if (script == NULL || !py_defined ("thread_model"))
    return NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS;
  r = py_call ("thread_model", "()");
  if (r == NULL || py_to_int64 ("thread_model", r, &model) == -1)
    return -1;
  if (model < NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS ||
      model > NBDKIT_THREAD_MODEL_PARALLEL) {
    nbdkit_error ("%s: thread_model returned %" PRIi64 ", which is not one "
                  "of nbdkit.THREAD_MODEL_*", script, model);
    return -1;
  }
  return model;
}

static int
python_get_ready (void)
{
  return call_optional ("get_ready");
}

static int
python_after_fork (void)
{
  return call_optional ("after_fork");
}

static void
python_cleanup (void)
{
  call_optional ("cleanup");
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static struct nbdkit_plugin plugin = {
  .name               = "python",
  .version            = PACKAGE_VERSION,
  .load               = python_load,
  .unload             = python_unload,
  .dump_plugin        = python_dump_plugin,
  .config             = python_config,
  .config_complete    = python_config_complete,
  .config_help        = python_config_help,
  .magic_config_key   = "script",
  .thread_model       = python_thread_model,
  .get_ready          = python_get_ready,
  .after_fork         = python_after_fork,
  .cleanup            = python_cleanup,
  .preconnect         = py_preconnect,
  .list_exports       = py_list_exports,
  .default_export     = py_default_export,
  .open               = py_open,
  .close              = py_close,
  .export_description = py_export_description,
  .get_size           = py_get_size,
  .block_size         = py_block_size,
  .can_write          = py_can_write,
  .can_flush          = py_can_flush,
  .is_rotational      = py_is_rotational,
  .can_trim           = py_can_trim,
  .can_zero           = py_can_zero,
  .can_fast_zero      = py_can_fast_zero,
  .can_extents        = py_can_extents,
  .can_fua            = py_can_fua,
  .can_multi_conn     = py_can_multi_conn,
  .can_cache          = py_can_cache,
  .pread              = py_pread,
  .pwrite             = py_pwrite,
  .flush              = py_flush,
  .trim               = py_trim,
  .zero               = py_zero,
  .cache              = py_cache,
  .extents            = py_extents,
};

NBDKIT_REGISTER_PLUGIN (plugin)
