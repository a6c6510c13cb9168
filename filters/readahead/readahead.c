/* SPDX-License-Identifier: BSD-3-Clause
 * The readahead filter: when a connection reads sequentially, fetch the
 * data that follows before it is asked for, in a window that doubles
 * with every sequential read.  If the layer below can prefetch
 * (.can_cache is native) it is asked to; otherwise the filter reads the
 * window into a buffer of its own and serves the following reads from
 * it.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"

/* The window starts at MIN_WINDOW and doubles up to MAX_WINDOW, which is
 * also the size of a connection's buffer.
 */
#define MIN_WINDOW (64 * 1024)
#define MAX_WINDOW (4 * 1024 * 1024)

/* Bumped after every write, trim or zero on any connection.  A buffer
 * filled at an older generation is stale: this keeps what one
 * connection reads consistent with what another has written.
 */
static uint64_t generation;

enum mode {
  MODE_CACHE,                   /* ask the layer below to prefetch */
  MODE_BUFFER,                  /* read ahead into our own buffer */
};

struct handle {
  pthread_mutex_t lock;
  enum mode mode;
  uint64_t size;                /* of the export */
  uint64_t last_end;            /* end of the previous read */
  uint32_t window;              /* current read-ahead length */

  /* MODE_CACHE: bytes before this were already asked for. */
  uint64_t prefetched_to;

  /* MODE_BUFFER: buf holds [buf_offset, buf_offset+buf_len) as read at
   * buf_generation.
   */
  char *buf;
  uint64_t buf_offset;
  uint32_t buf_len;
  uint64_t buf_generation;
};

static void *
readahead_open (nbdkit_next_open *next, nbdkit_context *context,
                int readonly, const char *exportname, int is_tls)
{
  struct handle *h;

  if (next (context, readonly, exportname) == -1)
    return NULL;
  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  pthread_mutex_init (&h->lock, NULL);
  h->window = MIN_WINDOW;
  return h;
}

static void
readahead_close (void *handle)
{
  struct handle *h = handle;

  pthread_mutex_destroy (&h->lock);
  free (h->buf);
  free (h);
}

static int
readahead_prepare (nbdkit_next *next, void *handle, int readonly)
{
  struct handle *h = handle;
  int64_t size = next->get_size (next);
  int cache = next->can_cache (next);

  if (size == -1 || cache == -1)
    return -1;
  h->size = size;
  h->mode = cache == NBDKIT_CACHE_NATIVE ? MODE_CACHE : MODE_BUFFER;
  nbdkit_debug ("readahead: %s", h->mode == MODE_CACHE
                ? "prefetching with the layer below's cache"
                : "reading ahead into a buffer");
  return 0;
}

/* Note a read of [offset, offset+count): adapt the window and say
 * whether the read continues the previous one.  Called with the lock.
 */
static bool
note_read (struct handle *h, uint32_t count, uint64_t offset)
{
  bool sequential = offset == h->last_end;

  h->last_end = offset + count;
  if (sequential)
    h->window = MIN (h->window * 2, MAX_WINDOW);
  else
    h->window = MIN_WINDOW;
  return sequential;
}

static int
pread_cache_mode (nbdkit_next *next, struct handle *h, void *buf,
                  uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  uint64_t from = 0, to = 0;
  int ignored;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&h->lock);
    uint64_t end = offset + count;

    if (!note_read (h, count, offset))
      h->prefetched_to = end;
    /* Ask for the next window once the reads come within half a window
     * of what was already asked for, so each byte is asked for once.
     */
    else if (end + h->window / 2 > h->prefetched_to && end < h->size) {
      from = MAX (end, h->prefetched_to);
      to = MIN (end + h->window, h->size);
      h->prefetched_to = to;
    }
  }

  if (next->pread (next, buf, count, offset, flags, err) == -1)
    return -1;
  /* A prefetch is only advice: its failure is not the client's. */
  while (from < to) {
    uint32_t n = MIN (to - from, MAX_WINDOW);
    if (next->cache (next, n, from, 0, &ignored) == -1) {
      nbdkit_debug ("readahead: prefetch failed, ignored");
      break;
    }
    from += n;
  }
  return 0;
}

