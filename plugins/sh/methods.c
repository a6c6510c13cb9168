/* SPDX-License-Identifier: BSD-3-Clause
 * The plugin callbacks of sh and eval outside the data path, each one
 * running the script method of the same name (nbdkit-sh-plugin(3)
 * "Methods") and parsing what it prints.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "internal.h"
#include "utils.h"

static const char *
bool_arg (int b)
{
  return b ? "true" : "false";
}

enum script_status
method_call (const char **argv, const void *in, size_t in_len,
             byte_buffer *out, size_t out_max)
{
  bool via_shell = false;

  argv[0] = script_for (argv[1], &via_shell);
  if (argv[0] == NULL)
    return SCRIPT_MISSING;
  return script_call (argv, via_shell, in, in_len, out, out_max);
}

/* Run a method without input, collecting its output as a string in OUT
 * (trailing whitespace removed if TRIM).
 */
static enum script_status
call_for_text (const char **argv, byte_buffer *out, bool trim)
{
  enum script_status r = method_call (argv, NULL, 0, out, SCRIPT_OUTPUT_MAX);

  if (r != SCRIPT_OK)
    return r;
  if (byte_buffer_append (out, '\0') == -1) {
    nbdkit_set_error (ENOMEM);
    script_error (argv[1], "%m");
    return SCRIPT_ERROR;
  }
  out->len--;
  while (trim && out->len > 0 && strchr (" \t\r\n", out->ptr[out->len - 1]))
    out->ptr[--out->len] = '\0';
  return SCRIPT_OK;
}

/* Methods whose only answer is success or failure; missing is fine. */
static int
call_simple (const char **argv)
{
  return method_call (argv, NULL, 0, NULL, SCRIPT_OUTPUT_MAX)
    == SCRIPT_ERROR ? -1 : 0;
}

/* Run from the unload callback: errors are logged and otherwise
 * ignored, then $tmpdir goes.
 */
void
method_unload (void)
{
  const char *argv[] = { NULL, "unload", NULL };

  bool via_shell;

  if (script_for ("unload", &via_shell))
    method_call (argv, NULL, 0, NULL, SCRIPT_OUTPUT_MAX);
  script_tmpdir_remove ();
}

void
method_dump_plugin (void)
{
  const char *argv[] = { NULL, "dump_plugin", NULL };
  byte_buffer out = empty_vector;
  bool via_shell;

  printf ("max_known_status=%d\n", SCRIPT_MAX_KNOWN_STATUS);
  fflush (stdout);
  if (script_for ("dump_plugin", &via_shell) &&
      method_call (argv, NULL, 0, &out, SCRIPT_OUTPUT_MAX) == SCRIPT_OK) {
    fwrite (out.ptr, 1, out.len, stdout);
    fflush (stdout);
  }
  byte_buffer_reset (&out);
}

int
method_config (const char *key, const char *value)
{
  const char *argv[] = { NULL, "config", key, value, NULL };

  switch (method_call (argv, NULL, 0, NULL, SCRIPT_OUTPUT_MAX)) {
  case SCRIPT_OK:
    return 0;
  case SCRIPT_MISSING:
    script_error ("config", "the script has no config method to handle "
                  "the parameter '%s'", key);
    return -1;
  case SCRIPT_FALSE:
    script_error ("config", "unexpected exit status 3 (false)");
    return -1;
  default:
    return -1;
  }
}

int
method_config_complete (void)
{
  const char *argv[] = { NULL, "config_complete", NULL };

  /* Create $tmpdir now, while nbdkit has a single thread. */
  if (script_tmpdir () == NULL)
    return -1;
  return call_simple (argv);
}

static const struct { const char *name; int model; } thread_models[] = {
  { "serialize_connections", NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS },
  { "serialize_all_requests", NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS },
  { "serialize_requests", NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS },
  { "parallel", NBDKIT_THREAD_MODEL_PARALLEL },
};

/* Without an answer the script gets the safe serialize_all_requests. */
int
method_thread_model (void)
{
  const char *argv[] = { NULL, "thread_model", NULL };
  byte_buffer out = empty_vector;
  int model = NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS;
  size_t i;

  switch (call_for_text (argv, &out, true)) {
  case SCRIPT_OK:
    for (i = 0; i < ARRAY_SIZE (thread_models); ++i)
      if (strcmp (out.ptr, thread_models[i].name) == 0)
        break;
    if (i < ARRAY_SIZE (thread_models))
      model = thread_models[i].model;
    else
      nbdkit_debug ("thread_model: ignoring unknown answer '%s'", out.ptr);
    break;
  case SCRIPT_ERROR:
    model = -1;
    break;
  default:
    break;
  }
  byte_buffer_reset (&out);
  return model;
}

