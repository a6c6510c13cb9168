/* SPDX-License-Identifier: BSD-3-Clause
 * TLS.  This build answers STARTTLS as unsupported; the GnuTLS
 * implementation replaces this file when TLS support lands.
 */

#include <config.h>

#include <stdio.h>

#include "internal.h"

int
tls_init (void)
{
  fprintf (stderr, "%s: --tls: TLS support is not implemented yet\n",
           config.program_name);
  return -1;
}

void
tls_free (void)
{
}

int
tls_upgrade (struct connection *conn)
{
  nbdkit_error ("TLS is not supported");
  return -1;
}
