/* SPDX-License-Identifier: BSD-3-Clause
 * allocator=NAME[,KEY=VALUE...]: parse the parameter and create the
 * allocator it names (allocator.h).
 */

#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "allocator.h"
#include "cleanup.h"

struct spec {
  enum { ALLOC_SPARSE, ALLOC_MALLOC, ALLOC_ZSTD } kind;
  bool mlock;
};

/* One KEY=VALUE after the name.  Only malloc takes one (mlock). */
static int
parse_param (struct spec *spec, const char *name, char *param)
{
  char *eq = strchr (param, '=');
  int r;

  if (eq == NULL) {
    nbdkit_error ("allocator=%s: '%s' is not a key=value parameter",
                  name, param);
    return -1;
  }
  *eq = '\0';
  if (spec->kind == ALLOC_MALLOC && strcmp (param, "mlock") == 0) {
    r = nbdkit_parse_bool (eq + 1);
    if (r == -1) {
      nbdkit_error ("allocator=%s: mlock=%s is not a boolean", name, eq + 1);
      return -1;
    }
    spec->mlock = r;
    return 0;
  }
  nbdkit_error ("allocator=%s does not take the parameter '%s' "
                "(allocator=%s)", name, param, ALLOCATOR_NAMES);
  return -1;
}

static int
parse_spec (const char *text, struct spec *spec)
{
  CLEANUP_FREE char *copy = strdup (text ? text : "sparse");
  char *name, *param, *save = NULL;

  if (copy == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  memset (spec, 0, sizeof *spec);
  name = strtok_r (copy, ",", &save);
  if (name == NULL || strcmp (name, "sparse") == 0)
    spec->kind = ALLOC_SPARSE;
  else if (strcmp (name, "malloc") == 0)
    spec->kind = ALLOC_MALLOC;
  else if (strcmp (name, "zstd") == 0)
    spec->kind = ALLOC_ZSTD;
  else {
    nbdkit_error ("allocator=%s: unknown allocator '%s' (allocator=%s)",
                  text, name, ALLOCATOR_NAMES);
    return -1;
  }
  while ((param = strtok_r (NULL, ",", &save)) != NULL)
    if (parse_param (spec, name, param) == -1)
      return -1;
  return 0;
}

int
allocator_check (const char *text)
{
  struct spec spec;

  return parse_spec (text, &spec);
}

struct allocator *
allocator_create (const char *text)
{
  struct spec spec;
  struct allocator *a = NULL;

  if (parse_spec (text, &spec) == -1)
    return NULL;
  switch (spec.kind) {
  case ALLOC_SPARSE: a = allocator_sparse_new (); break;
  case ALLOC_MALLOC: a = allocator_malloc_new (spec.mlock); break;
  case ALLOC_ZSTD:
#ifdef HAVE_LIBZSTD
    a = allocator_zstd_new ();
#else
    nbdkit_error ("allocator=zstd: this nbdkit was built without libzstd");
    return NULL;
#endif
    break;
  }
  if (a == NULL)
    nbdkit_error ("allocator=%s: %m", text ? text : "sparse");
  return a;
}
