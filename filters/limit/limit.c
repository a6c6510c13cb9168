/* SPDX-License-Identifier: BSD-3-Clause
 * The limit filter: refuse clients beyond a maximum number of
 * concurrent connections.
 */

#include <config.h>

#include <pthread.h>
#include <string.h>

#include <nbdkit-filter.h>

#include "cleanup.h"

/* The most clients served at once (limit=); 0 means no limit. */
static unsigned limit = 1;

/* Clients that currently have the export open. */
static unsigned connections;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int
limit_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
              const char *key, const char *value)
{
  if (strcmp (key, "limit") == 0)
    return nbdkit_parse_unsigned ("limit", value, &limit);
  return next (nxdata, key, value);
}

#define limit_config_help \
  "limit=<N>            Maximum number of clients (default 1, 0 = none)."

/* Under the lock: whether one more client would be too many. */
static int
check_limit (void)
{
  if (limit > 0 && connections >= limit) {
    nbdkit_error ("too many clients (limit=%u): connection refused",
                  limit);
    return -1;
  }
  return 0;
}

/* Refuse early, before the handshake, when we are already full. */
static int
limit_preconnect (nbdkit_next_preconnect *next, nbdkit_backend *nxdata,
                  int readonly)
{
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    if (check_limit () == -1)
      return -1;
  }
  return next (nxdata, readonly);
}

/* Clients that passed preconnect together race here; the slot is taken
 * under the lock, so the limit holds exactly.
 */
static void *
limit_open (nbdkit_next_open *next, nbdkit_context *context,
            int readonly, const char *exportname, int is_tls)
{
  {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    if (check_limit () == -1)
      return NULL;
    connections++;
  }
  if (next (context, readonly, exportname) == -1) {
    ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
    connections--;
    return NULL;
  }
  return NBDKIT_HANDLE_NOT_NEEDED;
}

static void
limit_close (void *handle)
{
  ACQUIRE_LOCK_FOR_CURRENT_SCOPE (&lock);
  connections--;
}

static struct nbdkit_filter filter = {
  .name              = "limit",
  .longname          = "nbdkit limit filter",
  .version           = PACKAGE_VERSION,
  .description       = "Limit the number of concurrent clients",
  .config            = limit_config,
  .config_help       = limit_config_help,
  .preconnect        = limit_preconnect,
  .open              = limit_open,
  .close             = limit_close,
};

NBDKIT_REGISTER_FILTER (filter)
