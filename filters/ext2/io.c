/* SPDX-License-Identifier: BSD-3-Clause
 * A libext2fs io_manager on top of the next nbdkit layer: the channel
 * name carries the nbdkit_next pointer, and block reads and writes
 * become next->pread and next->pwrite at block * block_size.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ext2.h"

#define CHANNEL_NAME_PREFIX "nbdkit-next:"

/* Per-channel state: the layer below and whether writes are allowed. */
struct channel_data {
  nbdkit_next *next;
  int writable;
  uint64_t size;                /* of the layer below */
};

void
ext2_io_channel_name (char *name, size_t size, nbdkit_next *next)
{
  snprintf (name, size, CHANNEL_NAME_PREFIX "%p", (void *) next);
}

static errcode_t
channel_open (const char *name, int flags, io_channel *channel_ret)
{
  struct channel_data *data = NULL;
  io_channel channel = NULL;
  void *ptr = NULL;
  int64_t size;
  errcode_t err;

  if (name == NULL ||
      strncmp (name, CHANNEL_NAME_PREFIX, strlen (CHANNEL_NAME_PREFIX)) != 0 ||
      sscanf (name + strlen (CHANNEL_NAME_PREFIX), "%p", &ptr) != 1 ||
      ptr == NULL)
    return EXT2_ET_BAD_DEVICE_NAME;
  /* This also lets the server check our requests against the size. */
  size = ((nbdkit_next *) ptr)->get_size (ptr);
  if (size == -1)
    return EXT2_ET_SHORT_READ;

  err = ext2fs_get_memzero (sizeof *channel, &channel);
  if (err)
    return err;
  err = ext2fs_get_memzero (sizeof *data, &data);
  if (err)
    goto error;
  err = ext2fs_get_mem (strlen (name) + 1, &channel->name);
  if (err)
    goto error;
  strcpy (channel->name, name);

  data->next = ptr;
  data->writable = (flags & IO_FLAG_RW) != 0;
  data->size = size;
  channel->magic = EXT2_ET_MAGIC_IO_CHANNEL;
  channel->manager = ext2_nbdkit_io_manager;
  channel->block_size = 1024;
  channel->refcount = 1;
  channel->private_data = data;
  *channel_ret = channel;
  return 0;

 error:
  ext2fs_free_mem (&data);
  ext2fs_free_mem (&channel);
  return err;
}

static errcode_t
channel_close (io_channel channel)
{
  if (--channel->refcount > 0)
    return 0;
  ext2fs_free_mem (&channel->private_data);
  ext2fs_free_mem (&channel->name);
  ext2fs_free_mem (&channel);
  return 0;
}

static errcode_t
channel_set_blksize (io_channel channel, int blksize)
{
  channel->block_size = blksize;
  return 0;
}

/* Whether LENGTH bytes at OFFSET lie within the layer below: the
 * filesystem may claim blocks beyond the end of a truncated image.
 */
static int
in_range (io_channel channel, uint64_t offset, uint64_t length)
{
  struct channel_data *data = channel->private_data;

  return length <= data->size && offset <= data->size - length;
}

/* libext2fs counts in blocks, or in bytes when COUNT is negative. */
static errcode_t
channel_byte_range (io_channel channel, unsigned long long block, int count,
                    uint64_t *offset, uint32_t *length)
{
  uint64_t len = count < 0 ? (uint64_t) -(int64_t) count
                           : (uint64_t) count * channel->block_size;

  if (len > UINT32_MAX ||
      __builtin_mul_overflow (block, (uint64_t) channel->block_size, offset))
    return EXT2_ET_LLSEEK_FAILED;
  *length = len;
  return 0;
}

