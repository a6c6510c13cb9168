/* SPDX-License-Identifier: BSD-3-Clause
 * Whole-buffer pread/pwrite and unlinked temporary files.
 */

#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"

int
full_pread (int fd, void *buf, size_t count, off_t offset)
{
  char *p = buf;

  while (count > 0) {
    ssize_t r = pread (fd, p, count, offset);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (r == 0) {
      memset (p, 0, count);
      return 0;
    }
    p += r;
    count -= r;
    offset += r;
  }
  return 0;
}

int
full_pwrite (int fd, const void *buf, size_t count, off_t offset)
{
  const char *p = buf;

  while (count > 0) {
    ssize_t r = pwrite (fd, p, count, offset);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += r;
    count -= r;
    offset += r;
  }
  return 0;
}

int
make_unlinked_tmpfile (const char *prefix, const char **dirp)
{
  const char *dir = getenv ("TMPDIR");
  char *template;
  int fd, saved_errno;

  if (dir == NULL || *dir == '\0')
    dir = "/var/tmp";
  *dirp = dir;
  if (asprintf (&template, "%s/%s-XXXXXX", dir, prefix) == -1)
    return -1;
  fd = mkostemp (template, O_CLOEXEC);
  saved_errno = errno;
  if (fd >= 0)
    unlink (template);
  free (template);
  errno = saved_errno;
  return fd;
}
