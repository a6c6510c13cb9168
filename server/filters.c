/* SPDX-License-Identifier: BSD-3-Clause
 * The filter backend: a layer that calls the filter's callback when it
 * has one and otherwise passes the call to the next layer unchanged.
 * Also the functions filters use to manage next contexts by hand.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "utils.h"

struct backend_filter {
  struct backend backend;
  struct nbdkit_filter filter;  /* our copy of the filter's struct */
};

#define FILTER(b) (&((struct backend_filter *) (b))->filter)

/* The next layer as a filter sees it. */
#define NEXT(c) ((nbdkit_next *) (c)->c_next)

static void
filter_free (struct backend *b)
{
  backend_unload (b, FILTER (b)->unload);
  free (b);
}

static int
filter_thread_model (struct backend *b)
{
  struct nbdkit_filter *f = FILTER (b);
  int model = NBDKIT_THREAD_MODEL_PARALLEL;

  if (f->thread_model) {
    model = f->thread_model ();
    if (model == -1)
      exit (EXIT_FAILURE);
  }
  return model;
}

static const char *
filter_plugin_name (struct backend *b)
{
  return b->next->plugin_name (b->next);
}

static void
print_help_text (const char *text)
{
  size_t len = strlen (text);

  printf ("%s", text);
  if (len == 0 || text[len - 1] != '\n')
    printf ("\n");
}

static void
filter_usage (struct backend *b)
{
  struct nbdkit_filter *f = FILTER (b);

  printf ("filter: %s", b->name);
  if (f->longname)
    printf (" (%s)", f->longname);
  printf ("\n(%s)\n", b->filename);
  if (f->description)
    print_help_text (f->description);
  if (f->config_help)
    print_help_text (f->config_help);
  printf ("\n");
  b->next->usage (b->next);
}

static const char *
filter_version (struct backend *b)
{
  return FILTER (b)->version;
}

static void
filter_dump_fields (struct backend *b)
{
  struct nbdkit_filter *f = FILTER (b);
  char *path = nbdkit_realpath (b->filename);

  b->next->dump_fields (b->next);
  printf ("filter_name=%s\n", b->name);
  printf ("filter_path=%s\n", path ? path : b->filename);
  free (path);
  if (f->version)
    printf ("filter_version=%s\n", f->version);
  printf ("filter_thread_model=%s\n",
          name_of_thread_model (filter_thread_model (b)));
}

/* What a filter calls as `next` during configuration. */
static int
next_config (nbdkit_backend *b, const char *key, const char *value)
{
  b->config (b, key, value);
  return 0;
}

static int
next_config_complete (nbdkit_backend *b)
{
  b->config_complete (b);
  return 0;
}

static void
filter_config (struct backend *b, const char *key, const char *value)
{
  struct nbdkit_filter *f = FILTER (b);

  if (f->config == NULL) {
    b->next->config (b->next, key, value);
    return;
  }
  debug ("%s: config key=%s, value=%s", b->name, key, value);
  threadlocal_set_name (b->name);
  if (f->config (next_config, b->next, key, value) == -1)
    exit (EXIT_FAILURE);
  threadlocal_set_name (NULL);
}

static void
filter_config_complete (struct backend *b)
{
  struct nbdkit_filter *f = FILTER (b);

  if (f->config_complete == NULL) {
    b->next->config_complete (b->next);
    return;
  }
  debug ("%s: config_complete", b->name);
  threadlocal_set_name (b->name);
  if (f->config_complete (next_config_complete, b->next) == -1)
    exit (EXIT_FAILURE);
  threadlocal_set_name (NULL);
}

/* Filters have no magic key: bare values go to the plugin. */
static const char *
filter_magic_config_key (struct backend *b)
{
  return b->next->magic_config_key (b->next);
}

static void
filter_get_ready (struct backend *b)
{
  struct nbdkit_filter *f = FILTER (b);

  threadlocal_set_name (b->name);
  if (f->get_ready && f->get_ready (thread_model) == -1)
    exit (EXIT_FAILURE);
  threadlocal_set_name (NULL);
  b->next->get_ready (b->next);
}

/* The plugin first, so a filter may open background contexts into a
 * ready chain.
 */
static void
filter_after_fork (struct backend *b)
{
  struct nbdkit_filter *f = FILTER (b);

  b->next->after_fork (b->next);
  threadlocal_set_name (b->name);
  if (f->after_fork && f->after_fork (b->next) == -1)
    exit (EXIT_FAILURE);
  threadlocal_set_name (NULL);
}

