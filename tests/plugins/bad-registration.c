/* SPDX-License-Identifier: BSD-3-Clause
 * Plugins whose registration this server must refuse with one clear line
 * (test-module-registration.sh).  Built once per case with -DCASE=N.
 */

#include <stdint.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t bad_get_size (void *h) { return 512; }
static void *bad_open (int ro) { return &bad_open; }
static int bad_pread (void *h, void *buf, uint32_t n, uint64_t o, uint32_t f)
{
  memset (buf, 0, n);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name = "bad",
  .open = bad_open,
  .get_size = bad_get_size,
  .pread = bad_pread,
};

#if CASE == 5
/* No entry point at all. */
NBDKIT_DLL_PUBLIC struct nbdkit_plugin *not_plugin_init (void);
NBDKIT_DLL_PUBLIC struct nbdkit_plugin *not_plugin_init (void)
{
  return &plugin;
}
#else
NBDKIT_DLL_PUBLIC struct nbdkit_plugin *plugin_init (void);
NBDKIT_DLL_PUBLIC struct nbdkit_plugin *
plugin_init (void)
{
  plugin._struct_size = sizeof plugin;
  plugin._api_version = NBDKIT_API_VERSION;
  plugin._thread_model = THREAD_MODEL;
#if CASE == 1                   /* an API from the future */
  plugin._api_version = 7;
#elif CASE == 2                 /* a struct larger than any we know */
  plugin._struct_size = sizeof plugin + 64;
#elif CASE == 3                 /* too small to be any version */
  plugin._struct_size = 24;
#elif CASE == 4                 /* garbage thread model */
  plugin._thread_model = 0x41414141;
#elif CASE == 6
  return NULL;
#elif CASE == 7
  plugin.name = NULL;
#endif
  return &plugin;
}
#endif
