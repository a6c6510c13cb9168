/* SPDX-License-Identifier: BSD-3-Clause
 * The plugin backend: the innermost layer of the chain.  It checks and
 * copies the plugin's registration and supplies the documented defaults
 * for callbacks a plugin leaves out (the data operations, with their
 * emulations, are in plugins-data.c).
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins-internal.h"
#include "utils.h"

static void
plugin_free (struct backend *b)
{
  backend_unload (b, PLUGIN (b)->unload);
  free (b);
}

static int
plugin_thread_model (struct backend *b)
{
  struct nbdkit_plugin *p = PLUGIN (b);
  int model = p->_thread_model;

  if (p->thread_model) {
    int r = p->thread_model ();
    if (r == -1)
      exit (EXIT_FAILURE);
    /* The callback may only make the model stricter. */
    if (r < model)
      model = r;
  }
  return model;
}

static const char *
plugin_name (struct backend *b)
{
  return b->name;
}

static void
plugin_usage (struct backend *b)
{
  struct nbdkit_plugin *p = PLUGIN (b);
  const char *t;

  printf ("plugin: %s", b->name);
  if (p->longname)
    printf (" (%s)", p->longname);
  printf ("\n");
  printf ("(%s)\n", b->filename);
  if (p->description) {
    printf ("%s", p->description);
    if ((t = strrchr (p->description, '\n')) == NULL || t[1])
      printf ("\n");
  }
  if (p->config_help) {
    printf ("%s", p->config_help);
    if ((t = strrchr (p->config_help, '\n')) == NULL || t[1])
      printf ("\n");
  }
}

static const char *
plugin_version (struct backend *b)
{
  return PLUGIN (b)->version;
}

static void
plugin_dump_fields (struct backend *b)
{
  struct nbdkit_plugin *p = PLUGIN (b);
  char *path = nbdkit_realpath (b->filename);

  printf ("path=%s\n", path ? path : b->filename);
  free (path);
  printf ("name=%s\n", b->name);
  if (p->version)
    printf ("version=%s\n", p->version);
  printf ("api_version=%d\n", p->_api_version);
  printf ("struct_size=%" PRIu64 "\n", p->_struct_size);
  printf ("max_thread_model=%s\n", name_of_thread_model (p->_thread_model));
  printf ("thread_model=%s\n", name_of_thread_model (plugin_thread_model (b)));
  printf ("errno_is_preserved=%d\n", !!p->errno_is_preserved);
  if (p->magic_config_key)
    printf ("magic_config_key=%s\n", p->magic_config_key);

#define HAS(field) if (p->field) printf ("has_%s=1\n", #field)
  HAS (longname); HAS (description); HAS (load); HAS (unload);
  HAS (dump_plugin); HAS (config); HAS (config_complete); HAS (config_help);
  HAS (thread_model); HAS (get_ready); HAS (after_fork); HAS (cleanup);
  HAS (preconnect); HAS (list_exports); HAS (default_export);
  HAS (open); HAS (close); HAS (export_description); HAS (get_size);
  HAS (block_size); HAS (can_write); HAS (can_flush); HAS (is_rotational);
  HAS (can_trim); HAS (can_zero); HAS (can_fast_zero); HAS (can_extents);
  HAS (can_fua); HAS (can_multi_conn); HAS (can_cache);
  HAS (pread); HAS (pwrite); HAS (flush); HAS (trim); HAS (zero);
  HAS (extents); HAS (cache);
#undef HAS

  if (p->dump_plugin) {
    fflush (stdout);
    p->dump_plugin ();
    fflush (stdout);
  }
}

static void
plugin_config (struct backend *b, const char *key, const char *value)
{
  struct nbdkit_plugin *p = PLUGIN (b);

  debug ("%s: config key=%s, value=%s", b->name, key, value);
  if (p->config == NULL) {
    fprintf (stderr, "%s: %s: this plugin does not need command line "
             "configuration\n"
             "Try using: %s --help %s\n",
             config.program_name, b->filename, config.program_name, b->name);
    exit (EXIT_FAILURE);
  }
  threadlocal_set_name (b->name);
  if (p->config (key, value) == -1)
    exit (EXIT_FAILURE);
  threadlocal_set_name (NULL);
}

