/* SPDX-License-Identifier: BSD-3-Clause
 * The file plugin: listing the files of a dir= directory as exports, and
 * opening the file a connection serves.
 */

#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "file.h"

/* In dir= mode every regular file or block device in DIRECTORY (open
 * as DIRFD_EXPORTS), following symbolic links, is an export named after
 * the file.
 */
int
file_list_directory (int dirfd_exports, const char *directory,
                     struct nbdkit_exports *exports)
{
  DIR *dir;
  struct dirent *d;
  int fd;

  /* A fresh descriptor: each listing needs its own directory position. */
  fd = openat (dirfd_exports, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd == -1 || (dir = fdopendir (fd)) == NULL) {
    nbdkit_error ("opendir: %s: %m", directory);
    if (fd >= 0)
      close (fd);
    return -1;
  }
  errno = 0;
  while ((d = readdir (dir)) != NULL) {
    struct stat st;

    if (strcmp (d->d_name, ".") == 0 || strcmp (d->d_name, "..") == 0)
      continue;
    if (fstatat (dirfd_exports, d->d_name, &st, 0) == -1 ||
        !(S_ISREG (st.st_mode) || S_ISBLK (st.st_mode))) {
      errno = 0;
      continue;
    }
    if (nbdkit_add_export (exports, d->d_name, NULL) == -1) {
      closedir (dir);
      return -1;
    }
    errno = 0;
  }
  if (errno != 0) {
    nbdkit_error ("readdir: %s: %m", directory);
    closedir (dir);
    return -1;
  }
  closedir (dir);
  return 0;
}

/* Open PATH relative to DIRFD (or AT_FDCWD), never blocking on a FIFO. */
int
file_open_data (struct handle *h, int at, const char *path, int readonly)
{
  const int common = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  struct stat st;
  int flags;

  h->can_write = !readonly;
  h->fd = openat (at, path, (readonly ? O_RDONLY : O_RDWR) | common);
  if (h->fd == -1 && !readonly &&
      (errno == EACCES || errno == EROFS || errno == EPERM)) {
    nbdkit_debug ("open: %s: %m: serving it read-only", h->name);
    h->can_write = false;
    h->fd = openat (at, path, O_RDONLY | common);
  }
  if (h->fd == -1) {
    nbdkit_error ("open: %s: %m", h->name);
    return -1;
  }

  if (fstat (h->fd, &st) == -1) {
    nbdkit_error ("fstat: %s: %m", h->name);
    return -1;
  }
  if (S_ISBLK (st.st_mode))
    h->is_block_device = true;
  else if (!S_ISREG (st.st_mode)) {
    nbdkit_error ("file is not regular or block device: %s", h->name);
    errno = EINVAL;
    return -1;
  }

  flags = fcntl (h->fd, F_GETFL);
  if (flags == -1 || fcntl (h->fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
    nbdkit_error ("fcntl: %s: %m", h->name);
    return -1;
  }
  return 0;
}
