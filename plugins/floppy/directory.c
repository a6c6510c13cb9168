/* SPDX-License-Identifier: BSD-3-Clause
 * The host directory tree: read it once at start-up (names, sizes and
 * times of directories and regular files, short names chosen), then,
 * once clusters are assigned, write each directory's FAT entries (with
 * VFAT long names) into memory.
 */

#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "cleanup.h"
#include "floppy.h"

/* Deeper trees are refused rather than risking the stack. */
#define MAX_DEPTH 256

#define ATTR_VOLUME_ID 0x08
#define ATTR_DIRECTORY 0x10
#define ATTR_ARCHIVE   0x20
#define ATTR_LONG_NAME 0x0f
#define LFN_LAST       0x40
#define LFN_CHARS      13

static int
compare_strings (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* The names in PATH except . and .., sorted so the image is repeatable. */
static int
list_names (const char *path, string_vector *names)
{
  DIR *dir = opendir (path);
  struct dirent *d;

  if (dir == NULL) {
    nbdkit_error ("opendir: %s: %m", path);
    return -1;
  }
  while (errno = 0, (d = readdir (dir)) != NULL) {
    char *name;
    if (strcmp (d->d_name, ".") == 0 || strcmp (d->d_name, "..") == 0)
      continue;
    name = strdup (d->d_name);
    if (name == NULL || string_vector_append (names, name) == -1) {
      nbdkit_error ("strdup: %m");
      free (name);
      closedir (dir);
      return -1;
    }
  }
  if (errno != 0) {
    nbdkit_error ("readdir: %s: %m", path);
    closedir (dir);
    return -1;
  }
  closedir (dir);
  qsort (names->ptr, names->len, sizeof (char *), compare_strings);
  return 0;
}

/* Add the host object NAME in directory DIR_INDEX as a child, taking
 * ownership of NAME and PATH.  Other than directories and regular files
 * are skipped.
 */
static int
add_child (struct floppy *floppy, size_t dir_index, char *name, char *path)
{
  struct stat st;
  struct child child = { .name = name };

  if (lstat (path, &st) == -1) {
    nbdkit_error ("stat: %s: %m", path);
    goto err;
  }
  child.mtime = st.st_mtim;
  child.atime = st.st_atim;
  if (S_ISDIR (st.st_mode)) {
    struct dir d = { .host_path = path, .parent = dir_index,
                     .mtime = st.st_mtim, .atime = st.st_atim };
    child.is_dir = true;
    child.index = floppy->dirs.len;
    if (dir_vector_append (&floppy->dirs, d) == -1)
      goto err_nomem;
  }
  else if (S_ISREG (st.st_mode)) {
    struct file f = { .host_path = path, .size = st.st_size };
    if ((uint64_t) st.st_size > FAT_MAX_FILE_SIZE) {
      nbdkit_error ("%s: file is too large for FAT32 (%" PRIu64 " bytes, "
                    "the largest possible is 4294967295 bytes)",
                    path, (uint64_t) st.st_size);
      goto err;
    }
    /* Better refused now than failing the client's reads later. */
    if (access (path, R_OK) == -1) {
      nbdkit_error ("%s: cannot read the file: %m", path);
      goto err;
    }
    child.index = floppy->files.len;
    if (file_vector_append (&floppy->files, f) == -1)
      goto err_nomem;
  }
  else {
    nbdkit_debug ("floppy: %s: not a regular file or directory, ignored",
                  path);
    free (path);
    free (name);
    return 0;
  }
  if (child_vector_append (&floppy->dirs.ptr[dir_index].children,
                           child) == -1) {
    /* The dir or file stays listed and owns PATH now. */
    nbdkit_error ("realloc: %m");
    free (name);
    return -1;
  }
  return 0;

 err_nomem:
  nbdkit_error ("realloc: %m");
 err:
  free (path);
  free (name);
  return -1;
}

/* Give every child of DIR a unique short name (names that already are
 * upper-case 8.3 names keep them) and count the directory's entries.
 */
static int
name_children (struct dir *dir, bool is_root)
{
  struct short_name_set *set = short_name_set_new ();
  uint16_t utf16[256];
  uint64_t slots = is_root ? 1 : 2;   /* volume label, or . and .. */
  size_t i, len;
  int r;

  if (set == NULL) {
    nbdkit_error ("calloc: %m");
    return -1;
  }
  for (i = 0; i < dir->children.len; ++i) {
    struct child *c = &dir->children.ptr[i];
    r = claim_exact_short_name (set, c->name, c->short_name);
    if (r == -1)
      goto err_nomem;
    c->needs_lfn = r == 0;
  }
  for (i = 0; i < dir->children.len; ++i) {
    struct child *c = &dir->children.ptr[i];
    if (!c->needs_lfn)
      continue;
    if (utf8_to_utf16 (c->name, utf16, &len) == -1) {
      nbdkit_error ("%s/%s: this name cannot be stored in FAT: %s",
                    dir->host_path, c->name,
                    errno == ENAMETOOLONG ? "longer than 255 characters"
                    : "not UTF-8, or has a character VFAT forbids");
      goto err;
    }
    c->lfn_entries = (len + LFN_CHARS - 1) / LFN_CHARS;
    if (make_short_name (set, c->name, c->short_name) == -1) {
      nbdkit_error ("%s/%s: cannot make a unique short name: %m",
                    dir->host_path, c->name);
      goto err;
    }
  }
  for (i = 0; i < dir->children.len; ++i)
    slots += 1 + dir->children.ptr[i].lfn_entries;
  if (slots > FAT_MAX_DIR_ENTRIES) {
    nbdkit_error ("%s: too many files for one FAT directory (%zu names "
                  "need %" PRIu64 " entries, the limit is %d)",
                  dir->host_path, dir->children.len, slots,
                  FAT_MAX_DIR_ENTRIES);
    goto err;
  }
  dir->nslots = slots;
  short_name_set_free (set);
  return 0;

 err_nomem:
  nbdkit_error ("malloc: %m");
 err:
  short_name_set_free (set);
  return -1;
}

static int
scan_dir (struct floppy *floppy, size_t dir_index, int depth)
{
  string_vector names = empty_vector;
  const char *dir_path = floppy->dirs.ptr[dir_index].host_path;
  size_t i, nchildren;

  if (depth > MAX_DEPTH) {
    nbdkit_error ("%s: directories nested more than %d deep",
                  dir_path, MAX_DEPTH);
    return -1;
  }
  if (list_names (dir_path, &names) == -1)
    goto err;
  for (i = 0; i < names.len; ++i) {
    char *path;
    /* dirs may move as it grows, so look the path up each time. */
    if (asprintf (&path, "%s/%s",
                  floppy->dirs.ptr[dir_index].host_path, names.ptr[i]) == -1) {
      nbdkit_error ("asprintf: %m");
      goto err;
    }
    if (add_child (floppy, dir_index, names.ptr[i], path) == -1) {
      names.ptr[i] = NULL;
      goto err;
    }
    names.ptr[i] = NULL;        /* owned by the child now */
  }
  string_vector_reset (&names);
  if (name_children (&floppy->dirs.ptr[dir_index], dir_index == 0) == -1)
    return -1;

  nchildren = floppy->dirs.ptr[dir_index].children.len;
  for (i = 0; i < nchildren; ++i) {
    const struct child *c = &floppy->dirs.ptr[dir_index].children.ptr[i];
    if (c->is_dir && scan_dir (floppy, c->index, depth + 1) == -1)
      return -1;
  }
  return 0;

 err:
  string_vector_free_all (&names);
  return -1;
}

int
floppy_scan (struct floppy *floppy, const char *path)
{
  struct dir root = { .parent = 0 };
  struct stat st;

  root.host_path = realpath (path, NULL);
  if (root.host_path == NULL || stat (root.host_path, &st) == -1) {
    nbdkit_error ("dir=%s: %m", path);
    free (root.host_path);
    return -1;
  }
  if (!S_ISDIR (st.st_mode)) {
    nbdkit_error ("dir=%s: not a directory", path);
    free (root.host_path);
    return -1;
  }
  root.mtime = st.st_mtim;
  root.atime = st.st_atim;
  if (dir_vector_append (&floppy->dirs, root) == -1) {
    nbdkit_error ("realloc: %m");
    free (root.host_path);
    return -1;
  }
  return scan_dir (floppy, 0, 0);
}

/* FAT dates and times are local time, 1980 to 2107, 2 second steps. */
static void
fat_time (const struct timespec *ts, uint16_t *date, uint16_t *time)
{
  struct tm tm;
  time_t t = ts->tv_sec;

  if (localtime_r (&t, &tm) == NULL || tm.tm_year < 80) {
    *date = (1 << 5) | 1;       /* 1980-01-01 00:00:00 */
    *time = 0;
    return;
  }
  if (tm.tm_year > 207) {
    *date = (127 << 9) | (12 << 5) | 31;
    *time = (23 << 11) | (59 << 5) | 29;
    return;
  }
  *date = ((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday;
  *time = (tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2);
}

static void
write_short_entry (uint8_t *e, const uint8_t name[11], uint8_t attr,
                   uint32_t cluster, uint32_t size,
                   const struct timespec *mtime, const struct timespec *atime)
{
  uint16_t date, time, adate, atime_unused;

  fat_time (mtime, &date, &time);
  fat_time (atime, &adate, &atime_unused);
  memcpy (e, name, 11);
  e[11] = attr;
  put16 (e + 14, time);         /* creation time: mtime, the best known */
  put16 (e + 16, date);
  put16 (e + 18, adate);
  put16 (e + 20, cluster >> 16);
  put16 (e + 22, time);
  put16 (e + 24, date);
  put16 (e + 26, cluster & 0xffff);
  put32 (e + 28, size);
}

/* Write the long-name entries of C (last part first) at E. */
static uint8_t *
write_lfn_entries (uint8_t *e, const struct child *c)
{
  static const uint8_t char_offsets[LFN_CHARS] =
    { 1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30 };
  uint16_t utf16[256];
  uint8_t checksum = short_name_checksum (c->short_name);
  size_t len, k, j;

  if (utf8_to_utf16 (c->name, utf16, &len) == -1)
    abort ();                   /* checked in name_children */
  for (k = c->lfn_entries; k >= 1; --k, e += DIRENT_SIZE) {
    e[0] = k | (k == c->lfn_entries ? LFN_LAST : 0);
    e[11] = ATTR_LONG_NAME;
    e[13] = checksum;
    for (j = 0; j < LFN_CHARS; ++j) {
      size_t i = (k - 1) * LFN_CHARS + j;
      uint16_t u = i < len ? utf16[i] : i == len ? 0 : 0xffff;
      put16 (e + char_offsets[j], u);
    }
  }
  return e;
}

static uint32_t
child_cluster (const struct floppy *floppy, const struct child *c)
{
  return c->is_dir ? floppy->dirs.ptr[c->index].first_cluster
    : floppy->files.ptr[c->index].first_cluster;
}

static int
build_directory (struct floppy *floppy, size_t index)
{
  struct dir *dir = &floppy->dirs.ptr[index];
  uint8_t *e;
  size_t i;

  dir->entries = calloc (dir->nslots, DIRENT_SIZE);
  if (dir->entries == NULL) {
    nbdkit_error ("calloc: %m");
    return -1;
  }
  e = dir->entries;
  if (index == 0)
    write_short_entry (e, (const uint8_t *) floppy->label, ATTR_VOLUME_ID,
                       0, 0, &dir->mtime, &dir->atime);
  else {
    uint32_t parent = dir->parent == 0 ? 0
      : floppy->dirs.ptr[dir->parent].first_cluster;
    const struct dir *p = &floppy->dirs.ptr[dir->parent];
    write_short_entry (e, (const uint8_t *) ".          ", ATTR_DIRECTORY,
                       dir->first_cluster, 0, &dir->mtime, &dir->atime);
    e += DIRENT_SIZE;
    write_short_entry (e, (const uint8_t *) "..         ", ATTR_DIRECTORY,
                       parent, 0, &p->mtime, &p->atime);
  }
  e += DIRENT_SIZE;
  for (i = 0; i < dir->children.len; ++i) {
    const struct child *c = &dir->children.ptr[i];
    uint32_t size = c->is_dir ? 0 : floppy->files.ptr[c->index].size;
    e = write_lfn_entries (e, c);
    write_short_entry (e, c->short_name,
                       c->is_dir ? ATTR_DIRECTORY : ATTR_ARCHIVE,
                       child_cluster (floppy, c), size, &c->mtime, &c->atime);
    e += DIRENT_SIZE;
  }
  return 0;
}

int
floppy_build_directories (struct floppy *floppy)
{
  size_t i;

  for (i = 0; i < floppy->dirs.len; ++i)
    if (build_directory (floppy, i) == -1)
      return -1;
  return 0;
}

void
floppy_free (struct floppy *floppy)
{
  size_t i, j;

  for (i = 0; i < floppy->dirs.len; ++i) {
    struct dir *d = &floppy->dirs.ptr[i];
    for (j = 0; j < d->children.len; ++j)
      free (d->children.ptr[j].name);
    child_vector_reset (&d->children);
    free (d->host_path);
    free (d->entries);
  }
  dir_vector_reset (&floppy->dirs);
  for (i = 0; i < floppy->files.len; ++i)
    free (floppy->files.ptr[i].host_path);
  file_vector_reset (&floppy->files);
  run_vector_reset (&floppy->runs);
}