static void
filter_cleanup (struct backend *b)
{
  struct nbdkit_filter *f = FILTER (b);

  threadlocal_set_name (b->name);
  if (f->cleanup)
    f->cleanup (b->next);
  threadlocal_set_name (NULL);
  b->next->cleanup (b->next);
}

static int
next_preconnect (nbdkit_backend *b, int readonly)
{
  return b->preconnect (b, readonly);
}

static int
filter_preconnect (struct backend *b, int readonly)
{
  struct nbdkit_filter *f = FILTER (b);
  int r;

  if (f->preconnect == NULL)
    return b->next->preconnect (b->next, readonly);
  threadlocal_set_name (b->name);
  r = f->preconnect (next_preconnect, b->next, readonly);
  threadlocal_set_name (NULL);
  return r;
}

static int
next_list_exports (nbdkit_backend *b, int readonly,
                   struct nbdkit_exports *exports)
{
  return backend_list_exports (b, readonly, exports);
}

static int
filter_list_exports (struct backend *b, int readonly, int is_tls,
                     struct nbdkit_exports *exports)
{
  struct nbdkit_filter *f = FILTER (b);

  if (f->list_exports == NULL)
    return backend_list_exports (b->next, readonly, exports);
  return f->list_exports (next_list_exports, b->next, readonly, is_tls,
                          exports);
}

static const char *
next_default_export (nbdkit_backend *b, int readonly)
{
  return backend_default_export (b, readonly);
}

static const char *
filter_default_export (struct backend *b, int readonly, int is_tls)
{
  struct nbdkit_filter *f = FILTER (b);

  if (f->default_export == NULL)
    return backend_default_export (b->next, readonly);
  return f->default_export (next_default_export, b->next, readonly, is_tls);
}

/* What a filter calls as `next` in .open: open the layer below and link
 * it to this context.
 */
static int
next_open (nbdkit_context *c, int readonly, const char *exportname)
{
  struct connection *conn = threadlocal_get_conn ();
  struct context *c_next;

  c_next = backend_open (c->b->next, readonly, exportname,
                         conn ? conn->using_tls : 0);
  if (c_next == NULL)
    return -1;
  c->c_next = c_next;
  return 0;
}

static void *
filter_open (struct context *c, int readonly, const char *exportname,
             int is_tls)
{
  struct nbdkit_filter *f = FILTER (c->b);

  if (f->open)
    return f->open (next_open, c, readonly, exportname, is_tls);
  if (next_open (c, readonly, exportname) == -1)
    return NULL;
  return NBDKIT_HANDLE_NOT_NEEDED;
}

static int
filter_prepare (struct context *c)
{
  struct nbdkit_filter *f = FILTER (c->b);

  return f->prepare ? f->prepare (NEXT (c), c->handle, c->readonly) : 0;
}

static int
filter_finalize (struct context *c)
{
  struct nbdkit_filter *f = FILTER (c->b);

  return f->finalize ? f->finalize (NEXT (c), c->handle) : 0;
}

static void
filter_close (struct context *c)
{
  struct nbdkit_filter *f = FILTER (c->b);

  if (f->close)
    f->close (c->handle);
}

static const char *
filter_export_description (struct context *c)
{
  struct nbdkit_filter *f = FILTER (c->b);

  if (f->export_description)
    return f->export_description (NEXT (c), c->handle);
  return backend_export_description (c->c_next);
}

static int64_t
filter_get_size (struct context *c)
{
  struct nbdkit_filter *f = FILTER (c->b);

  if (f->get_size)
    return f->get_size (NEXT (c), c->handle);
  return backend_get_size (c->c_next);
}

static int
filter_block_size (struct context *c, uint32_t *minimum, uint32_t *preferred,
                   uint32_t *maximum)
{
  struct nbdkit_filter *f = FILTER (c->b);

  if (f->block_size)
    return f->block_size (NEXT (c), c->handle, minimum, preferred, maximum);
  return backend_block_size (c->c_next, minimum, preferred, maximum);
}

/* Generates filter_NAME for the can_* questions. */
#define DEFINE_FILTER_CAN(cap)                                          \
  static int                                                            \
  filter_##cap (struct context *c)                                      \
  {                                                                     \
    struct nbdkit_filter *f = FILTER (c->b);                            \
    if (f->cap)                                                         \
      return f->cap (NEXT (c), c->handle);                              \
    return backend_##cap (c->c_next);                                   \
  }

