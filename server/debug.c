/* SPDX-License-Identifier: BSD-3-Clause
 * -D NAME.FLAG=N debug flags: set an int variable NAME_debug_FLAG in the
 * plugin or filter called NAME, or a server flag for NAME "nbdkit".
 */

#include <config.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "cleanup.h"

debug_flag_list debug_flags = empty_vector;

/* Server flags (-D nbdkit.FLAG=N). */
NBDKIT_DLL_PUBLIC int nbdkit_debug_backend_controlpath = 1;
NBDKIT_DLL_PUBLIC int nbdkit_debug_backend_datapath = 1;

/* Turn a plugin name or flag name into a C identifier fragment. */
static char *
symbol_part (const char *s, size_t n)
{
  char *r = strndup (s, n);

  if (r == NULL) {
    perror ("strndup");
    exit (EXIT_FAILURE);
  }
  for (char *p = r; *p; ++p)
    if (*p == '-' || *p == '.')
      *p = '_';
  return r;
}

void
add_debug_flag (const char *arg)
{
  const char *dot = strchr (arg, '.');
  const char *eq = dot ? strchr (dot, '=') : NULL;
  struct debug_flag f = { 0 };

  if (dot == NULL || eq == NULL || dot == arg || eq == dot + 1) {
    fprintf (stderr, "%s: -D (Debug Flag) must have the format "
             "NAME.FLAG=N\n", config.program_name);
    exit (EXIT_FAILURE);
  }
  if (nbdkit_parse_int ("debug flag", eq + 1, &f.value) == -1)
    exit (EXIT_FAILURE);
  f.name = symbol_part (arg, dot - arg);
  f.flag = symbol_part (dot + 1, eq - dot - 1);

  if (strcmp (f.name, "nbdkit") == 0) {
    if (strcmp (f.flag, "backend_controlpath") == 0)
      nbdkit_debug_backend_controlpath = f.value;
    else if (strcmp (f.flag, "backend_datapath") == 0)
      nbdkit_debug_backend_datapath = f.value;
    /* Other server flags (tls.*) are read by their owners. */
    f.used = true;
  }
  if (debug_flag_list_append (&debug_flags, f) == -1) {
    perror ("realloc");
    exit (EXIT_FAILURE);
  }
}

/* Called after a plugin or filter called NAME is loaded. */
void
apply_debug_flags (void *dl, const char *name)
{
  CLEANUP_FREE char *cname = symbol_part (name, strlen (name));

  for (size_t i = 0; i < debug_flags.len; ++i) {
    struct debug_flag *f = &debug_flags.ptr[i];
    CLEANUP_FREE char *sym = NULL;
    int *var;

    if (f->used || strcmp (f->name, cname) != 0)
      continue;
    if (asprintf (&sym, "%s_debug_%s", cname, f->flag) == -1) {
      perror ("asprintf");
      exit (EXIT_FAILURE);
    }
    var = dlsym (dl, sym);
    if (var == NULL) {
      fprintf (stderr, "%s: -D %s.%s: %s does not contain a global "
               "variable called %s\n",
               config.program_name, f->name, f->flag, name, sym);
      exit (EXIT_FAILURE);
    }
    *var = f->value;
    f->used = true;
  }
}

/* Value of a server flag such as "tls_log", or DEF if not given. */
int
server_debug_flag (const char *flag, int def)
{
  for (size_t i = 0; i < debug_flags.len; ++i)
    if (strcmp (debug_flags.ptr[i].name, "nbdkit") == 0 &&
        strcmp (debug_flags.ptr[i].flag, flag) == 0)
      return debug_flags.ptr[i].value;
  return def;
}

void
free_debug_flags (void)
{
  for (size_t i = 0; i < debug_flags.len; ++i) {
    struct debug_flag *f = &debug_flags.ptr[i];
    if (!f->used)
      fprintf (stderr, "%s: warning: debug flag -D %s.%s was not used\n",
               config.program_name, f->name, f->flag);
    free (f->name);
    free (f->flag);
  }
  debug_flag_list_reset (&debug_flags);
}