static void
plugin_config_complete (struct backend *b)
{
  struct nbdkit_plugin *p = PLUGIN (b);

  debug ("%s: config_complete", b->name);
  threadlocal_set_name (b->name);
  if (p->config_complete && p->config_complete () == -1)
    exit (EXIT_FAILURE);
  threadlocal_set_name (NULL);
}

static const char *
plugin_magic_config_key (struct backend *b)
{
  return PLUGIN (b)->magic_config_key;
}

static void
plugin_get_ready (struct backend *b)
{
  struct nbdkit_plugin *p = PLUGIN (b);

  debug ("%s: get_ready", b->name);
  threadlocal_set_name (b->name);
  if (p->get_ready && p->get_ready () == -1)
    exit (EXIT_FAILURE);
  threadlocal_set_name (NULL);
}

static void
plugin_after_fork (struct backend *b)
{
  struct nbdkit_plugin *p = PLUGIN (b);

  debug ("%s: after_fork", b->name);
  threadlocal_set_name (b->name);
  if (p->after_fork && p->after_fork () == -1)
    exit (EXIT_FAILURE);
  threadlocal_set_name (NULL);
}

static void
plugin_cleanup (struct backend *b)
{
  struct nbdkit_plugin *p = PLUGIN (b);

  debug ("%s: cleanup", b->name);
  threadlocal_set_name (b->name);
  if (p->cleanup)
    p->cleanup ();
  threadlocal_set_name (NULL);
}

static int
plugin_preconnect (struct backend *b, int readonly)
{
  struct nbdkit_plugin *p = PLUGIN (b);

  return p->preconnect ? p->preconnect (readonly) : 0;
}

static int
plugin_list_exports (struct backend *b, int readonly, int is_tls,
                     struct nbdkit_exports *exports)
{
  struct nbdkit_plugin *p = PLUGIN (b);

  if (p->list_exports == NULL)
    return nbdkit_use_default_export (exports);
  return p->list_exports (readonly, is_tls, exports);
}

static const char *
plugin_default_export (struct backend *b, int readonly, int is_tls)
{
  struct nbdkit_plugin *p = PLUGIN (b);

  if (p->default_export == NULL)
    return "";
  return p->default_export (readonly, is_tls);
}

static void *
plugin_open (struct context *c, int readonly, const char *exportname,
             int is_tls)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);

  if (p->open == NULL)
    return NBDKIT_HANDLE_NOT_NEEDED;
  return p->open (readonly);
}

static int
plugin_prepare (struct context *c)
{
  return 0;
}

static int
plugin_finalize (struct context *c)
{
  return 0;
}

static void
plugin_close (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);

  if (p->close)
    p->close (c->handle);
}

static const char *
plugin_export_description (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);

  return p->export_description ? p->export_description (c->handle) : NULL;
}

static int64_t
plugin_get_size (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  int64_t r = p->get_size (c->handle);

  if (r < -1) {
    nbdkit_error ("%s: get_size returned an invalid size %" PRIi64,
                  c->b->name, r);
    return -1;
  }
  return r;
}

static int
plugin_block_size (struct context *c, uint32_t *minimum,
                   uint32_t *preferred, uint32_t *maximum)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);

  *minimum = *preferred = *maximum = 0;
  if (p->block_size == NULL)
    return 0;
  if (p->block_size (c->handle, minimum, preferred, maximum) == -1)
    return -1;
  if (*minimum == 0 && *preferred == 0 && *maximum == 0)
    return 0;
  /* nbd-protocol.md "Size constraints". */
  if (!is_power_of_2 (*minimum) || *minimum > 65536 ||
      !is_power_of_2 (*preferred) || *preferred < 512 ||
      *preferred < *minimum || *preferred > 32 * 1024 * 1024 ||
      (*maximum != 0xffffffff && (*maximum < *preferred ||
                                  *maximum % *minimum != 0))) {
    nbdkit_error ("%s: block_size: invalid constraints: minimum=%" PRIu32
                  " preferred=%" PRIu32 " maximum=%" PRIu32, c->b->name,
                  *minimum, *preferred, *maximum);
    return -1;
  }
  return 0;
}

/* A can_* callback if present, otherwise whether the operation exists. */
static int
call_can (int (*can) (void *), void *handle, bool fallback)
{
  return can ? can (handle) : fallback;
}

