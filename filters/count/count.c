/* SPDX-License-Identifier: BSD-3-Clause
 * The count filter: counts the bytes read, written, zeroed and trimmed,
 * per connection and in total, and reports them as debug messages when
 * a connection closes and when nbdkit exits.
 */

#include <config.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

#include <nbdkit-filter.h>

/* The byte counts of one connection, or of the whole server. */
struct counts {
  uint64_t read, written, zeroed, trimmed;
};

/* Totals over every connection since nbdkit started. */
static struct counts totals;

static void
add (uint64_t *counter, uint32_t n)
{
  __atomic_fetch_add (counter, n, __ATOMIC_RELAXED);
}

static void
report (const char *what, struct counts *c)
{
  nbdkit_debug ("%s bytes: read %" PRIu64 ", written %" PRIu64
                ", zeroed %" PRIu64 ", trimmed %" PRIu64, what,
                __atomic_load_n (&c->read, __ATOMIC_RELAXED),
                __atomic_load_n (&c->written, __ATOMIC_RELAXED),
                __atomic_load_n (&c->zeroed, __ATOMIC_RELAXED),
                __atomic_load_n (&c->trimmed, __ATOMIC_RELAXED));
}

static void
count_unload (void)
{
  report ("total", &totals);
}

static void *
count_open (nbdkit_next_open *next, nbdkit_context *context,
            int readonly, const char *exportname, int is_tls)
{
  struct counts *h;

  if (next (context, readonly, exportname) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (h == NULL)
    nbdkit_error ("calloc: %m");
  return h;
}

static void
count_close (void *handle)
{
  report ("connection", handle);
  free (handle);
}

static int
count_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  struct counts *h = handle;

  if (next->pread (next, buf, count, offset, flags, err) == -1)
    return -1;
  add (&h->read, count);
  add (&totals.read, count);
  return 0;
}

static int
count_pwrite (nbdkit_next *next, void *handle, const void *buf,
              uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  struct counts *h = handle;

  if (next->pwrite (next, buf, count, offset, flags, err) == -1)
    return -1;
  add (&h->written, count);
  add (&totals.written, count);
  return 0;
}

static int
count_zero (nbdkit_next *next, void *handle, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  struct counts *h = handle;

  if (next->zero (next, count, offset, flags, err) == -1)
    return -1;
  add (&h->zeroed, count);
  add (&totals.zeroed, count);
  return 0;
}

static int
count_trim (nbdkit_next *next, void *handle, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  struct counts *h = handle;

  if (next->trim (next, count, offset, flags, err) == -1)
    return -1;
  add (&h->trimmed, count);
  add (&totals.trimmed, count);
  return 0;
}

static struct nbdkit_filter filter = {
  .name              = "count",
  .longname          = "nbdkit count filter",
  .version           = PACKAGE_VERSION,
  .description       = "Count bytes read, written, zeroed and trimmed",
  .unload            = count_unload,
  .open              = count_open,
  .close             = count_close,
  .pread             = count_pread,
  .pwrite            = count_pwrite,
  .zero              = count_zero,
  .trim              = count_trim,
};

NBDKIT_REGISTER_FILTER (filter)
