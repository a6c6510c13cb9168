/* SPDX-License-Identifier: BSD-3-Clause
 * The exportname filter: changes what clients see of export names — the
 * list answered to NBD_OPT_LIST, the export chosen for the default name
 * "", which names may be opened, and the descriptions.
 */

#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"
#include "vector.h"

/* The longest description sent to a client (nbd-protocol.md "String
 * length limits").
 */
#define MAX_DESCRIPTION 4096

/* default-export=: the export opened for "", or NULL for the plugin's. */
static char *default_export;

/* exportname=: the names for exportname-list=explicit and
 * exportname-strict=true, in command line order.
 */
static string_vector exportnames = empty_vector;

/* exportname-list=: what NBD_OPT_LIST answers. */
static enum list_mode {
  LIST_KEEP,                    /* the plugin's list */
  LIST_ERROR,                   /* an error */
  LIST_EMPTY,                   /* nothing */
  LIST_DEFAULTONLY,             /* the canonical default name only */
  LIST_EXPLICIT,                /* the exportname= names */
} list_mode = LIST_KEEP;

/* exportname-strict=: refuse names not given with exportname=. */
static bool strict = false;

/* exportdesc=: where descriptions come from. */
static enum desc_mode {
  DESC_KEEP,                    /* the plugin */
  DESC_NONE,                    /* nowhere */
  DESC_FIXED,                   /* desc_value */
  DESC_SCRIPT,                  /* output of the shell script desc_value */
} desc_mode = DESC_KEEP;
static char *desc_value;

static void
exportname_unload (void)
{
  free (default_export);
  free (desc_value);
  string_vector_free_all (&exportnames);
}

static int
replace_string (char **dst, const char *value)
{
  char *copy = strdup (value);

  if (copy == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  free (*dst);
  *dst = copy;
  return 0;
}

static int
config_list_mode (const char *value)
{
  static const char *const names[] = {
    [LIST_KEEP] = "keep", [LIST_ERROR] = "error", [LIST_EMPTY] = "empty",
    [LIST_DEFAULTONLY] = "defaultonly", [LIST_EXPLICIT] = "explicit",
  };

  for (size_t i = 0; i < ARRAY_SIZE (names); ++i) {
    if (strcmp (value, names[i]) == 0) {
      list_mode = i;
      return 0;
    }
  }
  nbdkit_error ("exportname-list: unknown mode '%s' (expected keep, "
                "error, empty, defaultonly or explicit)", value);
  return -1;
}

static int
config_desc (const char *value)
{
  if (strcmp (value, "keep") == 0)
    desc_mode = DESC_KEEP;
  else if (strcmp (value, "none") == 0)
    desc_mode = DESC_NONE;
  else if (strncmp (value, "fixed:", 6) == 0) {
    desc_mode = DESC_FIXED;
    return replace_string (&desc_value, value + 6);
  }
  else if (strncmp (value, "script:", 7) == 0) {
    desc_mode = DESC_SCRIPT;
    return replace_string (&desc_value, value + 7);
  }
  else {
    nbdkit_error ("exportdesc: unknown value '%s' (expected keep, none, "
                  "fixed:STRING or script:SCRIPT)", value);
    return -1;
  }
  return 0;
}

static int
exportname_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                   const char *key, const char *value)
{
  if (strcmp (key, "default-export") == 0) {
    if (*value == '\0') {       /* the same as not giving it */
      free (default_export);
      default_export = NULL;
      return 0;
    }
    return replace_string (&default_export, value);
  }
  if (strcmp (key, "exportname") == 0) {
    char *copy = strdup (value);
    if (copy == NULL || string_vector_append (&exportnames, copy) == -1) {
      nbdkit_error ("exportname: %m");
      free (copy);
      return -1;
    }
    return 0;
  }
  if (strcmp (key, "exportname-list") == 0)
    return config_list_mode (value);
  if (strcmp (key, "exportname-strict") == 0) {
    int r = nbdkit_parse_bool (value);
    if (r == -1) {
      nbdkit_error ("exportname-strict: expected a boolean, got '%s'", value);
      return -1;
    }
    strict = r;
    return 0;
  }
  if (strcmp (key, "exportdesc") == 0)
    return config_desc (value);
  return next (nxdata, key, value);
}

#define exportname_config_help \
  "default-export=<NAME>     Canonical name for the \"\" default export.\n" \
  "exportname=<NAME>         Add an export name (may be repeated).\n" \
  "exportname-list=<MODE>    'keep' (default), 'error', 'empty',\n" \
  "                          'defaultonly' or 'explicit'.\n" \
  "exportname-strict=<BOOL>  Refuse names not given with exportname=.\n" \
  "exportdesc=<DESC>         'keep' (default), 'none', 'fixed:STRING'\n" \
  "                          or 'script:SCRIPT'."

/* Run the exportdesc script for NAME and return its output without the
 * final newline, or NULL.  The name reaches the script as $name.
 */
