/* SPDX-License-Identifier: BSD-3-Clause
 * The noparallel filter: asks the server for a stricter thread model
 * than the plugin's, to measure what parallelism is worth or to work
 * around a plugin or client that mishandles it.
 */

#include <config.h>

#include <string.h>

#include <nbdkit-filter.h>

/* serialize=: the thread model the filter asks for.  The server takes
 * the strictest of every layer's, so the plugin can only make it
 * stricter still.
 */
static int thread_model = NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS;

static int
noparallel_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
                   const char *key, const char *value)
{
  if (strcmp (key, "serialize") == 0 || strcmp (key, "serialise") == 0) {
    if (strcmp (value, "requests") == 0)
      thread_model = NBDKIT_THREAD_MODEL_SERIALIZE_REQUESTS;
    else if (strcmp (value, "all-requests") == 0 ||
             strcmp (value, "all_requests") == 0)
      thread_model = NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS;
    else if (strcmp (value, "connections") == 0)
      thread_model = NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS;
    else {
      nbdkit_error ("%s: unknown mode '%s' "
                    "(expected requests, all-requests or connections)",
                    key, value);
      return -1;
    }
    return 0;
  }
  return next (nxdata, key, value);
}

#define noparallel_config_help \
  "serialize=<MODE>     'requests' (default), 'all-requests' or\n" \
  "                     'connections'."

static int
noparallel_thread_model (void)
{
  return thread_model;
}

/* With one connection at a time, a client opening a second one to
 * share the work would only wait: do not invite it to.
 */
static int
noparallel_can_multi_conn (nbdkit_next *next, void *handle)
{
  if (thread_model == NBDKIT_THREAD_MODEL_SERIALIZE_CONNECTIONS)
    return 0;
  return next->can_multi_conn (next);
}

static struct nbdkit_filter filter = {
  .name              = "noparallel",
  .longname          = "nbdkit noparallel filter",
  .version           = PACKAGE_VERSION,
  .description       = "Serialize requests or connections",
  .config            = noparallel_config,
  .config_help       = noparallel_config_help,
  .thread_model      = noparallel_thread_model,
  .can_multi_conn    = noparallel_can_multi_conn,
};

NBDKIT_REGISTER_FILTER (filter)
