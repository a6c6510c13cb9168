/* SPDX-License-Identifier: BSD-3-Clause */
/* Idle connections for the benchmark suite: opens N connections to an
 * NBD URI, each completing the whole handshake (nbd_connect_uri), prints
 * "ready" on stdout, then waits until its standard input reaches end of
 * file and closes them all (NBD_CMD_DISC first).  The caller measures
 * the server's memory while the connections sit idle.  Not part of the
 * test suite.
 *
 * usage: idle-conns [-n N] URI       (N defaults to 200)
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <libnbd.h>

/* Each connection is a socket; make sure N of them fit. */
static void
raise_fd_limit (unsigned long n)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) == -1)
    return;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < n + 64) {
    limit.rlim_cur = limit.rlim_max;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_cur > n + 64)
      limit.rlim_cur = n + 64;
    setrlimit (RLIMIT_NOFILE, &limit);
  }
}

int
main (int argc, char *argv[])
{
  unsigned long n = 200, i;
  struct nbd_handle **handles;
  const char *uri;
  char buffer[256], *end;
  ssize_t r;
  int opt, status = EXIT_SUCCESS;

  while ((opt = getopt (argc, argv, "n:")) != -1) {
    switch (opt) {
    case 'n':
      errno = 0;
      n = strtoul (optarg, &end, 10);
      if (errno != 0 || end == optarg || *end != '\0' || n == 0) {
        fprintf (stderr, "idle-conns: bad count: %s\n", optarg);
        return 2;
      }
      break;
    default:
      fprintf (stderr, "usage: idle-conns [-n N] URI\n");
      return 2;
    }
  }
  if (argc - optind != 1) {
    fprintf (stderr, "usage: idle-conns [-n N] URI\n");
    return 2;
  }
  uri = argv[optind];
  raise_fd_limit (n);

  handles = calloc (n, sizeof *handles);
  if (handles == NULL) {
    perror ("idle-conns: calloc");
    return 1;
  }
  for (i = 0; i < n; i++) {
    handles[i] = nbd_create ();
    /* Allow tls-psk-file= in the URI, for the TLS servers. */
    if (handles[i] == NULL ||
        nbd_set_uri_allow_local_file (handles[i], true) == -1 ||
        nbd_connect_uri (handles[i], uri) == -1) {
      fprintf (stderr, "idle-conns: connection %lu of %lu: %s\n",
               i + 1, n, nbd_get_error ());
      status = EXIT_FAILURE;
      n = i + (handles[i] != NULL);
      goto close_all;
    }
  }

  printf ("ready\n");
  fflush (stdout);

  /* Idle until the caller closes our standard input. */
  do
    r = read (STDIN_FILENO, buffer, sizeof buffer);
  while (r > 0 || (r == -1 && errno == EINTR));

 close_all:
  for (i = 0; i < n; i++) {
    if (handles[i] == NULL)
      continue;
    if (nbd_aio_is_ready (handles[i]))
      nbd_shutdown (handles[i], 0);
    nbd_close (handles[i]);
  }
  free (handles);
  return status;
}
