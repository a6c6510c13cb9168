/* SPDX-License-Identifier: BSD-3-Clause
 * nbdkit-info-plugin: a read-only disk whose contents describe the
 * connection: the export name the client asked for, the client's address,
 * or a clock (wallclock, server uptime, connection time).
 */

#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#ifdef __linux__
#include <linux/vm_sockets.h>
#endif

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "base64.h"
#include "utils.h"

enum mode {
  MODE_EXPORTNAME,
  MODE_BASE64EXPORTNAME,
  MODE_ADDRESS,
  MODE_TIME,
  MODE_UPTIME,
  MODE_CONNTIME,
};

static const char *const mode_names[] = {
  [MODE_EXPORTNAME] = "exportname",
  [MODE_BASE64EXPORTNAME] = "base64exportname",
  [MODE_ADDRESS] = "address",
  [MODE_TIME] = "time",
  [MODE_UPTIME] = "uptime",
  [MODE_CONNTIME] = "conntime",
};

/* mode=: what the disk shows. */
static enum mode mode = MODE_EXPORTNAME;

/* When the plugin was loaded, the zero point of mode=uptime. */
static struct timespec load_time;

/* The clock modes serve 8 bytes of seconds and 4 of microseconds. */
#define CLOCK_DISK_SIZE 12

struct handle {
  char *text;                   /* the disk in the text modes */
  size_t len;
  struct timespec open_time;    /* the zero point of mode=conntime */
};

static void
info_load (void)
{
  clock_gettime (CLOCK_MONOTONIC, &load_time);
}

static void
info_dump_plugin (void)
{
  printf ("info_address=yes\n");
  printf ("info_base64=yes\n");
}

static int
info_config (const char *key, const char *value)
{
  if (strcmp (key, "mode") != 0) {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  for (size_t i = 0; i < ARRAY_SIZE (mode_names); ++i) {
    if (strcmp (value, mode_names[i]) == 0) {
      mode = i;
      return 0;
    }
  }
  nbdkit_error ("unknown mode '%s': use exportname, base64exportname, "
                "address, time, uptime or conntime", value);
  return -1;
}

#define info_config_help \
  "[mode=]exportname|base64exportname|address|time|uptime|conntime\n" \
  "                       What the disk contains (default exportname)."

/* The client's address as text, in the usual notation for its family.
 * A Unix socket's path is a host detail, so it shows only as "unix".
 */
static int
format_address (struct handle *h)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char host[INET6_ADDRSTRLEN];
  int r;

  if (nbdkit_peer_name ((struct sockaddr *) &ss, &len) == -1)
    return -1;

  switch (ss.ss_family) {
  case AF_INET: {
    const struct sockaddr_in *sin = (const struct sockaddr_in *) &ss;

    inet_ntop (AF_INET, &sin->sin_addr, host, sizeof host);
    r = asprintf (&h->text, "%s:%u", host, ntohs (sin->sin_port));
    break;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) &ss;

    inet_ntop (AF_INET6, &sin6->sin6_addr, host, sizeof host);
    r = asprintf (&h->text, "[%s]:%u", host, ntohs (sin6->sin6_port));
    break;
  }
  case AF_UNIX:
    r = asprintf (&h->text, "unix");
    break;
#ifdef AF_VSOCK
  case AF_VSOCK: {
    const struct sockaddr_vm *svm = (const struct sockaddr_vm *) &ss;

    r = asprintf (&h->text, "vsock:%u:%u", svm->svm_cid, svm->svm_port);
    break;
  }
#endif
  default:
    nbdkit_error ("address: unknown address family %d", ss.ss_family);
    return -1;
  }
  if (r == -1) {
    h->text = NULL;
    nbdkit_error ("asprintf: %m");
    return -1;
  }
  h->len = r;
  return 0;
}

static int
copy_export_name (struct handle *h)
{
  const char *name = nbdkit_export_name ();

  if (name == NULL)
    return -1;
  h->text = strdup (name);
  if (h->text == NULL) {
    nbdkit_error ("strdup: %m");
    return -1;
  }
  h->len = strlen (h->text);
  return 0;
}

