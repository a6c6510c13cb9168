/* SPDX-License-Identifier: BSD-3-Clause
 * Export lists (NBD_OPT_LIST): plugins add names and descriptions, or ask
 * for the default export to be listed.
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "nbd-protocol.h"

/* A limit that keeps one NBD_OPT_LIST reply sane. */
#define MAX_EXPORTS 10000

DEFINE_VECTOR_TYPE (export_list, struct nbdkit_export)

struct nbdkit_exports {
  export_list exports;
  bool use_default;
};

NBDKIT_DLL_PUBLIC struct nbdkit_exports *
nbdkit_exports_new (void)
{
  struct nbdkit_exports *r = calloc (1, sizeof *r);

  if (r == NULL)
    nbdkit_error ("nbdkit_exports_new: calloc: %m");
  return r;
}

NBDKIT_DLL_PUBLIC void
nbdkit_exports_free (struct nbdkit_exports *exps)
{
  if (exps == NULL)
    return;
  for (size_t i = 0; i < exps->exports.len; ++i) {
    free (exps->exports.ptr[i].name);
    free (exps->exports.ptr[i].description);
  }
  export_list_reset (&exps->exports);
  free (exps);
}

NBDKIT_DLL_PUBLIC size_t
nbdkit_exports_count (const struct nbdkit_exports *exps)
{
  return exps->exports.len;
}

NBDKIT_DLL_PUBLIC struct nbdkit_export
nbdkit_get_export (const struct nbdkit_exports *exps, size_t i)
{
  return exps->exports.ptr[i];
}

NBDKIT_DLL_PUBLIC int
nbdkit_add_export (struct nbdkit_exports *exps,
                   const char *name, const char *description)
{
  struct nbdkit_export e = { NULL, NULL };

  if (exps->exports.len >= MAX_EXPORTS) {
    nbdkit_error ("nbdkit_add_export: too many exports (limit %d)",
                  MAX_EXPORTS);
    errno = EINVAL;
    return -1;
  }
  if (name == NULL || strlen (name) > NBD_MAX_STRING) {
    nbdkit_error ("nbdkit_add_export: export name is missing or longer "
                  "than %d bytes", NBD_MAX_STRING);
    errno = EINVAL;
    return -1;
  }
  if (description && strlen (description) > NBD_MAX_STRING) {
    nbdkit_error ("nbdkit_add_export: description is longer than %d bytes",
                  NBD_MAX_STRING);
    errno = EINVAL;
    return -1;
  }
  e.name = strdup (name);
  if (e.name == NULL || (description &&
                         (e.description = strdup (description)) == NULL) ||
      export_list_append (&exps->exports, e) == -1) {
    nbdkit_error ("nbdkit_add_export: %m");
    free (e.name);
    free (e.description);
    return -1;
  }
  return 0;
}

NBDKIT_DLL_PUBLIC int
nbdkit_use_default_export (struct nbdkit_exports *exps)
{
  exps->use_default = true;
  return 0;
}

/* If the list asked for the default export, add it under its canonical
 * name (from default_export).
 */
int
exports_resolve_default (struct nbdkit_exports *exps, struct backend *b,
                         int readonly)
{
  const char *name;

  if (!exps->use_default)
    return 0;
  exps->use_default = false;
  name = backend_default_export (b, readonly);
  if (name == NULL)
    return 0;                   /* no default export: nothing to list */
  return nbdkit_add_export (exps, name, NULL);
}
