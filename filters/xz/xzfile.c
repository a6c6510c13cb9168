/* SPDX-License-Identifier: BSD-3-Clause
 * The .xz container, read through the layer below with liblzma: every
 * stream's footer and Index field (walked from the end of the file, as
 * xz --list does), combined into one lzma_index for lookups, and the
 * decoding of a single block.
 */

#include <config.h>

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lzma.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "utils.h"
#include "xzfile.h"

/* Compressed data is read from the layer below in pieces this large. */
#define READ_CHUNK (1024 * 1024)

/* Indexes larger than this are refused rather than held in memory.  A
 * record takes a few bytes, so this allows millions of blocks.
 */
#define MAX_INDEX_SIZE (64 * 1024 * 1024)

/* A block decoder and its input buffer.  Decoders are kept for reuse:
 * liblzma then keeps its dictionary allocated from one block to the
 * next, instead of allocating and page-faulting it in every time.  The
 * input buffer is as large as the largest compressed block seen, up to
 * READ_CHUNK, so a file of small blocks does not cost 1 MiB of buffer
 * per connection.
 */
struct decoder {
  lzma_stream strm;
  struct decoder *next_free;
  uint8_t *inbuf;
  uint32_t inbuf_size;
};

struct xzfile {
  lzma_index *idx;              /* all streams, in file order */
  uint64_t size;                /* uncompressed size */
  pthread_mutex_t lock;         /* protects free_decoders */
  struct decoder *free_decoders;
};

static int
read_at (nbdkit_next *next, void *buf, uint32_t count, uint64_t offset)
{
  int err;

  if (next->pread (next, buf, count, offset, 0, &err) == -1) {
    errno = err;
    nbdkit_error ("reading %" PRIu32 " bytes at offset %" PRIu64
                  " of the compressed file: %m", count, offset);
    return -1;
  }
  return 0;
}

/* Move *POS back over the zero bytes of Stream Padding that may follow
 * a stream, adding their number to *PADDING.  The xz format requires
 * padding in multiples of 4 bytes.
 */
static int
skip_stream_padding (nbdkit_next *next, uint64_t *pos, uint64_t *padding)
{
  char buf[4096];

  while (*pos >= 4) {
    uint32_t n = MIN (*pos, sizeof buf) & ~(uint32_t) 3;
    uint32_t i;

    if (read_at (next, buf, n, *pos - n) == -1)
      return -1;
    for (i = n; i >= 4; i -= 4) {
      if (memcmp (&buf[i - 4], "\0\0\0\0", 4) != 0) {
        *pos -= n - i;
        *padding += n - i;
        return 0;
      }
    }
    *pos -= n;
    *padding += n;
  }
  return 0;
}

/* Decode the stream that ends at *POS (footer included), prepend its
 * index to *IDX and move *POS to the start of the stream.
 */