static char *
run_desc_script (const char *name)
{
  CLEANUP_FREE char *quoted = shell_quote (name);
  CLEANUP_FREE char *cmd = NULL;
  char *out;
  size_t n = 0;
  FILE *fp;
  int status;

  if (quoted == NULL || asprintf (&cmd, "name=%s\n%s", quoted,
                                  desc_value) == -1) {
    nbdkit_error ("exportdesc: %m");
    return NULL;
  }
  out = malloc (MAX_DESCRIPTION + 1);
  if (out == NULL) {
    nbdkit_error ("malloc: %m");
    return NULL;
  }
  fp = popen (cmd, "r");
  if (fp == NULL) {
    nbdkit_error ("exportdesc: popen: %m");
    free (out);
    return NULL;
  }
  n = fread (out, 1, MAX_DESCRIPTION, fp);
  /* Drain the rest so the script is not killed by SIGPIPE. */
  while (fgetc (fp) != EOF)
    ;
  status = pclose (fp);
  if (status == -1 || !WIFEXITED (status) || WEXITSTATUS (status) != 0) {
    nbdkit_error ("exportdesc: script failed for export '%s'", name);
    free (out);
    return NULL;
  }
  while (n > 0 && out[n - 1] == '\n')
    n--;
  out[n] = '\0';
  return out;
}

/* The description to give NAME, whose plugin description is PLUGIN_DESC.
 * The result must be freed.
 */
static char *
describe (const char *name, const char *plugin_desc)
{
  switch (desc_mode) {
  case DESC_KEEP:
    return plugin_desc ? strdup (plugin_desc) : NULL;
  case DESC_NONE:
    return NULL;
  case DESC_FIXED:
    return strdup (desc_value);
  case DESC_SCRIPT:
    return run_desc_script (name);
  }
  abort ();
}

static int
add_export (struct nbdkit_exports *exports, const char *name,
            const char *plugin_desc)
{
  CLEANUP_FREE char *desc = describe (name, plugin_desc);

  return nbdkit_add_export (exports, name, desc);
}

static const char *
exportname_default_export (nbdkit_next_default_export *next,
                           nbdkit_backend *nxdata, int readonly, int is_tls)
{
  if (default_export)
    return default_export;
  return next (nxdata, readonly);
}

static int
exportname_list_exports (nbdkit_next_list_exports *next,
                         nbdkit_backend *nxdata, int readonly, int is_tls,
                         struct nbdkit_exports *exports)
{
  struct nbdkit_exports *plugin_list;
  size_t i;
  int r = 0;

  switch (list_mode) {
  case LIST_ERROR:
    nbdkit_error ("exportname-list=error: export listing is disabled");
    errno = EPERM;
    return -1;

  case LIST_EMPTY:
    return 0;

  case LIST_DEFAULTONLY:
    /* Without default-export= the server asks default_export below
     * for the canonical name, which is then listed undescribed.
     */
    if (default_export)
      return add_export (exports, default_export, NULL);
    return nbdkit_use_default_export (exports);

  case LIST_EXPLICIT:
    for (i = 0; i < exportnames.len; ++i)
      if (add_export (exports, exportnames.ptr[i], NULL) == -1)
        return -1;
    return 0;

  case LIST_KEEP:
    break;
  }

  /* Keep the plugin's names, with descriptions as exportdesc= says. */
  plugin_list = nbdkit_exports_new ();
  if (plugin_list == NULL)
    return -1;
  if (next (nxdata, readonly, plugin_list) == -1)
    r = -1;
  for (i = 0; r == 0 && i < nbdkit_exports_count (plugin_list); ++i) {
    struct nbdkit_export e = nbdkit_get_export (plugin_list, i);
    r = add_export (exports, e.name, e.description);
  }
  nbdkit_exports_free (plugin_list);
  return r;
}

static bool
is_listed (const char *name)
{
  for (size_t i = 0; i < exportnames.len; ++i)
    if (strcmp (exportnames.ptr[i], name) == 0)
      return true;
  return false;
}

/* The handle is the export name this connection opened. */
static void *
exportname_open (nbdkit_next_open *next, nbdkit_context *context,
                 int readonly, const char *exportname, int is_tls)
{
  char *name;

  if (*exportname == '\0' && default_export)
    exportname = default_export;
  if (strict && !is_listed (exportname)) {
    nbdkit_error ("export '%s' is not permitted (exportname-strict=true "
                  "and it was not given with exportname=)", exportname);
    return NULL;
  }
  if (next (context, readonly, exportname) == -1)
    return NULL;
  name = strdup (exportname);
  if (name == NULL)
    nbdkit_error ("strdup: %m");
  return name;
}

static void
exportname_close (void *handle)
{
  free (handle);
}

static const char *
exportname_export_description (nbdkit_next *next, void *handle)
{
  CLEANUP_FREE char *desc = NULL;

  if (desc_mode == DESC_KEEP)
    return next->export_description (next);
  desc = describe (handle, NULL);
  return desc ? nbdkit_strdup_intern (desc) : NULL;
}

static struct nbdkit_filter filter = {
  .name               = "exportname",
  .longname           = "nbdkit exportname filter",
  .version            = PACKAGE_VERSION,
  .description        = "Adjust export names between client and plugin",
  .unload             = exportname_unload,
  .config             = exportname_config,
  .config_help        = exportname_config_help,
  .list_exports       = exportname_list_exports,
  .default_export     = exportname_default_export,
  .open               = exportname_open,
  .close              = exportname_close,
  .export_description = exportname_export_description,
};

NBDKIT_REGISTER_FILTER (filter)
