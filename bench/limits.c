/* SPDX-License-Identifier: BSD-3-Clause */
/* Machine limits for the benchmark suite, in GiB/s:
 *
 *   memcpy  one thread copying a large buffer (256 MiB) into another,
 *           several times over, after both have been faulted in;
 *   unix    a socketpair with a writer and a reader process both pinned
 *           to the same CPU (the first one this process may use, CPU 0
 *           normally), the writer sending 256 KiB chunks and the reader
 *           reading them into a buffer of the same size, default socket
 *           buffer sizes.  This is about the most a server and a client
 *           sharing one CPU can move through a Unix socket.
 *
 * Prints "memcpy N.N" and "unix N.N", one per line.  Not part of the
 * test suite.
 *
 * usage: limits [-b BUFFER-MiB] [-n COPIES] [-u UNIX-MiB] [-c CHUNK-KiB]
 */

#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

static unsigned long
parse_count (const char *arg, const char *what)
{
  char *end;
  unsigned long value;

  errno = 0;
  value = strtoul (arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0' || value == 0) {
    fprintf (stderr, "limits: bad %s: %s\n", what, arg);
    exit (2);
  }
  return value;
}

/* Copy a BUFFER_BYTES buffer COPIES times; GiB/s copied. */
static double
measure_memcpy (size_t buffer_bytes, unsigned long copies)
{
  char *src, *dst;
  double start, elapsed;
  unsigned long i;

  src = malloc (buffer_bytes);
  dst = malloc (buffer_bytes);
  if (src == NULL || dst == NULL) {
    perror ("limits: malloc");
    exit (1);
  }
  /* Fault every page in first, so the timed copies measure copying. */
  memset (src, 0x5a, buffer_bytes);
  memset (dst, 0, buffer_bytes);
  memcpy (dst, src, buffer_bytes);

  start = now_seconds ();
  for (i = 0; i < copies; i++) {
    src[i % buffer_bytes] = (char) i;
    memcpy (dst, src, buffer_bytes);
    /* Keep the compiler from dropping or merging the copies. */
    __asm__ volatile ("" : : "r" (dst), "r" (src) : "memory");
  }
  elapsed = now_seconds () - start;
  if (dst[0] != src[0]) {
    fprintf (stderr, "limits: memcpy mismatch\n");
    exit (1);
  }
  free (src);
  free (dst);
  return buffer_bytes * (double) copies / GIB / elapsed;
}

/* Pin the calling process to CPU. */
static void
pin_to (int cpu)
{
  cpu_set_t set;

  CPU_ZERO (&set);
  CPU_SET (cpu, &set);
  if (sched_setaffinity (0, sizeof set, &set) == -1) {
    perror ("limits: sched_setaffinity");
    exit (1);
  }
}

/* The lowest-numbered CPU this process may run on (0 unless a cpuset
 * says otherwise).
 */
static int
first_allowed_cpu (void)
{
  cpu_set_t set;
  int cpu;

  if (sched_getaffinity (0, sizeof set, &set) == -1) {
    perror ("limits: sched_getaffinity");
    exit (1);
  }
  for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
    if (CPU_ISSET (cpu, &set))
      return cpu;
  return 0;
}

/* Writer and reader on one CPU, TOTAL_BYTES in CHUNK_BYTES writes;
 * GiB/s as seen by the reader (first fork to last byte).
 */
static double
measure_unix (uint64_t total_bytes, size_t chunk_bytes)
{
  int fds[2], status, cpu;
  char *buffer;
  pid_t writer;
  uint64_t received = 0;
  double start, elapsed;
  ssize_t r;

  buffer = malloc (chunk_bytes);
  if (buffer == NULL) {
    perror ("limits: malloc");
    exit (1);
  }
  memset (buffer, 0xa5, chunk_bytes);
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == -1) {
    perror ("limits: socketpair");
    exit (1);
  }
  cpu = first_allowed_cpu ();
  pin_to (cpu);                 /* the child inherits it */

  start = now_seconds ();
  writer = fork ();
  if (writer == -1) {
    perror ("limits: fork");
    exit (1);
  }
  if (writer == 0) {
    uint64_t sent = 0;

    close (fds[0]);
    while (sent < total_bytes) {
      size_t want = chunk_bytes;
      ssize_t w;

      if (total_bytes - sent < want)
        want = total_bytes - sent;
      w = write (fds[1], buffer, want);
      if (w == -1) {
        if (errno == EINTR)
          continue;
        perror ("limits: write");
        _exit (1);
      }
      sent += w;
    }
    _exit (0);
  }

  close (fds[1]);
  for (;;) {
    r = read (fds[0], buffer, chunk_bytes);
    if (r == -1) {
      if (errno == EINTR)
        continue;
      perror ("limits: read");
      kill (writer, SIGKILL);
      exit (1);
    }
    if (r == 0)
      break;
    received += r;
  }
  elapsed = now_seconds () - start;
  close (fds[0]);
  if (waitpid (writer, &status, 0) == -1 ||
      !WIFEXITED (status) || WEXITSTATUS (status) != 0) {
    fprintf (stderr, "limits: the writer failed\n");
    exit (1);
  }
  if (received != total_bytes) {
    fprintf (stderr, "limits: received %llu of %llu bytes\n",
             (unsigned long long) received, (unsigned long long) total_bytes);
    exit (1);
  }
  free (buffer);
  return total_bytes / GIB / elapsed;
}

int
main (int argc, char *argv[])
{
  unsigned long buffer_mib = 256, copies = 8, unix_mib = 2048, chunk_kib = 256;
  int opt;

  while ((opt = getopt (argc, argv, "b:n:u:c:")) != -1) {
    switch (opt) {
    case 'b': buffer_mib = parse_count (optarg, "buffer size"); break;
    case 'n': copies = parse_count (optarg, "copy count"); break;
    case 'u': unix_mib = parse_count (optarg, "unix total"); break;
    case 'c': chunk_kib = parse_count (optarg, "chunk size"); break;
    default:
      fprintf (stderr, "usage: limits [-b BUFFER-MiB] [-n COPIES] "
               "[-u UNIX-MiB] [-c CHUNK-KiB]\n");
      return 2;
    }
  }
  if (optind != argc) {
    fprintf (stderr, "limits: unexpected argument: %s\n", argv[optind]);
    return 2;
  }

  printf ("memcpy %.1f\n", measure_memcpy (buffer_mib << 20, copies));
  fflush (stdout);
  printf ("unix %.1f\n",
          measure_unix ((uint64_t) unix_mib << 20, chunk_kib << 10));
  return 0;
}
