/* SPDX-License-Identifier: BSD-3-Clause
 * nbdkitd --fd-store: restart and upgrade without dropping clients
 * (fdstore.c, fdstore-adopt.c).
 */

#ifndef NBDKITD_FDSTORE_H
#define NBDKITD_FDSTORE_H

#include <json-c/json.h>

#include "nbdkitd.h"

/* In the runtime directory: what each stored descriptor is. */
#define FDSTORE_MAP_FILE "fdstore.json"
/* The name of a descriptor the daemon must not store (socket units). */
#define FDSTORE_NOT_OURS "-"

/* fdstore.c */
extern int fdstore_init (struct context *ctx);
extern void fdstore_free (void);
extern size_t fdstore_activation_fds (const int **fds);
extern int fdstore_claim (const char *name);
extern int fdstore_claim_shared (const char *listen, char *name);
extern json_object *fdstore_map_export (const char *name);
extern void fdstore_dirty (void);
extern void fdstore_sync (struct context *ctx);
extern void fdstore_discard_unclaimed (struct context *ctx);
extern bool fdstore_keeps (const struct export *e);

/* fdstore-adopt.c */
extern json_object *fdstore_map_build (struct context *ctx);
extern int fdstore_adopt_export (struct export *e, sd_bus_error *error);
extern void fdstore_hand_off (struct context *ctx);
extern void fdstore_detach (struct context *ctx);

#endif /* NBDKITD_FDSTORE_H */
