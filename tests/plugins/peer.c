/* SPDX-License-Identifier: BSD-3-Clause
 * A test plugin whose disk is a text describing the connection as the
 * plugin API reports it: TLS flag, PSK username and certificate DNs.
 */

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISK_SIZE 4096

static void *
peer_open (int readonly)
{
  char *disk = calloc (1, DISK_SIZE);
  char *dn = nbdkit_peer_tls_dn ();
  char *issuer = nbdkit_peer_tls_issuer_dn ();
  char *user = nbdkit_peer_tls_username ();

  if (disk == NULL || dn == NULL || issuer == NULL || user == NULL) {
    free (disk);
    disk = NULL;
  }
  else
    snprintf (disk, DISK_SIZE, "tls=%d\nuser=%s\ndn=%s\nissuer=%s\n",
              nbdkit_is_tls (), user, dn, issuer);
  free (dn);
  free (issuer);
  free (user);
  return disk;
}

static void
peer_close (void *handle)
{
  free (handle);
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
peer_get_size (void *handle)
{
  return DISK_SIZE;
}

static int
peer_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
            uint32_t flags)
{
  memcpy (buf, (char *) handle + offset, count);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "peer",
  .open = peer_open,
  .close = peer_close,
  .get_size = peer_get_size,
  .pread = peer_pread,
};

NBDKIT_REGISTER_PLUGIN (plugin)