static errcode_t
channel_read_blk64 (io_channel channel, unsigned long long block,
                    int count, void *buf)
{
  struct channel_data *data = channel->private_data;
  uint64_t offset;
  uint32_t length;
  errcode_t r;
  int err = 0;

  r = channel_byte_range (channel, block, count, &offset, &length);
  if (r)
    return r;
  if (length == 0)
    return 0;
  if (!in_range (channel, offset, length)) {
    nbdkit_debug ("ext2: read of %" PRIu32 " bytes at %" PRIu64
                  " beyond the end of the image", length, offset);
    return EXT2_ET_SHORT_READ;
  }
  if (data->next->pread (data->next, buf, length, offset, 0, &err) == -1) {
    nbdkit_debug ("ext2: read of %" PRIu32 " bytes at %" PRIu64 ": %s",
                  length, offset, strerror (err));
    return err ? err : EXT2_ET_SHORT_READ;
  }
  return 0;
}

static errcode_t
channel_write_at (io_channel channel, uint64_t offset, uint32_t length,
                  const void *buf)
{
  struct channel_data *data = channel->private_data;
  int err = 0;

  if (!data->writable)
    return EXT2_ET_RO_FILSYS;
  if (length == 0)
    return 0;
  if (!in_range (channel, offset, length)) {
    nbdkit_debug ("ext2: write of %" PRIu32 " bytes at %" PRIu64
                  " beyond the end of the image", length, offset);
    return EXT2_ET_SHORT_WRITE;
  }
  if (data->next->pwrite (data->next, buf, length, offset, 0, &err) == -1) {
    nbdkit_debug ("ext2: write of %" PRIu32 " bytes at %" PRIu64 ": %s",
                  length, offset, strerror (err));
    return err ? err : EXT2_ET_SHORT_WRITE;
  }
  return 0;
}

static errcode_t
channel_write_blk64 (io_channel channel, unsigned long long block,
                     int count, const void *buf)
{
  uint64_t offset;
  uint32_t length;
  errcode_t r;

  r = channel_byte_range (channel, block, count, &offset, &length);
  if (r)
    return r;
  return channel_write_at (channel, offset, length, buf);
}

static errcode_t
channel_read_blk (io_channel channel, unsigned long block, int count,
                  void *buf)
{
  return channel_read_blk64 (channel, block, count, buf);
}

static errcode_t
channel_write_blk (io_channel channel, unsigned long block, int count,
                   const void *buf)
{
  return channel_write_blk64 (channel, block, count, buf);
}

static errcode_t
channel_write_byte (io_channel channel, unsigned long offset, int count,
                    const void *buf)
{
  if (count < 0)
    return EXT2_ET_INVALID_ARGUMENT;
  return channel_write_at (channel, offset, count, buf);
}

/* Flush the layer below, when it can (a read-only one has nothing). */
static errcode_t
channel_flush (io_channel channel)
{
  struct channel_data *data = channel->private_data;
  int err = 0, r;

  if (!data->writable)
    return 0;
  r = data->next->can_flush (data->next);
  if (r == -1)
    return EIO;
  if (r == 1 && data->next->flush (data->next, 0, &err) == -1)
    return err ? err : EIO;
  return 0;
}

static errcode_t
channel_set_option (io_channel channel, const char *option, const char *arg)
{
  return EXT2_ET_INVALID_ARGUMENT;
}

static errcode_t
channel_unsupported (io_channel channel, unsigned long long block,
                     unsigned long long count)
{
  return EXT2_ET_UNIMPLEMENTED;
}

static struct struct_io_manager nbdkit_io_manager = {
  .magic = EXT2_ET_MAGIC_IO_MANAGER,
  .name = "nbdkit next layer I/O manager",
  .open = channel_open,
  .close = channel_close,
  .set_blksize = channel_set_blksize,
  .read_blk = channel_read_blk,
  .write_blk = channel_write_blk,
  .flush = channel_flush,
  .write_byte = channel_write_byte,
  .set_option = channel_set_option,
  .read_blk64 = channel_read_blk64,
  .write_blk64 = channel_write_blk64,
  .discard = channel_unsupported,
  .cache_readahead = channel_unsupported,
  .zeroout = channel_unsupported,
};

io_manager ext2_nbdkit_io_manager = &nbdkit_io_manager;