static int
read_one_stream (nbdkit_next *next, uint64_t *pos, uint64_t padding,
                 lzma_index **idx)
{
  uint8_t footer_buf[LZMA_STREAM_HEADER_SIZE];
  uint8_t header_buf[LZMA_STREAM_HEADER_SIZE];
  lzma_stream_flags footer, header;
  lzma_index *this_idx = NULL;
  uint64_t memlimit = UINT64_MAX;
  size_t in_pos = 0;
  uint64_t index_size, stream_size, stream_start;
  CLEANUP_FREE uint8_t *index_buf = NULL;
  lzma_ret r;

  if (*pos < 2 * LZMA_STREAM_HEADER_SIZE) {
    nbdkit_error ("not an xz file: too short, or garbage before "
                  "offset %" PRIu64, *pos);
    return -1;
  }
  if (read_at (next, footer_buf, sizeof footer_buf,
               *pos - LZMA_STREAM_HEADER_SIZE) == -1)
    return -1;
  r = lzma_stream_footer_decode (&footer, footer_buf);
  if (r != LZMA_OK) {
    nbdkit_error ("not an xz file: no valid stream footer before "
                  "offset %" PRIu64 " (lzma error %d)", *pos, (int) r);
    return -1;
  }

  index_size = footer.backward_size;
  if (index_size > *pos - 2 * LZMA_STREAM_HEADER_SIZE ||
      index_size > MAX_INDEX_SIZE) {
    nbdkit_error ("the index of the stream ending at offset %" PRIu64
                  " is %" PRIu64 " bytes: corrupt file or too many blocks",
                  *pos, index_size);
    return -1;
  }
  index_buf = malloc (index_size);
  if (index_buf == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  if (read_at (next, index_buf, index_size,
               *pos - LZMA_STREAM_HEADER_SIZE - index_size) == -1)
    return -1;
  r = lzma_index_buffer_decode (&this_idx, &memlimit, NULL,
                                index_buf, &in_pos, index_size);
  if (r != LZMA_OK) {
    nbdkit_error ("could not decode the index of the stream ending at "
                  "offset %" PRIu64 " (lzma error %d)", *pos, (int) r);
    return -1;
  }

  stream_size = lzma_index_stream_size (this_idx);
  if (stream_size > *pos) {
    nbdkit_error ("the stream ending at offset %" PRIu64 " claims to "
                  "be %" PRIu64 " bytes long: corrupt file", *pos,
                  stream_size);
    goto error;
  }
  stream_start = *pos - stream_size;
  if (read_at (next, header_buf, sizeof header_buf, stream_start) == -1)
    goto error;
  r = lzma_stream_header_decode (&header, header_buf);
  if (r != LZMA_OK ||
      lzma_stream_flags_compare (&header, &footer) != LZMA_OK) {
    nbdkit_error ("the stream header at offset %" PRIu64 " is missing "
                  "or does not match its footer: corrupt file",
                  stream_start);
    goto error;
  }
  if (lzma_index_stream_flags (this_idx, &footer) != LZMA_OK ||
      lzma_index_stream_padding (this_idx, padding) != LZMA_OK) {
    nbdkit_error ("invalid stream flags or padding at offset %" PRIu64,
                  stream_start);
    goto error;
  }
  if (*idx) {
    /* The later streams go after this one. */
    if (lzma_index_cat (this_idx, *idx, NULL) != LZMA_OK) {
      nbdkit_error ("the file is too large to index");
      goto error;
    }
  }
  *idx = this_idx;
  *pos = stream_start;
  return 0;

 error:
  lzma_index_end (this_idx, NULL);
  return -1;
}

/* Refuse blocks larger than MAX_BLOCK, with advice on recompressing. */
static int
check_block_sizes (const lzma_index *idx, uint64_t max_block)
{
  lzma_index_iter it;
  uint64_t largest = 0, number = 0;

  lzma_index_iter_init (&it, idx);
  while (!lzma_index_iter_next (&it, LZMA_INDEX_ITER_BLOCK)) {
    if (it.block.uncompressed_size > largest) {
      largest = it.block.uncompressed_size;
      number = it.block.number_in_file;
    }
  }
  if (largest <= max_block)
    return 0;

  if (lzma_index_block_count (idx) == 1)
    nbdkit_error ("the file was compressed as a single block of "
                  "%" PRIu64 " bytes, which is larger than xz-max-block="
                  "%" PRIu64 ".  Random access needs small blocks: "
                  "recompress it with 'xz --block-size=16777216'",
                  largest, max_block);
  else
    nbdkit_error ("block %" PRIu64 " is %" PRIu64 " bytes "
                  "uncompressed, larger than xz-max-block=%" PRIu64 ".  "
                  "Recompress the file with smaller blocks, e.g. "
                  "'xz --block-size=16777216', or raise xz-max-block",
                  number, largest, max_block);
  return -1;
}

struct xzfile *
xzfile_open (nbdkit_next *next, uint64_t max_block)
{
  int64_t file_size = next->get_size (next);
  uint64_t pos, padding;
  lzma_index *idx = NULL;
  struct xzfile *xz;

  if (file_size == -1)
    return NULL;
  pos = file_size;
  while (pos > 0) {
    padding = 0;
    if (skip_stream_padding (next, &pos, &padding) == -1 ||
        read_one_stream (next, &pos, padding, &idx) == -1)
      goto error;
  }
  if (idx == NULL) {
    nbdkit_error ("not an xz file: the file is empty");
    return NULL;
  }
  if (check_block_sizes (idx, max_block) == -1)
    goto error;

  xz = calloc (1, sizeof *xz);
  if (xz == NULL) {
    nbdkit_error ("calloc: %m");
    goto error;
  }
  xz->idx = idx;
  xz->size = lzma_index_uncompressed_size (idx);
  pthread_mutex_init (&xz->lock, NULL);
  nbdkit_debug ("xz: %" PRIu64 " streams, %" PRIu64 " blocks, "
                "%" PRIu64 " bytes uncompressed",
                (uint64_t) lzma_index_stream_count (idx),
                (uint64_t) lzma_index_block_count (idx), xz->size);
  return xz;

 error:
  lzma_index_end (idx, NULL);
  return NULL;
}

void
xzfile_close (struct xzfile *xz)
{
  struct decoder *d;

  if (xz == NULL)
    return;
  while ((d = xz->free_decoders) != NULL) {
    xz->free_decoders = d->next_free;
    lzma_end (&d->strm);
    free (d->inbuf);
    free (d);
  }
  pthread_mutex_destroy (&xz->lock);
  lzma_index_end (xz->idx, NULL);
  free (xz);
}

uint64_t
xzfile_size (const struct xzfile *xz)
{
  return xz->size;
}

void
xzfile_find_block (const struct xzfile *xz, uint64_t offset,
                   struct xz_block *blk)
{
  lzma_index_iter it;
  bool beyond_end;

  lzma_index_iter_init (&it, xz->idx);
  beyond_end = lzma_index_iter_locate (&it, offset);
  assert (!beyond_end);
  blk->number = it.block.number_in_file;
  blk->offset = it.block.uncompressed_file_offset;
  blk->size = it.block.uncompressed_size;
  blk->file_offset = it.block.compressed_file_offset;
  blk->total_size = it.block.total_size;
  blk->unpadded_size = it.block.unpadded_size;
  /* read_one_stream gave every stream its flags. */
  blk->check = it.stream.flags->check;
}

/* The filter options lzma_block_header_decode allocated. */
static void
free_filter_options (lzma_filter *filters)
{
  size_t i;

  for (i = 0; i < LZMA_FILTERS_MAX && filters[i].id != LZMA_VLI_UNKNOWN;
       ++i) {
    free (filters[i].options);
    filters[i].options = NULL;
  }
}

/* Read and parse the Block Header of BLK into BLOCK. */
static int
decode_block_header (nbdkit_next *next, const struct xz_block *blk,
                     lzma_block *block, lzma_filter *filters, int *err)
{
  uint8_t header[LZMA_BLOCK_HEADER_SIZE_MAX];
  uint32_t n = MIN (blk->total_size, sizeof header);

  if (next->pread (next, header, n, blk->file_offset, 0, err) == -1)
    return -1;
  memset (block, 0, sizeof *block);
  block->version = 1;
  block->check = blk->check;
  block->filters = filters;
  block->header_size = lzma_block_header_size_decode (header[0]);
  if (header[0] == 0 || block->header_size > n ||
      lzma_block_header_decode (block, NULL, header) != LZMA_OK)
    goto corrupt;
  if (lzma_block_compressed_size (block, blk->unpadded_size) != LZMA_OK ||
      (block->uncompressed_size != LZMA_VLI_UNKNOWN &&
       block->uncompressed_size != blk->size)) {
    free_filter_options (filters);
    goto corrupt;
  }
  /* Let the decoder check the size the index promised. */
  block->uncompressed_size = blk->size;
  return 0;

 corrupt:
  nbdkit_error ("block %" PRIu64 " at offset %" PRIu64 " has an "
                "invalid header: corrupt file", blk->number,
                blk->file_offset);
  *err = EIO;
  return -1;
}

/* Feed the compressed data of BLK (after its header) through STRM. */
/* Make the decoder's input buffer at least SIZE bytes. */
static int
reserve_inbuf (struct decoder *d, uint32_t size)
{
  uint8_t *p;

  if (d->inbuf_size >= size)
    return 0;
  p = realloc (d->inbuf, size);
  if (p == NULL)
    return -1;
  d->inbuf = p;
  d->inbuf_size = size;
  return 0;
}

static int
run_decoder (nbdkit_next *next, const struct xz_block *blk,
             uint32_t header_size, struct decoder *d, int *err)
{
  lzma_stream *strm = &d->strm;
  uint64_t in_offset = blk->file_offset + header_size;
  uint64_t remaining = blk->total_size - header_size;
  lzma_ret r;

  if (reserve_inbuf (d, MIN (remaining, READ_CHUNK)) == -1) {
    *err = errno;
    nbdkit_error ("realloc: %m");
    return -1;
  }
  for (;;) {
    lzma_action action = LZMA_RUN;

    if (strm->avail_in == 0 && remaining > 0) {
      uint32_t n = MIN (remaining, READ_CHUNK);
      if (next->pread (next, d->inbuf, n, in_offset, 0, err) == -1)
        return -1;
      in_offset += n;
      remaining -= n;
      strm->next_in = d->inbuf;
      strm->avail_in = n;
    }
    if (strm->avail_in == 0 && remaining == 0)
      action = LZMA_FINISH;
    r = lzma_code (strm, action);
    if (r == LZMA_STREAM_END)
      return 0;
    if (r != LZMA_OK) {
      nbdkit_error ("block %" PRIu64 " at offset %" PRIu64 " could not "
                    "be decompressed (lzma error %d): corrupt file",
                    blk->number, blk->file_offset, (int) r);
      *err = r == LZMA_MEM_ERROR ? ENOMEM : EIO;
      return -1;
    }
  }
}

static struct decoder *
get_decoder (struct xzfile *xz)
{
  struct decoder *d;

  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&xz->lock);
    d = xz->free_decoders;
    if (d) {
      xz->free_decoders = d->next_free;
      return d;
    }
  }
  d = malloc (sizeof *d);
  if (d == NULL)
    return NULL;
  d->strm = (lzma_stream) LZMA_STREAM_INIT;
  d->inbuf = NULL;
  d->inbuf_size = 0;
  return d;
}