/* Called with the lock: does the buffer hold [offset, offset+count)? */
static bool
buffer_has (const struct handle *h, uint32_t count, uint64_t offset)
{
  return h->buf_len > 0 &&
    h->buf_generation == __atomic_load_n (&generation, __ATOMIC_ACQUIRE) &&
    offset >= h->buf_offset &&
    offset + count <= h->buf_offset + h->buf_len;
}

/* Read the window starting at OFFSET into the buffer and copy the
 * first COUNT bytes to BUF.  Called with the lock.
 */
static int
fill_buffer (nbdkit_next *next, struct handle *h, void *buf, uint32_t count,
             uint64_t offset, uint32_t flags, int *err)
{
  uint32_t len = MIN (MAX (count, h->window), h->size - offset);

  if (h->buf == NULL) {
    h->buf = malloc (MAX_WINDOW);
    if (h->buf == NULL) {
      *err = ENOMEM;
      return -1;
    }
  }
  /* The generation is taken before reading: a write that completes
   * during the read makes the buffer stale.
   */
  h->buf_generation = __atomic_load_n (&generation, __ATOMIC_ACQUIRE);
  if (next->pread (next, h->buf, len, offset, flags, err) == -1) {
    h->buf_len = 0;
    return -1;
  }
  h->buf_offset = offset;
  h->buf_len = len;
  memcpy (buf, h->buf, count);
  return 0;
}

static int
pread_buffer_mode (nbdkit_next *next, struct handle *h, void *buf,
                   uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&h->lock);

    if (buffer_has (h, count, offset)) {
      memcpy (buf, h->buf + (offset - h->buf_offset), count);
      note_read (h, count, offset);
      return 0;
    }
    if (note_read (h, count, offset) && count < MAX_WINDOW)
      return fill_buffer (next, h, buf, count, offset, flags, err);
  }
  /* Random or large reads gain nothing from the buffer. */
  return next->pread (next, buf, count, offset, flags, err);
}

static int
readahead_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
                 uint64_t offset, uint32_t flags, int *err)
{
  struct handle *h = handle;

  if (h->mode == MODE_CACHE)
    return pread_cache_mode (next, h, buf, count, offset, flags, err);
  return pread_buffer_mode (next, h, buf, count, offset, flags, err);
}

/* After any change to the data, on success or failure. */
static int
changed (int r)
{
  __atomic_add_fetch (&generation, 1, __ATOMIC_RELEASE);
  return r;
}

static int
readahead_pwrite (nbdkit_next *next, void *handle, const void *buf,
                  uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  return changed (next->pwrite (next, buf, count, offset, flags, err));
}

static int
readahead_trim (nbdkit_next *next, void *handle, uint32_t count,
                uint64_t offset, uint32_t flags, int *err)
{
  return changed (next->trim (next, count, offset, flags, err));
}

static int
readahead_zero (nbdkit_next *next, void *handle, uint32_t count,
                uint64_t offset, uint32_t flags, int *err)
{
  return changed (next->zero (next, count, offset, flags, err));
}

static struct nbdkit_filter filter = {
  .name              = "readahead",
  .longname          = "nbdkit readahead filter",
  .version           = PACKAGE_VERSION,
  .description       = "Prefetch data ahead of sequential reads",
  .open              = readahead_open,
  .close             = readahead_close,
  .prepare           = readahead_prepare,
  .pread             = readahead_pread,
  .pwrite            = readahead_pwrite,
  .trim              = readahead_trim,
  .zero              = readahead_zero,
};

NBDKIT_REGISTER_FILTER (filter)
