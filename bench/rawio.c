/* SPDX-License-Identifier: BSD-3-Clause */
/* Random-I/O load generator that speaks NBD itself, for measuring
 * servers faster than one libnbd thread can drive (randio.c): the same
 * workload and output, but each connection's thread keeps DEPTH aligned
 * reads or writes in flight with a minimal client of its own.  Replies
 * are read through a 1 MiB buffer, and the requests that replace them
 * are sent together in one write, so the client costs about one read
 * and one write per batch of replies instead of several system calls
 * per request.  Read payloads are still copied out, as a real client
 * would.  With -s the requests walk the disk in order instead (with
 * -b 262144, a sequential read that the client does not limit).
 * Plaintext only: nbd+unix:///[NAME]?socket=PATH or
 * nbd://HOST:PORT/[NAME]; simple replies.  Not part of the test suite.
 */

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "loadgen.h"

#define OPTS_MAGIC 0x49484156454F5054ULL     /* "IHAVEOPT" */
#define REP_MAGIC 0x3e889045565a9ULL
#define REQUEST_MAGIC 0x25609513
#define SIMPLE_REPLY_MAGIC 0x67446698
#define OPT_GO 7
#define REP_ACK 1
#define REP_INFO 3
#define CMD_READ 0
#define CMD_WRITE 1
#define CMD_DISC 2

#define READ_BUFFER (1 << 20)

struct options {
  const char *uri;
  bool write;
  bool sequential;              /* -s: each connection walks the disk */
  unsigned depth, connections;
  double seconds;
  uint32_t block_size;
};

struct worker {
  pthread_t thread;
  unsigned index;
  const struct options *o;
  int fd;
  uint64_t blocks, cursor, random_state, completed, failed;
  double finished_at;
  bool ok;
  char *rbuf, *wbuf, *data;
  size_t rlen, wlen;
};

static pthread_barrier_t start_barrier;
static double start_time;

static int
write_all (int fd, const void *vbuf, size_t len)
{
  const char *buf = vbuf;

  while (len > 0) {
    ssize_t r = write (fd, buf, len);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    buf += r;
    len -= r;
  }
  return 0;
}

static int
read_all (int fd, void *vbuf, size_t len)
{
  char *buf = vbuf;

  while (len > 0) {
    ssize_t r = read (fd, buf, len);
    if (r == -1 && errno == EINTR)
      continue;
    if (r <= 0)
      return -1;
    buf += r;
    len -= r;
  }
  return 0;
}

/* A socket connected to the server the URI names, or -1. */
static int
connect_uri (const char *uri)
{
  const char *p;
  int fd;

  if ((p = strstr (uri, "socket=")) != NULL &&
      strncmp (uri, "nbd+unix://", 11) == 0) {
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    size_t n = strcspn (p + 7, "&");
    if (n >= sizeof sun.sun_path)
      return -1;
    memcpy (sun.sun_path, p + 7, n);
    fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect (fd, (struct sockaddr *) &sun, sizeof sun) == -1) {
      close (fd);
      return -1;
    }
    return fd;
  }
  if (strncmp (uri, "nbd://", 6) == 0) {
    char host[256], port[16] = "10809";
    struct addrinfo *ai, hints = { .ai_socktype = SOCK_STREAM };
    const char *colon = strchr (uri + 6, ':'), *slash = strchr (uri + 6, '/');
    size_t hn = (colon ? colon : slash ? slash : uri + strlen (uri)) - (uri + 6);
    if (hn >= sizeof host)
      return -1;
    memcpy (host, uri + 6, hn);
    host[hn] = '\0';
    if (colon)
      snprintf (port, sizeof port, "%.*s", (int) strcspn (colon + 1, "/"),
                colon + 1);
    if (getaddrinfo (host, port, &hints, &ai) != 0)
      return -1;
    fd = socket (ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect (fd, ai->ai_addr, ai->ai_addrlen) == -1) {
      close (fd);
      fd = -1;
    }
    freeaddrinfo (ai);
    return fd;
  }
  fprintf (stderr, "rawio: unsupported URI: %s\n", uri);
  return -1;
}

/* The export name in the URI's path (nbd+unix:///NAME?socket=...,
 * nbd://HOST:PORT/NAME), not percent-decoded; "" for the default.
 */
static void
export_name (const char *uri, char *name, size_t size)
{
  const char *p = strstr (uri, "://");
  size_t n;

  p = p ? strchr (p + 3, '/') : NULL;
  n = p ? strcspn (p + 1, "?#") : 0;
  if (n >= size)
    n = 0;
  memcpy (name, p ? p + 1 : "", n);
  name[n] = '\0';
}

/* Fixed newstyle handshake, NBD_OPT_GO for the URI's export.  The
 * export's size, or -1.
 */