static void
put_decoder (struct xzfile *xz, struct decoder *d)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&xz->lock);
  d->next_free = xz->free_decoders;
  xz->free_decoders = d;
}

int
xzfile_decode_block (struct xzfile *xz, nbdkit_next *next,
                     const struct xz_block *blk, char *out, int *err)
{
  lzma_filter filters[LZMA_FILTERS_MAX + 1];
  lzma_block block;
  struct decoder *d;
  int r = -1;

  if (decode_block_header (next, blk, &block, filters, err) == -1)
    return -1;
  d = get_decoder (xz);
  if (d == NULL) {
    *err = ENOMEM;
    free_filter_options (filters);
    return -1;
  }
  if (lzma_block_decoder (&d->strm, &block) != LZMA_OK) {
    nbdkit_error ("block %" PRIu64 ": unsupported filters or check",
                  blk->number);
    *err = EIO;
    goto out;
  }
  d->strm.next_in = NULL;
  d->strm.avail_in = 0;
  d->strm.next_out = (uint8_t *) out;
  d->strm.avail_out = blk->size;
  if (run_decoder (next, blk, block.header_size, d, err) == -1)
    goto out;
  if (d->strm.total_out != blk->size) {
    nbdkit_error ("block %" PRIu64 " decompressed to %" PRIu64
                  " bytes, the index says %" PRIu64 ": corrupt file",
                  blk->number, (uint64_t) d->strm.total_out, blk->size);
    *err = EIO;
    goto out;
  }
  r = 0;

 out:
  if (r == -1) {
    /* Start the next block from a clean state. */
    lzma_end (&d->strm);
    d->strm = (lzma_stream) LZMA_STREAM_INIT;
  }
  put_decoder (xz, d);
  free_filter_options (filters);
  return r;
}
