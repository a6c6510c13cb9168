/* SPDX-License-Identifier: BSD-3-Clause
 * The backend layer: every call into a filter or plugin goes through here.
 * It asserts the caller's preconditions, caches the can_* answers per
 * context, sets the message context and writes the debug trace (the
 * data operations are in backend-data.c).
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend-internal.h"
#include "cleanup.h"
#include "nbd-protocol.h"
#include "utils.h"

void
backend_init (struct backend *b, struct backend *next, size_t i,
              const char *filename, void *dl, const char *type)
{
  b->next = next;
  b->i = i;
  b->type = type;
  b->filename = strdup (filename);
  if (b->filename == NULL) {
    perror ("strdup");
    exit (EXIT_FAILURE);
  }
  b->dl = dl;
}

/* Check the name a plugin or filter gave itself, then call its load. */
void
backend_load (struct backend *b, const char *name, void (*load) (void))
{
  size_t i, len;

  if (name == NULL || *name == '\0') {
    fprintf (stderr, "%s: %s: %s must have a .name field\n",
             config.program_name, b->filename, b->type);
    exit (EXIT_FAILURE);
  }
  len = strlen (name);
  for (i = 0; i < len; ++i) {
    unsigned char c = name[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
          (c >= 'A' && c <= 'Z') || c == '-' || c == '_')) {
      fprintf (stderr, "%s: %s: %s.name ('%s') field must contain only "
               "ASCII letters, digits, '-' and '_'\n",
               config.program_name, b->filename, b->type, name);
      exit (EXIT_FAILURE);
    }
  }
  b->name = strdup (name);
  if (b->name == NULL) {
    perror ("strdup");
    exit (EXIT_FAILURE);
  }
  apply_debug_flags (b->dl, name);
  threadlocal_set_name (b->name);
  if (load) {
    debug ("%s: load", name);
    load ();
  }
  threadlocal_set_name (NULL);
}

void
backend_unload (struct backend *b, void (*unload) (void))
{
  threadlocal_set_name (b->name);
  if (unload) {
    debug ("%s: unload %s", b->name, b->type);
    unload ();
  }
  threadlocal_set_name (NULL);
  /* The module is not dlclose'd: the process is about to exit, and a
   * library the module pulled in (libnbd, say) may still have
   * thread-specific data whose destructors must not vanish.
   */
  free (b->name);
  free (b->filename);
}

int
backend_list_exports (struct backend *b, int readonly,
                      struct nbdkit_exports *exports)
{
  struct connection *conn = threadlocal_get_conn ();
  int is_tls = conn ? conn->using_tls : 0;

  controlpath_debug ("%s: list_exports readonly=%d tls=%d",
                     b->name, readonly, is_tls);
  if (IN_LAYER (b, b->list_exports (b, readonly, is_tls, exports)) == -1)
    return -1;
  return exports_resolve_default (exports, b, readonly);
}

/* The canonical name of the default export "", cached per connection for
 * the outermost layer.
 */
const char *
backend_default_export (struct backend *b, int readonly)
{
  struct connection *conn = threadlocal_get_conn ();
  int is_tls = conn ? conn->using_tls : 0;
  const char *s;

  if (conn && b == top && conn->default_exportname)
    return conn->default_exportname;
  controlpath_debug ("%s: default_export readonly=%d tls=%d",
                     b->name, readonly, is_tls);
  s = IN_LAYER (b, b->default_export (b, readonly, is_tls));
  /* Keep our own copy: the plugin's string may not outlive the call. */
  if (s) {
    if (strlen (s) > NBD_MAX_STRING) {
      nbdkit_error ("%s: default export name is too long", b->name);
      return NULL;
    }
    s = nbdkit_strdup_intern (s);
  }
  if (conn && b == top)
    conn->default_exportname = s;
  return s;
}

static const struct nbdkit_next_ops next_ops;