int
method_get_ready (void)
{
  const char *argv[] = { NULL, "get_ready", NULL };
  return call_simple (argv);
}

int
method_after_fork (void)
{
  const char *argv[] = { NULL, "after_fork", NULL };

  /* The server may now be a child of the process that loaded us (-f
   * not given, or --run): this process removes $tmpdir at exit.
   */
  script_tmpdir_adopt ();
  return call_simple (argv);
}

int
method_preconnect (int readonly)
{
  const char *argv[] = { NULL, "preconnect", bool_arg (readonly), NULL };
  return call_simple (argv);
}

/* nbdkit-sh-plugin(3) "list_exports": the output is lines, a first line
 * naming the layout (NAMES if it names none), then names, or names and
 * descriptions.  Unlike nbdkit 1.32 a last line without a newline
 * counts.  Calls ADD for each export until it returns non-zero.
 */
static int
parse_export_list (byte_buffer *out,
                   int (*add) (const char *, const char *, void *),
                   void *opaque)
{
  CLEANUP_FREE const char **lines = NULL;
  size_t n = 0, i, first = 1, half;
  char *p;
  int r = 0;

  lines = malloc ((out->len + 1) * sizeof *lines);
  if (lines == NULL)
    return -1;
  for (p = out->ptr; p < out->ptr + out->len; ) {
    char *nl = strchr (p, '\n');
    if (nl)
      *nl = '\0';
    lines[n++] = p;
    p = nl ? nl + 1 : out->ptr + out->len;
  }
  if (n == 0)
    return 0;
  if (strcmp (lines[0], "INTERLEAVED") == 0) {
    for (i = first; r == 0 && i < n; i += 2)
      r = add (lines[i], i + 1 < n ? lines[i + 1] : NULL, opaque);
  }
  else if (strcmp (lines[0], "NAMES+DESCRIPTIONS") == 0) {
    half = (n - first + 1) / 2;
    for (i = 0; r == 0 && i < half; ++i)
      r = add (lines[first + i],
               first + half + i < n ? lines[first + half + i] : NULL, opaque);
  }
  else {
    if (strcmp (lines[0], "NAMES") != 0)
      first = 0;
    for (i = first; r == 0 && i < n; ++i)
      r = add (lines[i], NULL, opaque);
  }
  return r;
}

static int
add_export (const char *name, const char *description, void *exports)
{
  return nbdkit_add_export (exports, name, description) == -1 ? -1 : 0;
}

int
method_list_exports (int readonly, int is_tls,
                     struct nbdkit_exports *exports)
{
  const char *argv[] = { NULL, "list_exports", bool_arg (readonly),
                         bool_arg (is_tls), NULL };
  byte_buffer out = empty_vector;
  int r = -1;

  switch (call_for_text (argv, &out, false)) {
  case SCRIPT_OK:
    r = parse_export_list (&out, add_export, exports);
    if (r == -1)
      script_error ("list_exports", "cannot add the exports listed");
    break;
  case SCRIPT_MISSING:
    r = nbdkit_use_default_export (exports);
    break;
  case SCRIPT_FALSE:
    script_error ("list_exports", "unexpected exit status 3 (false)");
    break;
  default:
    break;
  }
  byte_buffer_reset (&out);
  return r;
}

static int
take_first_name (const char *name, const char *description, void *result)
{
  *(const char **) result = nbdkit_strdup_intern (name);
  return 1;
}

/* Any list form works; the first name is the default, "" if none. */
const char *
method_default_export (int readonly, int is_tls)
{
  const char *argv[] = { NULL, "default_export", bool_arg (readonly),
                         bool_arg (is_tls), NULL };
  byte_buffer out = empty_vector;
  const char *name = NULL;

  switch (call_for_text (argv, &out, false)) {
  case SCRIPT_OK:
    name = "";
    if (parse_export_list (&out, take_first_name, &name) == -1 ||
        name == NULL) {
      script_error ("default_export", "cannot store the name: %m");
      name = NULL;
    }
    break;
  case SCRIPT_MISSING:
    name = "";
    break;
  case SCRIPT_FALSE:
    script_error ("default_export", "unexpected exit status 3 (false)");
    break;
  default:
    break;
  }
  byte_buffer_reset (&out);
  return name;
}

/* The handle is whatever open prints, less one final newline: a string
 * owned by the connection, freed in close.
 */
