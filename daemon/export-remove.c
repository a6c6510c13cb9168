/* SPDX-License-Identifier: BSD-3-Clause
 * Removing an export: at once when no worker runs, else once its worker
 * has stopped gracefully (RemoveExport, a transient export's creator
 * leaving the bus); the object, the stored definition, the listeners.
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbdkitd.h"
#include "cleanup.h"

/* Remove E once its worker has stopped gracefully (clients finish their
 * in-flight requests: nbdkit-worker(7) "stop"); M (may be NULL) is
 * answered then.  Without a worker E goes at once.
 */
int
export_remove_graceful (struct export *e, sd_bus_message *m)
{
  if (e->removing)
    return -EALREADY;
  e->removing = true;
  e->remove_call = m ? sd_bus_message_ref (m) : NULL;
  e->restart_pending = false;
  e->restart_timer = sd_event_source_disable_unref (e->restart_timer);
  e->ctx->pending_calls++;
  if (!export_has_workers (e)) {
    export_remove_finish (e);
    return 0;
  }
  log_info (e->ctx, "export '%s': stopping its worker to remove it",
            e->def.name);
  return worker_stop (e, true);
}

/* The worker of an export being removed has gone: remove it, reply. */
void
export_remove_finish (struct export *e)
{
  struct context *ctx = e->ctx;
  sd_bus_message *m = e->remove_call;
  CLEANUP_FREE char *name = strdup (e->def.name);
  int r;

  e->remove_call = NULL;
  r = export_remove (e);
  if (r < 0) {
    /* The file could not be deleted: the export stays, stopped. */
    log_error (ctx, "export '%s': failed to remove its definition: %s",
               name ? name : "?", strerror (-r));
    e->removing = false;
    export_set_state (e, EXPORT_INACTIVE);
    if (m)
      sd_bus_reply_method_errnof (m, r, "Export '%s': failed to remove its "
                                  "definition: %m", name ? name : "?");
  }
  else {
    log_info (ctx, "export '%s' removed", name ? name : "?");
    if (m)
      sd_bus_reply_method_return (m, NULL);
  }
  sd_bus_message_unref (m);
  ctx->pending_calls--;
  context_check_idle (ctx);
}

/* Forget E: the object, its file, its worker and its listeners. */
int
export_remove (struct export *e)
{
  struct context *ctx = e->ctx;
  CLEANUP_FREE char *path = strdup (e->path);
  CLEANUP_FREE char *name = strdup (e->def.name);
  int r = 0;

  if (!path || !name)
    return -ENOMEM;
  if (e->updating)
    return -EBUSY;
  if (e->def.persist || e->broken_file)
    r = store_delete (ctx, e->def.name);
  if (r < 0)
    return r;
  sd_bus_emit_object_removed (ctx->bus, path);
  export_registry_remove (ctx, e);
  sd_bus_emit_signal (ctx->bus, NBDKITD_MANAGER_PATH, NBDKITD_MANAGER_IFACE,
                      "ExportRemoved", "so", name, path);
  manager_emit_export_count (ctx);
  context_update_status (ctx);
  context_check_idle (ctx);
  return 0;
}