static int64_t
handshake (int fd, const char *uri, bool *read_only)
{
  char greeting[18], name[256];
  uint32_t cflags = htobe32 (3);   /* FIXED_NEWSTYLE | NO_ZEROES */
  struct __attribute__ ((packed)) {
    uint64_t magic; uint32_t opt, len, namelen;
  } go = { htobe64 (OPTS_MAGIC), htobe32 (OPT_GO), 0, 0 };
  uint16_t ninfo = 0;
  int64_t size = -1;

  export_name (uri, name, sizeof name);
  go.len = htobe32 (4 + strlen (name) + 2);
  go.namelen = htobe32 (strlen (name));
  if (read_all (fd, greeting, sizeof greeting) == -1 ||
      memcmp (greeting, "NBDMAGICIHAVEOPT", 16) != 0 ||
      write_all (fd, &cflags, 4) == -1 || write_all (fd, &go, sizeof go) == -1 ||
      write_all (fd, name, strlen (name)) == -1 ||
      write_all (fd, &ninfo, 2) == -1)
    return -1;
  for (;;) {
    struct __attribute__ ((packed)) {
      uint64_t magic; uint32_t opt, type, len;
    } rep;
    char data[8192];
    uint32_t len;

    if (read_all (fd, &rep, sizeof rep) == -1 ||
        be64toh (rep.magic) != REP_MAGIC)
      return -1;
    len = be32toh (rep.len);
    if (len > sizeof data || read_all (fd, data, len) == -1)
      return -1;
    if (be32toh (rep.type) == REP_ACK)
      return size;
    if (be32toh (rep.type) & 0x80000000) {
      fprintf (stderr, "rawio: NBD_OPT_GO refused (%#x)\n",
               be32toh (rep.type));
      return -1;
    }
    if (be32toh (rep.type) == REP_INFO && len >= 12 &&
        data[0] == 0 && data[1] == 0) {
      uint64_t s;
      uint16_t flags;
      memcpy (&s, data + 2, 8);
      memcpy (&flags, data + 10, 2);
      size = be64toh (s);
      *read_only = be16toh (flags) & 2;
    }
  }
}

/* The block of the next request: random, or with -s the one after the
 * last (each connection starting at its own share of the disk).
 */
static uint64_t
next_block (struct worker *w)
{
  if (!w->o->sequential)
    return next_random (&w->random_state) % w->blocks;
  if (w->cursor >= w->blocks)
    w->cursor = 0;
  return w->cursor++;
}

/* Append one request (and a write's payload) to the send buffer. */
static void
queue_request (struct worker *w, uint16_t type)
{
  const struct options *o = w->o;
  struct __attribute__ ((packed)) {
    uint32_t magic; uint16_t flags, type; uint64_t handle, offset;
    uint32_t len;
  } req = {
    htobe32 (REQUEST_MAGIC), 0, htobe16 (type), 0,
    htobe64 (next_block (w) * o->block_size),
    htobe32 (type == CMD_DISC ? 0 : o->block_size),
  };

  memcpy (w->wbuf + w->wlen, &req, sizeof req);
  w->wlen += sizeof req;
  if (type == CMD_WRITE) {
    memcpy (w->wbuf + w->wlen, w->data, o->block_size);
    w->wlen += o->block_size;
  }
}

/* Take the complete replies in the read buffer; how many. */
static unsigned
take_replies (struct worker *w, size_t *pos)
{
  size_t reply = 16 + (w->o->write ? 0 : w->o->block_size);
  unsigned n = 0;

  while (w->rlen - *pos >= reply) {
    uint32_t magic, error;
    memcpy (&magic, w->rbuf + *pos, 4);
    memcpy (&error, w->rbuf + *pos + 4, 4);
    if (be32toh (magic) != SIMPLE_REPLY_MAGIC) {
      fprintf (stderr, "rawio: bad reply magic\n");
      return -1u;
    }
    if (error)
      w->failed++;
    else
      w->completed++;
    if (!w->o->write)
      memcpy (w->data, w->rbuf + *pos + 16, w->o->block_size);
    *pos += reply;
    n++;
  }
  return n;
}

