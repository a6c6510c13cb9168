/* SPDX-License-Identifier: BSD-3-Clause
 * The gzip filter: serve the uncompressed contents of a .gz file, read
 * only.  gzip cannot seek, so the first connection decompresses the
 * whole file once, with zlib, into an unlinked temporary file, and every
 * connection is then served from that file.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include <nbdkit-filter.h>

#include "cleanup.h"
#include "fileio.h"
#include "utils.h"

/* Compressed input and decompressed output move in pieces this large,
 * which bounds the memory the filter uses.
 */
#define BUFFER_SIZE (1024 * 1024)

/* Output pieces of this size that are all zero are not written, so the
 * temporary file stays sparse where the data is.
 */
#define SPARSE_SIZE (64 * 1024)

/* The decompressed file, made by the first connection (under lock). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int fd = -1;
static uint64_t size;

static void
gzip_unload (void)
{
  if (fd >= 0)
    close (fd);
}

/* An unlinked file in $TMPDIR (default /var/tmp). */
static int
create_temporary_file (void)
{
  const char *dir;
  int r = make_unlinked_tmpfile ("nbdkit-gzip", &dir);

  if (r == -1)
    nbdkit_error ("cannot create a temporary file in %s: %m "
                  "(set TMPDIR to use another directory)", dir);
  return r;
}

/* Append LEN decompressed bytes at *OFFSET of file OUT, skipping runs
 * of zeroes.
 */
static int
write_output (int out, const char *buf, size_t len, uint64_t *offset)
{
  while (len > 0) {
    size_t n = MIN (len, SPARSE_SIZE);

    if (!is_zero (buf, n) && full_pwrite (out, buf, n, *offset) == -1) {
      nbdkit_error ("writing the temporary file: %m");
      return -1;
    }
    buf += n;
    len -= n;
    *offset += n;
  }
  return 0;
}

/* The compressed file as zlib consumes it. */
struct input {
  nbdkit_next *next;
  uint64_t offset;              /* next byte to read */
  uint64_t size;                /* size of the compressed file */
  unsigned char *buf;
};

/* Make sure at least WANT bytes are available to STRM (fewer at the end
 * of the file), keeping what it has not consumed yet.
 */
static int
fill_input (struct input *in, z_stream *strm, uInt want)
{
  uInt n;
  int err;

  if (strm->avail_in >= want || in->offset >= in->size)
    return 0;
  if (strm->avail_in > 0)
    memmove (in->buf, strm->next_in, strm->avail_in);
  n = MIN (in->size - in->offset, BUFFER_SIZE - strm->avail_in);
  if (in->next->pread (in->next, in->buf + strm->avail_in, n, in->offset,
                       0, &err) == -1) {
    errno = err;
    nbdkit_error ("reading the compressed file at offset %" PRIu64 ": %m",
                  in->offset);
    return -1;
  }
  in->offset += n;
  strm->next_in = in->buf;
  strm->avail_in += n;
  return 0;
}

/* After the end of a gzip member: true if another member follows (gzip
 * files may be concatenated), false at the end of the file.  Trailing
 * bytes that are not a gzip member are ignored, as gzip(1) does.
 */
static int
another_member (struct input *in, z_stream *strm)
{
  if (fill_input (in, strm, 2) == -1)
    return -1;
  if (strm->avail_in >= 2 && strm->next_in[0] == 0x1f &&
      strm->next_in[1] == 0x8b)
    return 1;
  if (strm->avail_in > 0)
    nbdkit_debug ("gzip: ignoring %" PRIu64 " bytes after the last member",
                  (uint64_t) strm->avail_in + (in->size - in->offset));
  return 0;
}

