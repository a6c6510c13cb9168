/* SPDX-License-Identifier: BSD-3-Clause
 * The can_* and is_rotational callbacks of sh and eval: booleans are the
 * exit status (0 true, 3 false), can_fua and can_cache print a word
 * (nbdkit-sh-plugin(3) "can_write" ... "can_cache").
 */

#include <config.h>

#include <errno.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "internal.h"
#include "utils.h"

/* A boolean method.  Missing, it is true if the plugin knows OPERATION
 * is implemented (eval), else FALLBACK: a sh script cannot be asked
 * whether it has pwrite, so it must answer can_write itself.
 */
static int
boolean_method (void *handle, const char *method, const char *operation,
                int fallback)
{
  struct script_handle *h = handle;
  const char *argv[] = { NULL, method, h->name, NULL };

  if (operation && !script_defines (method) && script_defines (operation))
    return 1;
  switch (method_call (argv, NULL, 0, NULL, SCRIPT_OUTPUT_MAX)) {
  case SCRIPT_OK:
    return 1;
  case SCRIPT_FALSE:
    return 0;
  case SCRIPT_MISSING:
    return fallback;
  default:
    return -1;
  }
}

int
method_can_write (void *handle)
{
  return boolean_method (handle, "can_write", "pwrite", 0);
}

int
method_can_flush (void *handle)
{
  return boolean_method (handle, "can_flush", "flush", 0);
}

int
method_is_rotational (void *handle)
{
  return boolean_method (handle, "is_rotational", NULL, 0);
}

int
method_can_trim (void *handle)
{
  return boolean_method (handle, "can_trim", "trim", 0);
}

int
method_can_zero (void *handle)
{
  struct script_handle *h = handle;

  h->can_zero = boolean_method (handle, "can_zero", "zero", 0);
  return h->can_zero;
}

/* Missing: fast exactly when zeroing is emulated, since then a fast
 * zero request fails at once.  nbdkit asks can_zero first.
 */
int
method_can_fast_zero (void *handle)
{
  struct script_handle *h = handle;
  int r = boolean_method (handle, "can_fast_zero", NULL, -2);

  if (r == -2) {
    r = h->can_zero >= 0 ? h->can_zero : method_can_zero (handle);
    if (r >= 0)
      r = !r;
  }
  return r;
}

int
method_can_extents (void *handle)
{
  return boolean_method (handle, "can_extents", "extents", 0);
}

int
method_can_multi_conn (void *handle)
{
  return boolean_method (handle, "can_multi_conn", NULL, 0);
}

/* "none", "emulate" or "native"; MISSING when the script has no answer. */
static int
tristate_method (void *handle, const char *method, int missing)
{
  static const char *const words[] = { "none", "emulate", "native" };
  struct script_handle *h = handle;
  const char *argv[] = { NULL, method, h->name, NULL };
  byte_buffer out = empty_vector;
  char *word;
  size_t len, i;
  int r = -1;

  switch (method_call (argv, NULL, 0, &out, SCRIPT_OUTPUT_MAX)) {
  case SCRIPT_OK:
    if (byte_buffer_append (&out, '\0') == -1) {
      nbdkit_set_error (ENOMEM);
      script_error (method, "%m");
      break;
    }
    /* The word, without surrounding blanks. */
    word = out.ptr + strspn (out.ptr, " \t\r\n");
    len = strlen (word);
    while (len > 0 && strchr (" \t\r\n", word[len - 1]))
      word[--len] = '\0';
    for (i = 0; i < ARRAY_SIZE (words); ++i)
      if (strcmp (word, words[i]) == 0)
        r = i;
    if (r == -1)
      script_error (method, "cannot parse '%s': expected none, emulate "
                    "or native", word);
    break;
  case SCRIPT_MISSING:
    r = missing;
    break;
  case SCRIPT_FALSE:
    script_error (method, "unexpected exit status 3 (false)");
    break;
  default:
    break;
  }
  byte_buffer_reset (&out);
  return r;
}

/* Missing: FUA is emulated with flush (or unavailable without it). */
int
method_can_fua (void *handle)
{
  return tristate_method (handle, "can_fua", NBDKIT_FUA_EMULATE);
}

int
method_can_cache (void *handle)
{
  if (!script_defines ("can_cache") && script_defines ("cache"))
    return NBDKIT_CACHE_NATIVE;
  return tristate_method (handle, "can_cache", NBDKIT_CACHE_NONE);
}
