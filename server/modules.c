/* SPDX-License-Identifier: BSD-3-Clause
 * Loading the plugin and filters named on the command line (by short
 * name from the build tree or the install directories, or by path),
 * stacking them into the chain and offering them the KEY=VALUE
 * parameters.
 */

#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Where plugins and filters are looked up by name.  The nbdkit built in
 * the source tree finds the in-tree modules; the installed one finds the
 * installed ones.
 */
static bool
running_in_build_tree (void)
{
  static int answer = -1;
  char exe[PATH_MAX];
  ssize_t n;

  if (answer >= 0)
    return answer;
  n = readlink ("/proc/self/exe", exe, sizeof exe - 1);
  answer = 0;
  if (n > 0) {
    exe[n] = '\0';
    answer = strcmp (exe, BUILDDIR "/server/nbdkit") == 0;
  }
  return answer;
}

static bool
is_short_name (const char *name)
{
  return strchr (name, '.') == NULL && strchr (name, '/') == NULL;
}

/* Open a plugin or filter (TYPE) by short name or path. */
static void *
open_module (const char *name, const char *type, char **filename_ret)
{
  char *filename;
  void *dl;

  if (!is_short_name (name))
    filename = strdup (name);
  else if (running_in_build_tree ()) {
    if (asprintf (&filename, "%s/%ss/%s/nbdkit-%s-%s.so",
                  BUILDDIR, type, name, name, type) == -1)
      filename = NULL;
  }
  else if (asprintf (&filename, "%s/nbdkit-%s-%s.so",
                     strcmp (type, "plugin") == 0 ? PLUGINDIR : FILTERDIR,
                     name, type) == -1)
    filename = NULL;
  if (filename == NULL) {
    perror ("asprintf");
    exit (EXIT_FAILURE);
  }

  /* A path without a slash would make dlopen search the library path. */
  if (strchr (filename, '/') == NULL) {
    char *rel;
    if (asprintf (&rel, "./%s", filename) == -1) {
      perror ("asprintf");
      exit (EXIT_FAILURE);
    }
    free (filename);
    filename = rel;
  }

  if (is_short_name (name) && access (filename, F_OK) == -1 &&
      errno == ENOENT) {
    bool plugin = strcmp (type, "plugin") == 0;
    fprintf (stderr, "%s: error: the %s '%s' is not installed here "
             "(there is no %s).\n"
             "The installed %ss are the nbdkit-*-%s.so files in %s%s "
             "(see '%s --dump-config').\n",
             config.program_name, type, name, filename, type, type,
             running_in_build_tree () ? BUILDDIR : "",
             running_in_build_tree () ? (plugin ? "/plugins/*" : "/filters/*")
             : (plugin ? PLUGINDIR : FILTERDIR),
             config.program_name);
    exit (EXIT_FAILURE);
  }
  dl = dlopen (filename, RTLD_NOW | RTLD_GLOBAL);
  if (dl == NULL) {
    fprintf (stderr, "%s: error: cannot open %s '%s': %s\n",
             config.program_name, type, name, dlerror ());
    fprintf (stderr, "Use '%s --help' or read the nbdkit(1) manual page "
             "for documentation.\n", config.program_name);
    exit (EXIT_FAILURE);
  }
  *filename_ret = filename;
  return dl;
}

/* The plugin, then the filters outermost first, as on the command line. */
void
load_backends (const char *plugin_name, const string_vector *filter_names)
{
  char *filename;
  void *dl;
  struct nbdkit_plugin *(*plugin_init) (void);
  size_t i;

  dl = open_module (plugin_name, "plugin", &filename);
  dlerror ();
  *(void **) &plugin_init = dlsym (dl, "plugin_init");
  if (plugin_init == NULL) {
    fprintf (stderr, "%s: error: %s: not an nbdkit plugin "
             "(no plugin_init symbol): %s\n",
             config.program_name, filename, dlerror ());
    exit (EXIT_FAILURE);
  }
  top = plugin_register (0, filename, dl, plugin_init);
  free (filename);

  /* Filters stack on top in reverse order: the first one named on the
   * command line is the outermost.
   */
  for (i = filter_names->len; i-- > 0; ) {
    struct nbdkit_filter *(*filter_init) (void);

    dl = open_module (filter_names->ptr[i], "filter", &filename);
    dlerror ();
    *(void **) &filter_init = dlsym (dl, "filter_init");
    if (filter_init == NULL) {
      fprintf (stderr, "%s: error: %s: not an nbdkit filter "
               "(no filter_init symbol): %s\n",
               config.program_name, filename, dlerror ());
      exit (EXIT_FAILURE);
    }
    top = filter_register (top, filter_names->len - i, filename, dl,
                           filter_init);
    free (filename);
  }
}

/* The keys of every KEY=VALUE parameter, kept for the server's lifetime. */
static string_vector config_keys = empty_vector;

/* Offer every KEY=VALUE to the chain, outermost layer first.  With
 * DUMP_PLUGIN (--dump-plugin) the parameters are given but config_complete
 * is not called, as upstream does, so that a script plugin loads its
 * script and can describe it.
 */
void
configure_backends (int argc, char *argv[], int first, bool dump_plugin)
{
  const char *magic = top->magic_config_key (top);
  int i;

  for (i = first; i < argc; ++i) {
    char *key;
    const char *value;

    if (parse_plugin_key_value (argv[i], &key, &value) == 0) {
      /* nbdkit-plugin(3): key and value stay valid until the plugin is
       * unloaded, and plugins keep them without copying.
       */
      if (string_vector_append (&config_keys, key) == -1) {
        perror ("realloc");
        exit (EXIT_FAILURE);
      }
      top->config (top, key, value);
    }
    else if (magic != NULL)
      top->config (top, magic, argv[i]);
    else if (i == first)
      top->config (top, "script", argv[i]);
    else
      usage_error ("expecting key=value on the command line but got: %s",
                   argv[i]);
  }
  if (!dump_plugin)
    top->config_complete (top);
}