/* Decompress all of NEXT into the file OUT; sets size. */
static int
decompress (nbdkit_next *next, int out)
{
  int64_t compressed_size = next->get_size (next);
  CLEANUP_FREE unsigned char *inbuf = malloc (BUFFER_SIZE);
  CLEANUP_FREE char *outbuf = malloc (BUFFER_SIZE);
  struct input in = { .next = next, .buf = inbuf };
  z_stream strm = { 0 };
  uint64_t offset = 0;
  int r, more;

  if (compressed_size == -1)
    return -1;
  if (inbuf == NULL || outbuf == NULL) {
    nbdkit_error ("malloc: %m");
    return -1;
  }
  in.size = compressed_size;
  /* 16 + MAX_WBITS: expect the gzip wrapper, with the largest window. */
  if (inflateInit2 (&strm, 16 + MAX_WBITS) != Z_OK) {
    nbdkit_error ("inflateInit2: %s", strm.msg ? strm.msg : "failed");
    return -1;
  }
  do {
    strm.next_out = (Bytef *) outbuf;
    strm.avail_out = BUFFER_SIZE;
    if (fill_input (&in, &strm, 1) == -1)
      goto error;
    r = inflate (&strm, Z_NO_FLUSH);
    if (r != Z_OK && r != Z_STREAM_END) {
      if (r == Z_BUF_ERROR)
        nbdkit_error ("the gzip file is truncated (at offset %" PRIu64 ")",
                      in.size);
      else
        nbdkit_error ("not a gzip file, or corrupt data near offset "
                      "%" PRIu64 ": %s", in.offset - strm.avail_in,
                      strm.msg ? strm.msg : zError (r));
      goto error;
    }
    if (write_output (out, outbuf, BUFFER_SIZE - strm.avail_out,
                      &offset) == -1)
      goto error;
    more = 1;
    if (r == Z_STREAM_END) {
      more = another_member (&in, &strm);
      if (more == -1)
        goto error;
      if (more)
        inflateReset (&strm);
    }
  } while (more);
  inflateEnd (&strm);

  if (ftruncate (out, offset) == -1) {
    nbdkit_error ("ftruncate of the temporary file: %m");
    return -1;
  }
  size = offset;
  nbdkit_debug ("gzip: %" PRIi64 " bytes decompressed to %" PRIu64,
                compressed_size, size);
  return 0;

 error:
  inflateEnd (&strm);
  return -1;
}

static void *
gzip_open (nbdkit_next_open *next, nbdkit_context *context,
           int readonly, const char *exportname, int is_tls)
{
  /* The compressed file is never written. */
  if (next (context, 1, exportname) == -1)
    return NULL;
  return NBDKIT_HANDLE_NOT_NEEDED;
}

/* The first connection decompresses; the others wait for it. */
static int
gzip_prepare (nbdkit_next *next, void *handle, int readonly)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  int out;

  if (fd >= 0)
    return 0;
  out = create_temporary_file ();
  if (out == -1)
    return -1;
  if (decompress (next, out) == -1) {
    close (out);
    return -1;
  }
  fd = out;
  return 0;
}

static int64_t
gzip_get_size (nbdkit_next *next, void *handle)
{
  return size;
}

/* Any alignment works on the temporary file. */
static int
gzip_block_size (nbdkit_next *next, void *handle, uint32_t *minimum,
                 uint32_t *preferred, uint32_t *maximum)
{
  *minimum = 1;
  *preferred = 4096;
  *maximum = 0xffffffff;
  return 0;
}

static int
gzip_can_write (nbdkit_next *next, void *handle)
{
  return 0;
}

/* The layer below describes the compressed file, not ours. */
static int
gzip_can_extents (nbdkit_next *next, void *handle)
{
  return 0;
}

static int
gzip_can_multi_conn (nbdkit_next *next, void *handle)
{
  return 1;
}

static int
gzip_can_cache (nbdkit_next *next, void *handle)
{
  return NBDKIT_CACHE_NATIVE;
}

static int
gzip_pread (nbdkit_next *next, void *handle, void *buf, uint32_t count,
            uint64_t offset, uint32_t flags, int *err)
{
  /* Runs of zeroes were never written, so the file may end early. */
  if (full_pread (fd, buf, count, offset) == -1) {
    *err = errno;
    nbdkit_error ("reading the temporary file: %m");
    return -1;
  }
  return 0;
}

/* Ask the kernel to read the range of the temporary file ahead. */
static int
gzip_cache (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
            uint32_t flags, int *err)
{
  int r = posix_fadvise (fd, offset, count, POSIX_FADV_WILLNEED);

  if (r != 0) {
    *err = r;
    nbdkit_error ("posix_fadvise: %s", strerror (r));
    return -1;
  }
  return 0;
}

static struct nbdkit_filter filter = {
  .name              = "gzip",
  .longname          = "nbdkit gzip filter",
  .version           = PACKAGE_VERSION,
  .description       = "Serve the uncompressed contents of a .gz file",
  .unload            = gzip_unload,
  .open              = gzip_open,
  .prepare           = gzip_prepare,
  .get_size          = gzip_get_size,
  .block_size        = gzip_block_size,
  .can_write         = gzip_can_write,
  .can_extents       = gzip_can_extents,
  .can_multi_conn    = gzip_can_multi_conn,
  .can_cache         = gzip_can_cache,
  .pread             = gzip_pread,
  .cache             = gzip_cache,
};

NBDKIT_REGISTER_FILTER (filter)
