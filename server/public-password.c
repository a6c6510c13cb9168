/* SPDX-License-Identifier: BSD-3-Clause
 * nbdkit_read_password and nbdkit_stdio_safe: a password given on the
 * command line, typed at the terminal ("-"), read from a file ("+FILE")
 * or from an inherited descriptor ("-FD").
 */

#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "internal.h"
#include "cleanup.h"
#include "utils.h"

/* Read one line from FP, without the newline, into a new string. */
static int
read_line (FILE *fp, char **ret)
{
  char *line = NULL;
  size_t n = 0;
  ssize_t r = getline (&line, &n, fp);

  if (r == -1) {
    free (line);
    return -1;
  }
  if (r > 0 && line[r - 1] == '\n')
    line[--r] = '\0';
  *ret = line;
  return 0;
}

static int
read_password_interactive (char **password)
{
  struct termios orig, noecho;
  bool tty = isatty (STDIN_FILENO);
  int r;

  if (!nbdkit_stdio_safe ()) {
    nbdkit_error ("stdin is not available for reading a password");
    return -1;
  }
  if (!tty) {
    nbdkit_error ("stdin is not a tty, cannot read password interactively");
    return -1;
  }
  printf ("password: ");
  fflush (stdout);
  tcgetattr (STDIN_FILENO, &orig);
  noecho = orig;
  noecho.c_lflag &= ~ECHO;
  tcsetattr (STDIN_FILENO, TCSAFLUSH, &noecho);
  r = read_line (stdin, password);
  tcsetattr (STDIN_FILENO, TCSAFLUSH, &orig);
  printf ("\n");
  if (r == -1) {
    nbdkit_error ("could not read password from stdin");
    return -1;
  }
  return 0;
}

static int
read_password_from_fd (const char *what, int fd, bool close_it,
                       char **password)
{
  char *buf = NULL;
  size_t n = 0, len = 0;
  ssize_t r;
  char tmp[4096];

  for (;;) {
    r = read (fd, tmp, sizeof tmp);
    if (r == -1 && errno == EINTR)
      continue;
    if (r == -1) {
      nbdkit_error ("reading password from %s: %m", what);
      free (buf);
      if (close_it)
        close (fd);
      return -1;
    }
    if (r == 0)
      break;
    if (len + r + 1 > n) {
      char *p;
      n = (len + r + 1) * 2;
      p = realloc (buf, n);
      if (p == NULL) {
        nbdkit_error ("realloc: %m");
        free (buf);
        if (close_it)
          close (fd);
        return -1;
      }
      buf = p;
    }
    memcpy (buf + len, tmp, r);
    len += r;
  }
  if (close_it)
    close (fd);
  if (buf == NULL) {
    buf = strdup ("");
    if (buf == NULL) {
      nbdkit_error ("strdup: %m");
      return -1;
    }
  }
  buf[len] = '\0';
  /* A single trailing newline is not part of the password. */
  if (len > 0 && buf[len - 1] == '\n')
    buf[len - 1] = '\0';
  *password = buf;
  return 0;
}

NBDKIT_DLL_PUBLIC int
nbdkit_read_password (const char *value, char **password)
{
  *password = NULL;

  if (strcmp (value, "-") == 0)
    return read_password_interactive (password);

  if (value[0] == '-' && isdigit ((unsigned char) value[1])) {
    int fd;
    if (nbdkit_parse_int ("password file descriptor", &value[1], &fd) == -1)
      return -1;
    if (fd <= STDERR_FILENO) {
      nbdkit_error ("password file descriptor %d: cannot use stdin, stdout "
                    "or stderr", fd);
      return -1;
    }
    return read_password_from_fd (value, fd, true, password);
  }

  if (value[0] == '+') {
    int fd = open (&value[1], O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
      nbdkit_error ("open: %s: %m", &value[1]);
      return -1;
    }
    return read_password_from_fd (&value[1], fd, true, password);
  }

  *password = strdup (value);
  if (*password == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  return 0;
}

NBDKIT_DLL_PUBLIC int
nbdkit_stdio_safe (void)
{
  return !config.listen_stdin;
}
