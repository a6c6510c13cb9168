/* SPDX-License-Identifier: BSD-3-Clause
 * Building the ext2/3/4 image with mke2fs -d in a temporary file, sized
 * from the directory's contents unless size= says otherwise.
 */

#include <config.h>

#define _XOPEN_SOURCE_EXTENDED 1
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "linuxdisk.h"
#include "run-command.h"
#include "utils.h"

/* Summed by nftw over the directory: bytes in 4K blocks, and inodes. */
static uint64_t tree_bytes, tree_inodes;

static int
count_entry (const char *path, const struct stat *st, int flag,
             struct FTW *ftw)
{
  tree_inodes++;
  if (S_ISREG (st->st_mode) || S_ISDIR (st->st_mode) || S_ISLNK (st->st_mode))
    tree_bytes += ROUND_UP ((uint64_t) st->st_size, 4096);
  return 0;
}

/* A first guess at the filesystem size: the data with a fifth more for
 * metadata, room for the inode table, rounded up to 1 MiB.
 */
static int
estimate_size (const char *dir, uint64_t *size)
{
  uint64_t s;

  tree_bytes = tree_inodes = 0;
  if (nftw (dir, count_entry, 64, FTW_PHYS) == -1) {
    nbdkit_error ("dir=%s: cannot read the directory tree: %m", dir);
    return -1;
  }
  s = tree_bytes + tree_bytes / 5 + tree_inodes * 512 + 256 * 1024;
  *size = ROUND_UP (s, (uint64_t) 1024 * 1024);
  nbdkit_debug ("linuxdisk: %" PRIu64 " bytes in %" PRIu64 " inodes, "
                "first estimate %" PRIu64, tree_bytes, tree_inodes, *size);
  return 0;
}

/* Make a fresh sparse file of SIZE at PATH and run mke2fs on it. */
static int
run_mke2fs (const struct linuxdisk_config *config, const char *path,
            uint64_t size, bool report, char **output)
{
  const char *argv[16];
  size_t i = 0;

  if (truncate (path, 0) == -1 || truncate (path, size) == -1) {
    nbdkit_error ("truncate: %s: %m", path);
    return -1;
  }
  argv[i++] = "mke2fs";
  argv[i++] = "-q";
  argv[i++] = "-F";
  argv[i++] = "-t";
  argv[i++] = config->type;
  if (config->label) {
    argv[i++] = "-L";
    argv[i++] = config->label;
  }
  argv[i++] = "-d";
  argv[i++] = config->dir;
  argv[i++] = path;
  argv[i] = NULL;
  return run_command (NULL, (char *const *) argv, NULL, report, output);
}

/* Running out of room is the one failure that a bigger size fixes. */
static bool
is_out_of_space (const char *output)
{
  return output && (strstr (output, "space") || strstr (output, "allocate") ||
                    strstr (output, "inode") || strstr (output, "too small"));
}

static int
build_image (const struct linuxdisk_config *config, const char *path,
             int64_t *size)
{
  uint64_t estimate;
  int tries;

  if (config->size >= 0 && !config->size_add) {
    *size = config->size;
    return run_mke2fs (config, path, config->size, true, NULL);
  }
  if (estimate_size (config->dir, &estimate) == -1)
    return -1;
  /* Double the estimate while mke2fs says it is too small. */
  for (tries = 0; ; tries++) {
    uint64_t s = estimate + (config->size_add ? config->size : 0);
    CLEANUP_FREE char *output = NULL;
    bool last = tries == 7;

    s = ROUND_UP (s, (uint64_t) 1024);
    if (run_mke2fs (config, path, s, last, &output) == 0) {
      *size = s;
      return 0;
    }
    if (last || !is_out_of_space (output)) {
      if (!last)
        nbdkit_error ("mke2fs failed: %s", output ? output : "");
      return -1;
    }
    estimate *= 2;
  }
}

int
make_filesystem (const struct linuxdisk_config *config, int64_t *size)
{
  const char *tmpdir = getenv ("TMPDIR");
  CLEANUP_FREE char *path = NULL;
  int fd;

  if (tmpdir == NULL || *tmpdir == '\0')
    tmpdir = "/var/tmp";
  if (asprintf (&path, "%s/linuxdiskXXXXXX", tmpdir) == -1) {
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  fd = mkostemp (path, O_CLOEXEC);
  if (fd == -1) {
    nbdkit_error ("mkostemp: %s: %m", path);
    return -1;
  }
  if (build_image (config, path, size) == -1) {
    unlink (path);
    close (fd);
    return -1;
  }
  /* Nothing else needs the name: gone now, the file goes when we exit. */
  unlink (path);
  return fd;
}