static int
decode_export_name (struct handle *h)
{
  const char *name = nbdkit_export_name ();
  unsigned char *buf;
  const char *error;

  if (name == NULL)
    return -1;

  if (base64_decode (name, &buf, &h->len, &error) == -1) {
    if (error)
      nbdkit_error ("base64exportname: the export name is not base64: %s",
                    error);
    else
      nbdkit_error ("base64exportname: %m");
    return -1;
  }
  h->text = (char *) buf;
  return 0;
}

static void *
info_open (int readonly)
{
  struct handle *h;
  int r = 0;

  h = calloc (1, sizeof *h);
  if (h == NULL) {
    nbdkit_error ("calloc: %m");
    return NULL;
  }
  clock_gettime (CLOCK_MONOTONIC, &h->open_time);

  switch (mode) {
  case MODE_EXPORTNAME:
    r = copy_export_name (h);
    break;
  case MODE_BASE64EXPORTNAME:
    r = decode_export_name (h);
    break;
  case MODE_ADDRESS:
    r = format_address (h);
    break;
  case MODE_TIME: case MODE_UPTIME: case MODE_CONNTIME:
    break;
  }
  if (r == -1) {
    free (h->text);
    free (h);
    return NULL;
  }
  return h;
}

static void
info_close (void *handle)
{
  struct handle *h = handle;

  free (h->text);
  free (h);
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
info_get_size (void *handle)
{
  struct handle *h = handle;

  switch (mode) {
  case MODE_TIME: case MODE_UPTIME: case MODE_CONNTIME:
    return CLOCK_DISK_SIZE;
  default:
    return h->len;
  }
}

/* Text modes show the same disk on every connection to one export name;
 * the clocks differ from one read to the next.
 */
static int
info_can_multi_conn (void *handle)
{
  return mode == MODE_EXPORTNAME || mode == MODE_BASE64EXPORTNAME;
}

/* NOW - SINCE as seconds and microseconds. */
static void
elapsed (const struct timespec *now, const struct timespec *since,
         uint64_t *sec, uint32_t *usec)
{
  int64_t ns = (int64_t) (now->tv_sec - since->tv_sec) * 1000000000
    + (now->tv_nsec - since->tv_nsec);

  if (ns < 0)
    ns = 0;
  *sec = ns / 1000000000;
  *usec = ns % 1000000000 / 1000;
}

/* The 12-byte clock disk: big-endian seconds, then big-endian
 * microseconds.
 */
static void
clock_disk (const struct handle *h, unsigned char *disk)
{
  struct timespec now;
  uint64_t sec;
  uint32_t usec;
  int i;

  switch (mode) {
  case MODE_TIME:
    clock_gettime (CLOCK_REALTIME, &now);
    sec = now.tv_sec;
    usec = now.tv_nsec / 1000;
    break;
  case MODE_UPTIME:
    clock_gettime (CLOCK_MONOTONIC, &now);
    elapsed (&now, &load_time, &sec, &usec);
    break;
  default:
    clock_gettime (CLOCK_MONOTONIC, &now);
    elapsed (&now, &h->open_time, &sec, &usec);
    break;
  }
  for (i = 0; i < 8; ++i)
    disk[i] = sec >> (56 - 8 * i);
  for (i = 0; i < 4; ++i)
    disk[8 + i] = usec >> (24 - 8 * i);
}

static int
info_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
            uint32_t flags)
{
  struct handle *h = handle;
  unsigned char disk[CLOCK_DISK_SIZE];

  switch (mode) {
  case MODE_TIME: case MODE_UPTIME: case MODE_CONNTIME:
    clock_disk (h, disk);
    memcpy (buf, disk + offset, count);
    break;
  default:
    memcpy (buf, h->text + offset, count);
  }
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name              = "info",
  .longname          = "nbdkit information plugin",
  .version           = PACKAGE_VERSION,
  .description       = "serve information about the connection",
  .load              = info_load,
  .dump_plugin       = info_dump_plugin,
  .config            = info_config,
  .config_help       = info_config_help,
  .magic_config_key  = "mode",
  .open              = info_open,
  .close             = info_close,
  .get_size          = info_get_size,
  .can_multi_conn    = info_can_multi_conn,
  .pread             = info_pread,
};

NBDKIT_REGISTER_PLUGIN (plugin)
