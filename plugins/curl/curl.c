/* SPDX-License-Identifier: BSD-3-Clause
 * The curl plugin: a disk image served over HTTP, HTTPS, FTP and the
 * other protocols libcurl speaks, read with range requests through a
 * pool of libcurl handles shared by all clients.
 */

#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "curl-internal.h"

NBDKIT_DLL_PUBLIC int curl_debug_verbose = 0;
NBDKIT_DLL_PUBLIC int curl_debug_scripts = 0;

/* curl_global_init's result, reported by config_complete (load cannot
 * fail).
 */
static CURLcode global_init_rc = CURLE_FAILED_INIT;

/* A client connection only remembers the size seen when it opened. */
struct curl_conn {
  int64_t size;
};

static void
curlplug_load (void)
{
  global_init_rc = curl_global_init (CURL_GLOBAL_DEFAULT);
}

static void
curlplug_unload (void)
{
  pool_unload ();
  scripts_unload ();
  curl_config_free ();
  if (global_init_rc == CURLE_OK)
    curl_global_cleanup ();
}

static int
curlplug_config (const char *key, const char *value)
{
  return curl_config_key (key, value);
}

static int
curlplug_config_complete (void)
{
  if (global_init_rc != CURLE_OK) {
    nbdkit_error ("curl_global_init: %s", curl_easy_strerror (global_init_rc));
    return -1;
  }
  return curl_config_check ();
}

/* The handles made from now on share cookies, DNS and TLS sessions. */
static int
curlplug_get_ready (void)
{
  return pool_init ();
}

/* A pool handle with the scripts' latest headers and cookie applied;
 * give it back with put_handle.
 */
static struct curl_handle *
get_handle (void)
{
  struct curl_handle *h = pool_get ();

  if (h == NULL)
    return NULL;
  if (scripts_begin_request (h) == -1) {
    pool_put (h);
    return NULL;
  }
  return h;
}

static void
put_handle (struct curl_handle *h)
{
  scripts_end_request ();
  pool_put (h);
}

/* The size is probed per connection: the remote file may change. */
static void *
curlplug_open (int readonly)
{
  struct curl_conn *conn;
  struct curl_handle *h;
  int r;

  conn = malloc (sizeof *conn);
  if (conn == NULL) {
    nbdkit_error ("malloc: %m");
    return NULL;
  }
  h = get_handle ();
  if (h == NULL) {
    free (conn);
    return NULL;
  }
  r = request_size (h, &conn->size);
  put_handle (h);
  if (r == -1) {
    free (conn);
    return NULL;
  }
  nbdkit_debug ("curl: remote file size %" PRId64, conn->size);
  return conn;
}

static void
curlplug_close (void *handle)
{
  free (handle);
}

/* Requests from every connection run in parallel, up to connections=
 * at a time (pool.c).
 */
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static int64_t
curlplug_get_size (void *handle)
{
  struct curl_conn *conn = handle;

  return conn->size;
}

/* Writes go to the server as PUT with Content-Range, which only HTTP
 * has; other protocols would truncate or append instead.
 */
static int
curlplug_can_write (void *handle)
{
  return config.http_url;
}

/* Every request goes to the same server, which all clients share. */
static int
curlplug_can_multi_conn (void *handle)
{
  return 1;
}

static int
curlplug_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
                uint32_t flags)
{
  struct curl_handle *h;
  int r, err;

  h = get_handle ();
  if (h == NULL) {
    nbdkit_set_error (EIO);
    return -1;
  }
  r = request_read (h, buf, count, offset, &err);
  put_handle (h);
  if (r == -1)
    nbdkit_set_error (err);
  return r;
}

static int
curlplug_pwrite (void *handle, const void *buf, uint32_t count,
                 uint64_t offset, uint32_t flags)
{
  struct curl_conn *conn = handle;
  struct curl_handle *h;
  int r, err;

  h = get_handle ();
  if (h == NULL) {
    nbdkit_set_error (EIO);
    return -1;
  }
  r = request_write (h, buf, count, offset, conn->size, &err);
  put_handle (h);
  if (r == -1)
    nbdkit_set_error (err);
  return r;
}

static struct nbdkit_plugin plugin = {
  .name              = "curl",
  .longname          = "nbdkit curl plugin",
  .version           = PACKAGE_VERSION,
  .description       = "Serve a disk image over HTTP, HTTPS, FTP and more",
  .load              = curlplug_load,
  .unload            = curlplug_unload,
  .config            = curlplug_config,
  .config_complete   = curlplug_config_complete,
  .config_help       = curl_config_help,
  .magic_config_key  = "url",
  .get_ready         = curlplug_get_ready,
  .open              = curlplug_open,
  .close             = curlplug_close,
  .get_size          = curlplug_get_size,
  .can_write         = curlplug_can_write,
  .can_multi_conn    = curlplug_can_multi_conn,
  .pread             = curlplug_pread,
  .pwrite            = curlplug_pwrite,
};

NBDKIT_REGISTER_PLUGIN (plugin)