static int
run_worker (struct worker *w)
{
  const struct options *o = w->o;
  double deadline = start_time + o->seconds;
  uint16_t type = o->write ? CMD_WRITE : CMD_READ;
  unsigned in_flight = 0;
  size_t pos = 0;

  for (;;) {
    bool more = now_seconds () < deadline;
    unsigned done;
    ssize_t r;

    for (w->wlen = 0; more && in_flight < o->depth; in_flight++)
      queue_request (w, type);
    if (w->wlen && write_all (w->fd, w->wbuf, w->wlen) == -1)
      return -1;
    if (in_flight == 0)
      break;
    /* Keep a partial reply at the start of the buffer. */
    memmove (w->rbuf, w->rbuf + pos, w->rlen - pos);
    w->rlen -= pos;
    pos = 0;
    r = read (w->fd, w->rbuf + w->rlen, READ_BUFFER - w->rlen);
    if (r <= 0) {
      if (r == -1 && errno == EINTR)
        continue;
      fprintf (stderr, "rawio: read: %s\n", r ? strerror (errno) : "EOF");
      return -1;
    }
    w->rlen += r;
    done = take_replies (w, &pos);
    if (done == -1u)
      return -1;
    in_flight -= done;
  }
  w->finished_at = now_seconds ();
  w->wlen = 0;
  queue_request (w, CMD_DISC);
  write_all (w->fd, w->wbuf, w->wlen);
  return 0;
}

static void *
worker_main (void *arg)
{
  struct worker *w = arg;
  const struct options *o = w->o;
  bool read_only = false, connected = false;
  int64_t size;
  size_t i;

  w->rbuf = malloc (READ_BUFFER);
  w->wbuf = malloc ((size_t) o->depth * (28 + o->block_size) + 28);
  w->data = malloc (o->block_size);
  w->fd = connect_uri (o->uri);
  if (w->rbuf && w->wbuf && w->data && w->fd >= 0 &&
      (size = handshake (w->fd, o->uri, &read_only)) > 0) {
    w->blocks = size / o->block_size;
    w->cursor = w->blocks / o->connections * w->index;
    connected = w->blocks > 0 && !(o->write && read_only);
  }
  if (!connected)
    fprintf (stderr, "rawio: connection %u: setup failed\n", w->index);
  w->random_state = 0x9E3779B97F4A7C15ULL * (w->index + 1);
  for (i = 0; w->data && i < o->block_size; i++)
    w->data[i] = (char) next_random (&w->random_state);
  pthread_barrier_wait (&start_barrier);
  pthread_barrier_wait (&start_barrier);
  if (connected)
    w->ok = run_worker (w) == 0;
  if (w->fd >= 0)
    close (w->fd);
  free (w->rbuf);
  free (w->wbuf);
  free (w->data);
  return NULL;
}

int
main (int argc, char *argv[])
{
  struct options o = { .depth = 1, .connections = 1, .seconds = 5,
                       .block_size = 4096 };
  struct worker *workers;
  uint64_t completed = 0, failed = 0;
  double last_finish = 0;
  bool ok = true;
  unsigned i;
  int c;

  while ((c = getopt (argc, argv, "wsq:c:t:b:")) != -1) {
    switch (c) {
    case 'w': o.write = true; break;
    case 's': o.sequential = true; break;
    case 'q': o.depth = parse_number ("rawio", optarg, 1, 1024); break;
    case 'c': o.connections = parse_number ("rawio", optarg, 1, 256); break;
    case 't': o.seconds = atof (optarg); break;
    case 'b': o.block_size = parse_number ("rawio", optarg, 1, 1 << 20); break;
    default: goto usage;
    }
  }
  if (optind != argc - 1 || !(o.seconds > 0))
    goto usage;
  o.uri = argv[optind];
  /* A full read buffer must hold at least one reply. */
  if (o.block_size + 16 > READ_BUFFER)
    goto usage;

  workers = calloc (o.connections, sizeof *workers);
  if (workers == NULL) {
    perror ("calloc");
    return EXIT_FAILURE;
  }
  pthread_barrier_init (&start_barrier, NULL, o.connections + 1);
  for (i = 0; i < o.connections; i++) {
    workers[i].index = i;
    workers[i].o = &o;
    workers[i].fd = -1;
    if (pthread_create (&workers[i].thread, NULL, worker_main,
                        &workers[i]) != 0) {
      perror ("pthread_create");
      return EXIT_FAILURE;
    }
  }
  pthread_barrier_wait (&start_barrier);
  start_time = now_seconds ();
  pthread_barrier_wait (&start_barrier);
  for (i = 0; i < o.connections; i++) {
    pthread_join (workers[i].thread, NULL);
    ok = ok && workers[i].ok;
    completed += workers[i].completed;
    failed += workers[i].failed;
    if (workers[i].finished_at > last_finish)
      last_finish = workers[i].finished_at;
  }
  free (workers);
  if (failed > 0)
    fprintf (stderr, "rawio: %" PRIu64 " requests failed\n", failed);
  if (!ok || failed > 0)
    return EXIT_FAILURE;
  printf ("%.0f\n", completed / (last_finish - start_time));
  return EXIT_SUCCESS;

 usage:
  fprintf (stderr, "usage: rawio [-w] [-s] [-q DEPTH] [-c CONNECTIONS] "
           "[-t SECONDS] [-b BLOCK_SIZE] URI\n");
  return EXIT_FAILURE;
}