static int
plugin_can_write (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  return call_can (p->can_write, c->handle, p->pwrite != NULL);
}

static int
plugin_can_flush (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  return call_can (p->can_flush, c->handle, p->flush != NULL);
}

static int
plugin_is_rotational (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  return call_can (p->is_rotational, c->handle, false);
}

static int
plugin_can_trim (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  return call_can (p->can_trim, c->handle, p->trim != NULL);
}

/* Zeroing is always possible on a writable export: the plugin's zero,
 * else writes of zeroes.
 */
static int
plugin_can_zero (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);

  if (p->can_zero) {
    int r = p->can_zero (c->handle);
    if (r == -1)
      return -1;
    return r && p->zero ? NBDKIT_ZERO_NATIVE : NBDKIT_ZERO_EMULATE;
  }
  return p->zero ? NBDKIT_ZERO_NATIVE : NBDKIT_ZERO_EMULATE;
}

/* Without a native zero, a fast zero request fails at once (ENOTSUP),
 * which counts as fast.
 */
static int
plugin_can_fast_zero (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);

  if (p->can_fast_zero && !is_v1 (p))
    return p->can_fast_zero (c->handle);
  return backend_can_zero (c) == NBDKIT_ZERO_EMULATE;
}

static int
plugin_can_extents (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  return call_can (p->can_extents, c->handle, p->extents != NULL);
}

static int
plugin_can_fua (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  int r;

  if (p->can_fua) {
    r = p->can_fua (c->handle);
    if (r == -1)
      return -1;
    if (r < NBDKIT_FUA_NONE || r > NBDKIT_FUA_NATIVE) {
      nbdkit_error ("%s: can_fua returned an invalid value %d",
                    c->b->name, r);
      return -1;
    }
    /* Version 1 callbacks cannot receive the flag. */
    if (r == NBDKIT_FUA_NATIVE && is_v1 (p))
      r = NBDKIT_FUA_EMULATE;
    if (r == NBDKIT_FUA_EMULATE && backend_can_flush (c) != 1)
      r = NBDKIT_FUA_NONE;
    return r;
  }
  r = backend_can_flush (c);
  if (r == -1)
    return -1;
  return r ? NBDKIT_FUA_EMULATE : NBDKIT_FUA_NONE;
}

static int
plugin_can_multi_conn (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);
  return call_can (p->can_multi_conn, c->handle, false);
}

static int
plugin_can_cache (struct context *c)
{
  struct nbdkit_plugin *p = PLUGIN (c->b);

  if (p->can_cache) {
    int r = p->can_cache (c->handle);
    if (r != -1 && (r < NBDKIT_CACHE_NONE || r > NBDKIT_CACHE_NATIVE)) {
      nbdkit_error ("%s: can_cache returned an invalid value %d",
                    c->b->name, r);
      return -1;
    }
    if (r == NBDKIT_CACHE_NATIVE && p->cache == NULL)
      r = NBDKIT_CACHE_EMULATE;
    return r;
  }
  return p->cache ? NBDKIT_CACHE_NATIVE : NBDKIT_CACHE_NONE;
}

/* The smallest registration any version of the API ever produced: the
 * original table ended with the version 1 zero callback.
 */
#define PLUGIN_STRUCT_MIN_SIZE \
  (offsetof (struct nbdkit_plugin, _zero_v1) + sizeof (void (*) (void)))

/* Refuse a registration this server cannot read, with one line naming
 * the file and the reason, before any field past the fixed header is
 * trusted.
 */