DEFINE_FILTER_CAN (can_write)
DEFINE_FILTER_CAN (can_flush)
DEFINE_FILTER_CAN (is_rotational)
DEFINE_FILTER_CAN (can_trim)
DEFINE_FILTER_CAN (can_zero)
DEFINE_FILTER_CAN (can_fast_zero)
DEFINE_FILTER_CAN (can_extents)
DEFINE_FILTER_CAN (can_fua)
DEFINE_FILTER_CAN (can_multi_conn)
DEFINE_FILTER_CAN (can_cache)

static int
filter_pread (struct context *c, void *buf, uint32_t count, uint64_t offset,
              uint32_t flags, int *err)
{
  struct nbdkit_filter *f = FILTER (c->b);

  if (f->pread)
    return f->pread (NEXT (c), c->handle, buf, count, offset, flags, err);
  return backend_pread (c->c_next, buf, count, offset, flags, err);
}

static int
filter_pwrite (struct context *c, const void *buf, uint32_t count,
               uint64_t offset, uint32_t flags, int *err)
{
  struct nbdkit_filter *f = FILTER (c->b);

  if (f->pwrite)
    return f->pwrite (NEXT (c), c->handle, buf, count, offset, flags, err);
  return backend_pwrite (c->c_next, buf, count, offset, flags, err);
}

static int
filter_flush (struct context *c, uint32_t flags, int *err)
{
  struct nbdkit_filter *f = FILTER (c->b);

  if (f->flush)
    return f->flush (NEXT (c), c->handle, flags, err);
  return backend_flush (c->c_next, flags, err);
}

static int
filter_trim (struct context *c, uint32_t count, uint64_t offset,
             uint32_t flags, int *err)
{
  struct nbdkit_filter *f = FILTER (c->b);

  if (f->trim)
    return f->trim (NEXT (c), c->handle, count, offset, flags, err);
  return backend_trim (c->c_next, count, offset, flags, err);
}

static int
filter_zero (struct context *c, uint32_t count, uint64_t offset,
             uint32_t flags, int *err)
{
  struct nbdkit_filter *f = FILTER (c->b);

  if (f->zero)
    return f->zero (NEXT (c), c->handle, count, offset, flags, err);
  if (c->can_zero == NBDKIT_ZERO_EMULATE)
    return backend_emulate_zero (c, count, offset, flags, err);
  return backend_zero (c->c_next, count, offset, flags, err);
}

static int
filter_extents (struct context *c, uint32_t count, uint64_t offset,
                uint32_t flags, struct nbdkit_extents *extents, int *err)
{
  struct nbdkit_filter *f = FILTER (c->b);

  if (f->extents)
    return f->extents (NEXT (c), c->handle, count, offset, flags, extents,
                       err);
  return backend_extents (c->c_next, count, offset, flags, extents, err);
}

static int
filter_cache (struct context *c, uint32_t count, uint64_t offset,
              uint32_t flags, int *err)
{
  struct nbdkit_filter *f = FILTER (c->b);

  if (f->cache)
    return f->cache (NEXT (c), c->handle, count, offset, flags, err);
  return backend_cache (c->c_next, count, offset, flags, err);
}

/* Managing next contexts by hand (nbdkit-filter(3)). */

NBDKIT_DLL_PUBLIC nbdkit_backend *
nbdkit_context_get_backend (nbdkit_context *c)
{
  return c->b->next;
}

NBDKIT_DLL_PUBLIC nbdkit_next *
nbdkit_next_context_open (nbdkit_backend *b, int readonly,
                          const char *exportname, int shared)
{
  struct connection *conn = threadlocal_get_conn ();
  struct context *c;

  if (b == NULL) {
    nbdkit_error ("nbdkit_next_context_open: no backend");
    return NULL;
  }
  if (!shared && conn == NULL) {
    nbdkit_error ("nbdkit_next_context_open: a non-shared context needs "
                  "a client connection");
    return NULL;
  }
  if (shared) {
    /* Not tied to any client: no export name or TLS state of theirs. */
    threadlocal_set_conn (NULL);
    c = backend_open (b, readonly, exportname, config.tls == TLS_REQUIRE);
    threadlocal_set_conn (conn);
  }
  else
    c = backend_open (b, readonly, exportname, conn->using_tls);
  return (nbdkit_next *) c;
}

