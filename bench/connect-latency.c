/* SPDX-License-Identifier: BSD-3-Clause */
/* Connection-setup benchmark: connects to a URI up to COUNT times in a
 * row (stopping early after SECONDS once it has 10 samples, so a slow server
 * cannot stretch the run), timing socket connect plus the whole NBD
 * handshake up to the end of NBD_OPT_GO, and prints the median in
 * microseconds.  The disconnect is not timed.  Not part of the test suite.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "loadgen.h"

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

/* Returns the handshake time in seconds, or a negative number on error. */
static double
time_one_connection (const char *uri)
{
  struct nbd_handle *nbd;
  double started, elapsed;

  started = now_seconds ();
  nbd = nbd_create ();
  if (nbd == NULL || nbd_connect_uri (nbd, uri) == -1) {
    fprintf (stderr, "connect-latency: %s\n", nbd_get_error ());
    nbd_close (nbd);
    return -1;
  }
  elapsed = now_seconds () - started;
  nbd_shutdown (nbd, 0);
  nbd_close (nbd);
  return elapsed;
}

int
main (int argc, char *argv[])
{
  unsigned long count = 200, taken;
  double max_seconds = 1, started, *samples;
  char *end;
  int c;

  while ((c = getopt (argc, argv, "n:t:h")) != -1) {
    switch (c) {
    case 'n':
      errno = 0;
      count = strtoul (optarg, &end, 10);
      if (errno != 0 || *end != '\0' || count == 0 || count > 1000000) {
        fprintf (stderr, "connect-latency: bad count: %s\n", optarg);
        return EXIT_FAILURE;
      }
      break;
    case 't':
      max_seconds = atof (optarg);
      break;
    case 'h':
      printf ("usage: connect-latency [-n COUNT] [-t SECONDS] URI\n");
      return EXIT_SUCCESS;
    default:
      fprintf (stderr, "usage: connect-latency [-n COUNT] [-t SECONDS] URI\n");
      return EXIT_FAILURE;
    }
  }
  if (optind != argc - 1) {
    fprintf (stderr, "usage: connect-latency [-n COUNT] [-t SECONDS] URI\n");
    return EXIT_FAILURE;
  }

  samples = calloc (count, sizeof *samples);
  if (samples == NULL) {
    perror ("calloc");
    return EXIT_FAILURE;
  }
  started = now_seconds ();
  for (taken = 0; taken < count; taken++) {
    if (taken >= 10 && now_seconds () - started > max_seconds)
      break;
    samples[taken] = time_one_connection (argv[optind]);
    if (samples[taken] < 0) {
      free (samples);
      return EXIT_FAILURE;
    }
  }
  qsort (samples, taken, sizeof *samples, compare_doubles);
  printf ("%.1f\n", samples[taken / 2] * 1e6);
  free (samples);
  return EXIT_SUCCESS;
}