struct context *
backend_open (struct backend *b, int readonly, const char *exportname,
              int is_tls)
{
  struct context *c = calloc (1, sizeof *c);

  if (c == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  c->next = next_ops;
  c->b = b;
  c->conn = threadlocal_get_conn ();
  c->readonly = readonly;
  c->exportsize = -1;
  c->can_write = c->can_flush = c->is_rotational = c->can_trim = -1;
  c->can_zero = c->can_fast_zero = c->can_fua = c->can_multi_conn = -1;
  c->can_extents = c->can_cache = -1;

  controlpath_debug ("%s: open readonly=%d exportname=\"%s\" tls=%d",
                     b->name, readonly, exportname, is_tls);
  c->handle = IN_LAYER (b, b->open (c, readonly, exportname, is_tls));
  if (c->handle == NULL) {
    if (c->c_next)
      backend_close (c->c_next);
    free (c);
    return NULL;
  }
  c->state = CONTEXT_OPEN;
  return c;
}

int
backend_prepare (struct context *c)
{
  struct backend *b = c->b;

  assert (c->state & CONTEXT_OPEN);
  if (c->state & (CONTEXT_CONNECTED | CONTEXT_FAILED))
    return c->state & CONTEXT_FAILED ? -1 : 0;
  /* Prepare from the plugin outward. */
  if (c->c_next && backend_prepare (c->c_next) == -1)
    return -1;
  controlpath_debug ("%s: prepare readonly=%d", b->name, c->readonly);
  if (IN_LAYER (b, b->prepare (c)) == -1) {
    c->state |= CONTEXT_FAILED;
    return -1;
  }
  c->state |= CONTEXT_CONNECTED;
  return 0;
}

int
backend_finalize (struct context *c)
{
  struct backend *b = c->b;

  if (c->state & CONTEXT_FAILED)
    return -1;
  if (c->state & CONTEXT_CONNECTED) {
    controlpath_debug ("%s: finalize", b->name);
    if (IN_LAYER (b, b->finalize (c)) == -1) {
      c->state |= CONTEXT_FAILED;
      return -1;
    }
  }
  /* Finalize from the outermost layer inward. */
  if (c->c_next)
    return backend_finalize (c->c_next);
  return 0;
}

void
backend_close (struct context *c)
{
  struct backend *b = c->b;
  struct context *c_next = c->c_next;

  assert (c->state & CONTEXT_OPEN);
  controlpath_debug ("%s: close", b->name);
  threadlocal_set_name (b->name);
  b->close (c);
  threadlocal_set_name (NULL);
  free (c);
  if (c_next)
    backend_close (c_next);
}

bool
backend_valid_range (struct context *c, uint64_t offset, uint32_t count)
{
  assert (c->exportsize >= 0);
  return count > 0 && offset <= (uint64_t) c->exportsize &&
    offset + count <= (uint64_t) c->exportsize;
}

/* Connection-time queries, cached in the context. */

const char *
backend_export_description (struct context *c)
{
  struct backend *b = c->b;
  const char *s;

  assert (c->state & CONTEXT_CONNECTED);
  controlpath_debug ("%s: export_description", b->name);
  s = IN_LAYER (b, b->export_description (c));
  if (s && strlen (s) > NBD_MAX_STRING) {
    nbdkit_error ("%s: export description is too long, ignoring", b->name);
    s = NULL;
  }
  return s;
}

int64_t
backend_get_size (struct context *c)
{
  struct backend *b = c->b;

  assert (c->state & CONTEXT_CONNECTED);
  if (c->exportsize == -1) {
    controlpath_debug ("%s: get_size", b->name);
    c->exportsize = IN_LAYER (b, b->get_size (c));
  }
  return c->exportsize;
}

int
backend_block_size (struct context *c, uint32_t *minimum,
                    uint32_t *preferred, uint32_t *maximum)
{
  struct backend *b = c->b;

  assert (c->state & CONTEXT_CONNECTED);
  if (!c->block_size_known) {
    controlpath_debug ("%s: block_size", b->name);
    if (IN_LAYER (b, b->block_size (c, &c->minimum_block_size,
                                    &c->preferred_block_size,
                                    &c->maximum_block_size)) == -1)
      return -1;
    c->block_size_known = true;
  }
  *minimum = c->minimum_block_size;
  *preferred = c->preferred_block_size;
  *maximum = c->maximum_block_size;
  return 0;
}

/* Generates backend_can_NAME: ask once, then answer from the cache. */
#define DEFINE_BACKEND_CAN(cap)                                        \
  int                                                                   \
  backend_##cap (struct context *c)                                    \
  {                                                                     \
    struct backend *b = c->b;                                           \
    assert (c->state & CONTEXT_CONNECTED);                              \
    if (c->cap == -1) {                                                \
      controlpath_debug ("%s: " #cap, b->name);                        \
      c->cap = IN_LAYER (b, b->cap (c));                              \
    }                                                                   \
    return c->cap;                                                     \
  }

DEFINE_BACKEND_CAN (can_flush)
DEFINE_BACKEND_CAN (is_rotational)
DEFINE_BACKEND_CAN (can_multi_conn)
DEFINE_BACKEND_CAN (can_extents)
DEFINE_BACKEND_CAN (can_cache)

/* Write-related answers are "no" on a read-only context. */
#define DEFINE_BACKEND_CAN_WRITE_RELATED(cap)                          \
  int                                                                   \
  backend_##cap (struct context *c)                                    \
  {                                                                     \
    struct backend *b = c->b;                                           \
    assert (c->state & CONTEXT_CONNECTED);                              \
    if (c->cap == -1) {                                                \
      int w = backend_can_write (c);                                    \
      if (w <= 0)                                                       \
        c->cap = w;                                                    \
      else {                                                            \
        controlpath_debug ("%s: " #cap, b->name);                      \
        c->cap = IN_LAYER (b, b->cap (c));                            \
      }                                                                 \
    }                                                                   \
    return c->cap;                                                     \
  }

DEFINE_BACKEND_CAN_WRITE_RELATED (can_trim)
DEFINE_BACKEND_CAN_WRITE_RELATED (can_zero)
DEFINE_BACKEND_CAN_WRITE_RELATED (can_fua)

int
backend_can_write (struct context *c)
{
  struct backend *b = c->b;

  assert (c->state & CONTEXT_CONNECTED);
  if (c->can_write == -1) {
    if (c->readonly)
      c->can_write = 0;
    else {
      controlpath_debug ("%s: can_write", b->name);
      c->can_write = IN_LAYER (b, b->can_write (c));
    }
  }
  return c->can_write;
}

int
backend_can_fast_zero (struct context *c)
{
  struct backend *b = c->b;

  assert (c->state & CONTEXT_CONNECTED);
  if (c->can_fast_zero == -1) {
    int z = backend_can_zero (c);
    if (z < NBDKIT_ZERO_EMULATE)
      c->can_fast_zero = z;
    else {
      controlpath_debug ("%s: can_fast_zero", b->name);
      c->can_fast_zero = IN_LAYER (b, b->can_fast_zero (c));
    }
  }
  return c->can_fast_zero;
}

/* The nbdkit_next table a filter uses to call the layer below it.  A
 * context begins with this table, so the context is the nbdkit_next.
 */
static int next_prepare (nbdkit_next *n)
{ return backend_prepare ((struct context *) n); }
static int next_finalize (nbdkit_next *n)
{ return backend_finalize ((struct context *) n); }
static int64_t next_get_size (nbdkit_next *n)
{ return backend_get_size ((struct context *) n); }
static const char *next_export_description (nbdkit_next *n)
{ return backend_export_description ((struct context *) n); }
static int next_block_size (nbdkit_next *n, uint32_t *mi, uint32_t *pr,
                            uint32_t *ma)
{ return backend_block_size ((struct context *) n, mi, pr, ma); }
static int next_can_write (nbdkit_next *n)
{ return backend_can_write ((struct context *) n); }
static int next_can_flush (nbdkit_next *n)
{ return backend_can_flush ((struct context *) n); }
static int next_is_rotational (nbdkit_next *n)
{ return backend_is_rotational ((struct context *) n); }
static int next_can_trim (nbdkit_next *n)
{ return backend_can_trim ((struct context *) n); }
static int next_can_zero (nbdkit_next *n)
{ return backend_can_zero ((struct context *) n); }
static int next_can_fast_zero (nbdkit_next *n)
{ return backend_can_fast_zero ((struct context *) n); }
static int next_can_extents (nbdkit_next *n)
{ return backend_can_extents ((struct context *) n); }
static int next_can_fua (nbdkit_next *n)
{ return backend_can_fua ((struct context *) n); }
static int next_can_multi_conn (nbdkit_next *n)
{ return backend_can_multi_conn ((struct context *) n); }
static int next_can_cache (nbdkit_next *n)
{ return backend_can_cache ((struct context *) n); }
static int next_pread (nbdkit_next *n, void *buf, uint32_t count,
                       uint64_t offset, uint32_t flags, int *err)
{ return backend_pread ((struct context *) n, buf, count, offset, flags,
                        err); }
static int next_pwrite (nbdkit_next *n, const void *buf, uint32_t count,
                        uint64_t offset, uint32_t flags, int *err)
{ return backend_pwrite ((struct context *) n, buf, count, offset, flags,
                         err); }
static int next_flush (nbdkit_next *n, uint32_t flags, int *err)
{ return backend_flush ((struct context *) n, flags, err); }
static int next_trim (nbdkit_next *n, uint32_t count, uint64_t offset,
                      uint32_t flags, int *err)
{ return backend_trim ((struct context *) n, count, offset, flags, err); }
static int next_zero (nbdkit_next *n, uint32_t count, uint64_t offset,
                      uint32_t flags, int *err)
{ return backend_zero ((struct context *) n, count, offset, flags, err); }
static int next_extents (nbdkit_next *n, uint32_t count, uint64_t offset,
                         uint32_t flags, struct nbdkit_extents *extents,
                         int *err)
{ return backend_extents ((struct context *) n, count, offset, flags,
                          extents, err); }
static int next_cache (nbdkit_next *n, uint32_t count, uint64_t offset,
                       uint32_t flags, int *err)
{ return backend_cache ((struct context *) n, count, offset, flags, err); }

static const struct nbdkit_next_ops next_ops = {
  .prepare = next_prepare,
  .finalize = next_finalize,
  .get_size = next_get_size,
  .export_description = next_export_description,
  .block_size = next_block_size,
  .can_write = next_can_write,
  .can_flush = next_can_flush,
  .is_rotational = next_is_rotational,
  .can_trim = next_can_trim,
  .can_zero = next_can_zero,
  .can_fast_zero = next_can_fast_zero,
  .can_extents = next_can_extents,
  .can_fua = next_can_fua,
  .can_multi_conn = next_can_multi_conn,
  .can_cache = next_can_cache,
  .pread = next_pread,
  .pwrite = next_pwrite,
  .flush = next_flush,
  .trim = next_trim,
  .zero = next_zero,
  .extents = next_extents,
  .cache = next_cache,
};