static void
plugin_check_registration (const char *filename,
                           const struct nbdkit_plugin *src)
{
  const char *why = NULL;
  char detail[128] = "";

  if (src == NULL)
    why = "its registration function plugin_init returned NULL";
  else if (src->_api_version < 1 || src->_api_version > NBDKIT_API_VERSION) {
    why = "it uses an unsupported plugin API version";
    snprintf (detail, sizeof detail, " (%d; this server supports 1 to %d)",
              src->_api_version, NBDKIT_API_VERSION);
  }
  else if (src->_struct_size < PLUGIN_STRUCT_MIN_SIZE ||
           src->_struct_size > sizeof (struct nbdkit_plugin) ||
           src->_struct_size % sizeof (void *) != 0) {
    why = "its plugin struct size does not match any version of the API "
      "(it was built for an incompatible or newer nbdkit)";
    snprintf (detail, sizeof detail, " (%" PRIu64 " bytes; this server "
              "reads %zu to %zu)", src->_struct_size,
              (size_t) PLUGIN_STRUCT_MIN_SIZE, sizeof (struct nbdkit_plugin));
  }
  else if (src->_thread_model < NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS ||
           src->_thread_model > NBDKIT_THREAD_MODEL_PARALLEL) {
    why = "it declares an unknown thread model";
    snprintf (detail, sizeof detail, " (%d)", src->_thread_model);
  }
  else if (src->name == NULL || src->name[0] == '\0')
    why = "it has no name";
  if (why == NULL)
    return;
  fprintf (stderr, "%s: error: %s: cannot load this plugin: %s%s\n",
           config.program_name, filename, why, detail);
  exit (EXIT_FAILURE);
}

struct backend *
plugin_register (size_t index, const char *filename, void *dl,
                 struct nbdkit_plugin *(*plugin_init) (void))
{
  struct backend_plugin *bp;
  const struct nbdkit_plugin *src;
  struct backend *b;
  size_t size;

  bp = calloc (1, sizeof *bp);
  if (bp == NULL) {
    perror ("calloc");
    exit (EXIT_FAILURE);
  }
  b = &bp->backend;
  backend_init (b, NULL, index, filename, dl, "plugin");

  src = plugin_init ();
  plugin_check_registration (filename, src);
  /* A plugin built against older headers has a shorter struct: the
   * fields it does not know stay NULL in our copy.
   */
  size = MIN (src->_struct_size, sizeof bp->plugin);
  memcpy (&bp->plugin, src, size);
  if (is_v1 (&bp->plugin)) {
    /* Version 1 callbacks live in their own slots; keep them in the
     * version 2 fields and cast them back when calling (is_v1).
     */
    struct nbdkit_plugin *p = &bp->plugin;
    p->pread = (void *) p->_pread_v1;
    p->pwrite = (void *) p->_pwrite_v1;
    p->flush = (void *) p->_flush_v1;
    p->trim = (void *) p->_trim_v1;
    p->zero = (void *) p->_zero_v1;
  }
  if (bp->plugin.get_size == NULL || bp->plugin.pread == NULL) {
    fprintf (stderr, "%s: %s: plugin must have .get_size and .pread "
             "callbacks\n", config.program_name, filename);
    exit (EXIT_FAILURE);
  }

  b->free = plugin_free;
  b->thread_model = plugin_thread_model;
  b->plugin_name = plugin_name;
  b->usage = plugin_usage;
  b->version = plugin_version;
  b->dump_fields = plugin_dump_fields;
  b->config = plugin_config;
  b->config_complete = plugin_config_complete;
  b->magic_config_key = plugin_magic_config_key;
  b->get_ready = plugin_get_ready;
  b->after_fork = plugin_after_fork;
  b->cleanup = plugin_cleanup;
  b->preconnect = plugin_preconnect;
  b->list_exports = plugin_list_exports;
  b->default_export = plugin_default_export;
  b->open = plugin_open;
  b->prepare = plugin_prepare;
  b->finalize = plugin_finalize;
  b->close = plugin_close;
  b->export_description = plugin_export_description;
  b->get_size = plugin_get_size;
  b->block_size = plugin_block_size;
  b->can_write = plugin_can_write;
  b->can_flush = plugin_can_flush;
  b->is_rotational = plugin_is_rotational;
  b->can_trim = plugin_can_trim;
  b->can_zero = plugin_can_zero;
  b->can_fast_zero = plugin_can_fast_zero;
  b->can_extents = plugin_can_extents;
  b->can_fua = plugin_can_fua;
  b->can_multi_conn = plugin_can_multi_conn;
  b->can_cache = plugin_can_cache;
  b->pread = plugin_pread;
  b->pwrite = plugin_pwrite;
  b->flush = plugin_flush;
  b->trim = plugin_trim;
  b->zero = plugin_zero;
  b->extents = plugin_extents;
  b->cache = plugin_cache;

  backend_load (b, bp->plugin.name, bp->plugin.load);
  return b;
}