NBDKIT_DLL_PUBLIC void
nbdkit_next_context_close (nbdkit_next *next)
{
  if (next)
    backend_close ((struct context *) next);
}

NBDKIT_DLL_PUBLIC nbdkit_next *
nbdkit_context_set_next (nbdkit_context *c, nbdkit_next *next)
{
  struct context *old = c->c_next;

  c->c_next = (struct context *) next;
  return (nbdkit_next *) old;
}

/* The filter API is not stable across versions: refuse, with one line
 * naming the file and the reason, a filter not built with the headers of
 * this very server.  The version string is only read once the API number
 * has matched, so a foreign layout is never dereferenced.
 */
static void
filter_check_registration (const char *filename,
                           const struct nbdkit_filter *src)
{
  if (src == NULL) {
    fprintf (stderr, "%s: error: %s: cannot load this filter: its "
             "registration function filter_init returned NULL\n",
             config.program_name, filename);
    exit (EXIT_FAILURE);
  }
  if (src->_api_version != NBDKIT_FILTER_API_VERSION) {
    fprintf (stderr, "%s: error: %s: cannot load this filter: it uses "
             "filter API version %d, this server %d (filters must be built "
             "for the exact nbdkit version that loads them)\n",
             config.program_name, filename, src->_api_version,
             NBDKIT_FILTER_API_VERSION);
    exit (EXIT_FAILURE);
  }
  if (src->_version == NULL ||
      strcmp (src->_version, NBDKIT_VERSION_STRING) != 0) {
    fprintf (stderr, "%s: error: %s: cannot load this filter: it was "
             "built for nbdkit %.32s, this server is %s (filters must be "
             "built for the exact nbdkit version that loads them)\n",
             config.program_name, filename,
             src->_version ? src->_version : "(unknown)",
             NBDKIT_VERSION_STRING);
    exit (EXIT_FAILURE);
  }
  if (src->name == NULL || src->name[0] == '\0') {
    fprintf (stderr, "%s: error: %s: cannot load this filter: it has no "
             "name\n", config.program_name, filename);
    exit (EXIT_FAILURE);
  }
}

struct backend *
filter_register (struct backend *next, size_t index, const char *filename,
                 void *dl, struct nbdkit_filter *(*filter_init) (void))
{
  struct backend_filter *bf;
  const struct nbdkit_filter *src;
  struct backend *b;

  bf = calloc (1, sizeof *bf);
  if (bf == NULL) {
    perror ("calloc");
    exit (EXIT_FAILURE);
  }
  b = &bf->backend;
  backend_init (b, next, index, filename, dl, "filter");

  src = filter_init ();
  filter_check_registration (filename, src);
  memcpy (&bf->filter, src, sizeof bf->filter);

  b->free = filter_free;
  b->thread_model = filter_thread_model;
  b->plugin_name = filter_plugin_name;
  b->usage = filter_usage;
  b->version = filter_version;
  b->dump_fields = filter_dump_fields;
  b->config = filter_config;
  b->config_complete = filter_config_complete;
  b->magic_config_key = filter_magic_config_key;
  b->get_ready = filter_get_ready;
  b->after_fork = filter_after_fork;
  b->cleanup = filter_cleanup;
  b->preconnect = filter_preconnect;
  b->list_exports = filter_list_exports;
  b->default_export = filter_default_export;
  b->open = filter_open;
  b->prepare = filter_prepare;
  b->finalize = filter_finalize;
  b->close = filter_close;
  b->export_description = filter_export_description;
  b->get_size = filter_get_size;
  b->block_size = filter_block_size;
  b->can_write = filter_can_write;
  b->can_flush = filter_can_flush;
  b->is_rotational = filter_is_rotational;
  b->can_trim = filter_can_trim;
  b->can_zero = filter_can_zero;
  b->can_fast_zero = filter_can_fast_zero;
  b->can_extents = filter_can_extents;
  b->can_fua = filter_can_fua;
  b->can_multi_conn = filter_can_multi_conn;
  b->can_cache = filter_can_cache;
  b->pread = filter_pread;
  b->pwrite = filter_pwrite;
  b->flush = filter_flush;
  b->trim = filter_trim;
  b->zero = filter_zero;
  b->extents = filter_extents;
  b->cache = filter_cache;

  backend_load (b, bf->filter.name, bf->filter.load);
  return b;
}
