/* SPDX-License-Identifier: BSD-3-Clause */
/* Random-I/O load generator for the benchmark suite: N connections, one
 * thread each, keeping a bounded number of aligned reads or writes in
 * flight with libnbd's asynchronous API for a fixed time, then printing
 * the aggregate operations per second.  Not part of the test suite.
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libnbd.h>

#include "loadgen.h"

/* What the whole run does, from the command line. */
struct options {
  const char *uri;
  bool write;                   /* NBD_CMD_WRITE instead of NBD_CMD_READ */
  unsigned depth;               /* commands in flight per connection */
  unsigned connections;         /* handles, one thread each */
  double seconds;               /* how long to keep submitting */
  uint32_t block_size;          /* bytes per request, also the alignment */
};

/* One connection's state; written only by its own thread until joined. */
struct worker {
  pthread_t thread;
  unsigned index;
  const struct options *options;
  struct nbd_handle *nbd;
  uint64_t blocks;              /* export size / block size */
  uint64_t random_state;        /* xorshift64 state, never zero */
  char *buffer;
  uint64_t completed;
  uint64_t failed;
  double finished_at;           /* monotonic seconds when drained */
  bool ok;
};

static pthread_barrier_t start_barrier;
static double start_time;       /* set by the main thread at the barrier */

static int
command_done (void *user_data, int *error)
{
  struct worker *w = user_data;

  if (*error != 0)
    w->failed++;
  else
    w->completed++;
  return 1;                     /* retire the command automatically */
}

static int
submit_one (struct worker *w)
{
  const struct options *o = w->options;
  uint64_t offset = (next_random (&w->random_state) % w->blocks)
    * o->block_size;
  nbd_completion_callback done = { .callback = command_done, .user_data = w };
  int64_t cookie;

  /* Every request shares one buffer: reads overwrite it in turn and
   * writes only read it, and the data itself is never checked.
   */
  if (o->write)
    cookie = nbd_aio_pwrite (w->nbd, w->buffer, o->block_size, offset,
                             done, 0);
  else
    cookie = nbd_aio_pread (w->nbd, w->buffer, o->block_size, offset,
                            done, 0);
  return cookie == -1 ? -1 : 0;
}

static int
connect_worker (struct worker *w)
{
  const struct options *o = w->options;
  int64_t size;
  size_t i;

  w->nbd = nbd_create ();
  /* Local files in the URI: tls-psk-file= for the TLS figures. */
  if (w->nbd == NULL || nbd_set_uri_allow_local_file (w->nbd, true) == -1 ||
      nbd_connect_uri (w->nbd, o->uri) == -1)
    return -1;
  size = nbd_get_size (w->nbd);
  if (size == -1)
    return -1;
  w->blocks = (uint64_t) size / o->block_size;
  if (w->blocks == 0) {
    fprintf (stderr, "randio: export is smaller than one block\n");
    return -1;
  }
  if (o->write && nbd_is_read_only (w->nbd) == 1) {
    fprintf (stderr, "randio: export is read-only\n");
    return -1;
  }

  w->buffer = malloc (o->block_size);
  if (w->buffer == NULL) {
    perror ("malloc");
    return -1;
  }
  w->random_state = 0x9E3779B97F4A7C15ULL * (w->index + 1);
  for (i = 0; i < o->block_size; i++)
    w->buffer[i] = (char) next_random (&w->random_state);
  return 0;
}

static int
run_worker (struct worker *w)
{
  const struct options *o = w->options;
  double deadline = start_time + o->seconds;

  while (now_seconds () < deadline) {
    while (nbd_aio_in_flight (w->nbd) < (int) o->depth)
      if (submit_one (w) == -1)
        return -1;
    if (nbd_poll (w->nbd, -1) == -1)
      return -1;
  }
  while (nbd_aio_in_flight (w->nbd) > 0)
    if (nbd_poll (w->nbd, -1) == -1)
      return -1;
  w->finished_at = now_seconds ();
  return 0;
}

static void *
worker_main (void *arg)
{
  struct worker *w = arg;
  bool connected = connect_worker (w) == 0;

  if (!connected)
    fprintf (stderr, "randio: connection %u: %s\n", w->index,
             nbd_get_error () ? nbd_get_error () : "setup failed");
  /* Everyone reaches the barrier, even on failure, so nobody waits forever. */
  pthread_barrier_wait (&start_barrier);
  pthread_barrier_wait (&start_barrier);
  if (connected) {
    w->ok = run_worker (w) == 0;
    if (!w->ok)
      fprintf (stderr, "randio: connection %u: %s\n", w->index,
               nbd_get_error ());
    nbd_shutdown (w->nbd, 0);
  }
  nbd_close (w->nbd);
  free (w->buffer);
  return NULL;
}

static void
usage (FILE *fp, int status)
{
  fprintf (fp,
           "usage: randio [-w] [-q DEPTH] [-c CONNECTIONS] [-t SECONDS]\n"
           "              [-b BLOCK_SIZE] URI\n"
           "Prints aggregate operations per second on stdout.\n");
  exit (status);
}

static void
parse_argv (int argc, char *argv[], struct options *o)
{
  int c;

  *o = (struct options) { .depth = 1, .connections = 1, .seconds = 5,
                          .block_size = 4096 };
  while ((c = getopt (argc, argv, "wq:c:t:b:h")) != -1) {
    switch (c) {
    case 'w': o->write = true; break;
    case 'q': o->depth = parse_number ("randio", optarg, 1, 1024); break;
    case 'c': o->connections = parse_number ("randio", optarg, 1, 256); break;
    case 't': o->seconds = atof (optarg); break;
    case 'b': o->block_size = parse_number ("randio", optarg, 1, 32 << 20); break;
    case 'h': usage (stdout, EXIT_SUCCESS); break;
    default: usage (stderr, EXIT_FAILURE);
    }
  }
  if (optind != argc - 1 || !(o->seconds > 0))
    usage (stderr, EXIT_FAILURE);
  o->uri = argv[optind];
}

int
main (int argc, char *argv[])
{
  struct options options;
  struct worker *workers;
  uint64_t completed = 0, failed = 0;
  double last_finish = 0;
  bool ok = true;
  unsigned i;

  parse_argv (argc, argv, &options);
  workers = calloc (options.connections, sizeof *workers);
  if (workers == NULL) {
    perror ("calloc");
    return EXIT_FAILURE;
  }
  /* Two rounds on the barrier: all threads connected, then start_time set. */
  pthread_barrier_init (&start_barrier, NULL, options.connections + 1);
  for (i = 0; i < options.connections; i++) {
    workers[i].index = i;
    workers[i].options = &options;
    if (pthread_create (&workers[i].thread, NULL, worker_main,
                        &workers[i]) != 0) {
      perror ("pthread_create");
      return EXIT_FAILURE;
    }
  }
  pthread_barrier_wait (&start_barrier);
  start_time = now_seconds ();
  pthread_barrier_wait (&start_barrier);

  for (i = 0; i < options.connections; i++) {
    pthread_join (workers[i].thread, NULL);
    ok = ok && workers[i].ok;
    completed += workers[i].completed;
    failed += workers[i].failed;
    if (workers[i].finished_at > last_finish)
      last_finish = workers[i].finished_at;
  }
  free (workers);

  if (!ok || failed > 0) {
    fprintf (stderr, "randio: %" PRIu64 " requests failed\n", failed);
    return EXIT_FAILURE;
  }
  printf ("%.0f\n", completed / (last_finish - start_time));
  return EXIT_SUCCESS;
}
