/* SPDX-License-Identifier: BSD-3-Clause
 * Oldstyle negotiation (nbd-protocol.md "Oldstyle negotiation"): the
 * server sends the size and flags of the default export at once.
 */

#include <config.h>

#include <endian.h>
#include <string.h>

#include "internal.h"
#include "nbd-protocol.h"

int
protocol_handshake_oldstyle (struct connection *conn)
{
  struct nbd_old_handshake hs;
  const char *name;

  name = backend_default_export (top, config.readonly);
  if (name == NULL) {
    nbdkit_error ("oldstyle protocol: the plugin has no default export");
    return -1;
  }
  if (protocol_open_export (conn, name) == -1)
    return -1;

  memset (&hs, 0, sizeof hs);
  hs.nbdmagic = htobe64 (NBD_MAGIC);
  hs.version = htobe64 (NBD_OLD_VERSION);
  hs.exportsize = htobe64 (conn->exportsize);
  hs.gflags = 0;
  hs.eflags = htobe16 (conn->eflags);
  if (conn->send (conn, &hs, sizeof hs, 0) == -1) {
    nbdkit_error ("oldstyle handshake: write: %m");
    return -1;
  }
  return 0;
}