void *
method_open (int readonly)
{
  const char *argv[] = { NULL, "open", bool_arg (readonly),
                         nbdkit_export_name (), bool_arg (nbdkit_is_tls ()),
                         NULL };
  byte_buffer out = empty_vector;
  struct script_handle *h = NULL;
  char *name = NULL;

  if (argv[3] == NULL)
    argv[3] = "";
  switch (call_for_text (argv, &out, false)) {
  case SCRIPT_OK:
    if (out.len > 0 && out.ptr[out.len - 1] == '\n')
      out.ptr[--out.len] = '\0';
    name = strdup (out.ptr);
    break;
  case SCRIPT_MISSING:
    name = strdup ("");
    break;
  case SCRIPT_FALSE:
    script_error ("open", "unexpected exit status 3 (false)");
    goto out;
  default:
    goto out;
  }
  h = malloc (sizeof *h);
  if (name == NULL || h == NULL) {
    script_error ("open", "%m");
    free (name);
    free (h);
    h = NULL;
    goto out;
  }
  *h = (struct script_handle) { .name = name, .can_zero = -1 };
 out:
  byte_buffer_reset (&out);
  return h;
}

void
method_close (void *handle)
{
  struct script_handle *h = handle;
  const char *argv[] = { NULL, "close", h->name, NULL };

  call_simple (argv);
  free (h->name);
  free (h);
}

const char *
method_export_description (void *handle)
{
  struct script_handle *h = handle;
  const char *argv[] = { NULL, "export_description", h->name, NULL };
  byte_buffer out = empty_vector;
  const char *description = NULL;

  switch (call_for_text (argv, &out, false)) {
  case SCRIPT_OK:
    if (out.len > 0 && out.ptr[out.len - 1] == '\n')
      out.ptr[--out.len] = '\0';
    description = nbdkit_strdup_intern (out.ptr);
    break;
  case SCRIPT_FALSE:
    script_error ("export_description", "unexpected exit status 3 (false)");
    break;
  default:
    break;
  }
  byte_buffer_reset (&out);
  return description;
}

/* A size as nbdkit_parse_size reads it ("1M", "512"). */
static int64_t
parse_size_output (const char *method, const char *text)
{
  const char *error;
  int64_t size = parse_human_size (text, &error);

  if (size == -1)
    script_error (method, "cannot parse '%s' as a size: %s", text, error);
  return size;
}

int64_t
method_get_size (void *handle)
{
  struct script_handle *h = handle;
  const char *argv[] = { NULL, "get_size", h->name, NULL };
  byte_buffer out = empty_vector;
  int64_t size = -1;

  switch (call_for_text (argv, &out, true)) {
  case SCRIPT_OK:
    size = parse_size_output ("get_size", out.ptr + strspn (out.ptr, " \t\n"));
    break;
  case SCRIPT_MISSING:
    script_error ("get_size", "the get_size method is required");
    break;
  case SCRIPT_FALSE:
    script_error ("get_size", "unexpected exit status 3 (false)");
    break;
  default:
    break;
  }
  byte_buffer_reset (&out);
  return size;
}

/* Three sizes: minimum, preferred, maximum.  Missing means none. */
int
method_block_size (void *handle, uint32_t *minimum, uint32_t *preferred,
                   uint32_t *maximum)
{
  struct script_handle *h = handle;
  const char *argv[] = { NULL, "block_size", h->name, NULL };
  uint32_t *results[] = { minimum, preferred, maximum };
  byte_buffer out = empty_vector;
  char *p, *word, *saveptr = NULL;
  int r = -1;
  size_t i;

  *minimum = *preferred = *maximum = 0;
  switch (call_for_text (argv, &out, true)) {
  case SCRIPT_OK:
    for (i = 0, p = out.ptr; i < 3; ++i, p = NULL) {
      int64_t v;

      word = strtok_r (p, " \t\n", &saveptr);
      if (word == NULL)
        break;
      v = parse_size_output ("block_size", word);
      if (v == -1)
        goto out;
      if (v > UINT32_MAX) {
        script_error ("block_size", "'%s' is larger than 4G - 1", word);
        goto out;
      }
      *results[i] = v;
    }
    if (i < 3 || strtok_r (NULL, " \t\n", &saveptr) != NULL) {
      script_error ("block_size", "expected three sizes (minimum, "
                    "preferred, maximum)");
      goto out;
    }
    r = 0;
    break;
  case SCRIPT_MISSING:
    r = 0;
    break;
  case SCRIPT_FALSE:
    script_error ("block_size", "unexpected exit status 3 (false)");
    break;
  default:
    break;
  }
 out:
  byte_buffer_reset (&out);
  return r;
}
