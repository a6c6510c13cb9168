/* SPDX-License-Identifier: BSD-3-Clause
 * The shared listener's TLS credentials as daemon configuration:
 * --tls-certificates/--tls-psk on the command line, or the Manager's
 * SetTLS method, which keeps its choice in STATE_DIR/shared-tls.conf
 * (JSON) for the next start when no option is given.  The TLSCertificates
 * and TLSPSK properties show what is in force.
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "nbdkitd.h"
#include "errors.h"
#include "cleanup.h"

#define SAVED_FILE "shared-tls.conf"

static char *
saved_string (json_object *o, const char *key)
{
  json_object *v;

  if (!json_object_object_get_ex (o, key, &v) ||
      !json_object_is_type (v, json_type_string) ||
      *json_object_get_string (v) == '\0')
    return NULL;
  return strdup (json_object_get_string (v));
}

/* At start-up, without --tls-certificates or --tls-psk: what SetTLS
 * chose last time, if anything.
 */
int
shared_tls_load_saved (struct context *ctx)
{
  struct config *cfg = &ctx->config;
  CLEANUP_FREE char *path = NULL;
  json_object *o;

  if (cfg->tls_certificates || cfg->tls_psk)
    return 0;
  if (asprintf (&path, "%s/%s", cfg->state_dir, SAVED_FILE) == -1)
    return -ENOMEM;
  if (access (path, F_OK) == -1)
    return 0;
  o = json_object_from_file (path);
  if (o == NULL) {
    log_warning (ctx, "%s: not valid JSON, ignoring", path);
    return 0;
  }
  cfg->tls_certificates = saved_string (o, "tls-certificates");
  cfg->tls_psk = saved_string (o, "tls-psk");
  json_object_put (o);
  return 0;
}

static int
save (struct context *ctx)
{
  const struct config *cfg = &ctx->config;
  json_object *o = json_object_new_object ();
  int r;

  if (o == NULL)
    return -ENOMEM;
  json_object_object_add (o, "v", json_object_new_int (1));
  json_object_object_add (o, "tls-certificates", json_object_new_string (
                            cfg->tls_certificates ? cfg->tls_certificates : ""));
  json_object_object_add (o, "tls-psk", json_object_new_string (
                            cfg->tls_psk ? cfg->tls_psk : ""));
  r = write_atomically (cfg->state_dir, SAVED_FILE,
                        json_object_to_json_string_ext (
                          o, JSON_C_TO_STRING_PRETTY));
  json_object_put (o);
  return r;
}

/* An export that needs TLS on the shared listener, or NULL. */
static const char *
export_using_shared_tls (struct context *ctx)
{
  for (size_t i = 0; i < ctx->exports.len; i++) {
    const struct export *e = ctx->exports.ptr[i];
    if (e->shared && e->def.tls != TLS_MODE_OFF)
      return e->def.name;
  }
  return NULL;
}

static int
check_path (const char *what, const char *path, sd_bus_error *error)
{
  if (*path && path[0] != '/')
    return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                              "SetTLS: %s '%s' must be an absolute path",
                              what, path);
  return 0;
}

/* Swap the configured paths for CERTS and PSK ("" is none); on return
 * CERTS and PSK hold the previous ones (to free, or to swap back).
 */
static void
swap_paths (struct config *cfg, char **certs, char **psk)
{
  char *c = cfg->tls_certificates, *p = cfg->tls_psk;

  cfg->tls_certificates = *certs;
  cfg->tls_psk = *psk;
  *certs = c;
  *psk = p;
}

/* SetTLS (s tls_certificates, s tls_psk): "" for none of that kind. */
int
method_set_tls (sd_bus_message *m, void *userdata, sd_bus_error *error)
{
  struct context *ctx = userdata;
  const char *certs, *psk, *user;
  char *new_certs = NULL, *new_psk = NULL;
  int r;

  r = sd_bus_message_read (m, "ss", &certs, &psk);
  if (r < 0)
    return r;
  if ((r = check_path ("tls-certificates", certs, error)) < 0 ||
      (r = check_path ("tls-psk", psk, error)) < 0)
    return r;
  if (!*certs && !*psk && (user = export_using_shared_tls (ctx)) != NULL)
    return sd_bus_error_setf (error, NBDKITD_ERROR_BUSY,
                              "SetTLS: export '%s' uses TLS on the shared "
                              "listener: it still needs credentials", user);
  r = polkit_authorize (ctx, m, POLKIT_ACTION_MANAGE, true, method_set_tls,
                        error);
  if (r <= 0)
    return r < 0 ? r : 1;
  if ((*certs && (new_certs = strdup (certs)) == NULL) ||
      (*psk && (new_psk = strdup (psk)) == NULL)) {
    free (new_certs);
    return -ENOMEM;
  }
  swap_paths (&ctx->config, &new_certs, &new_psk);
  r = router_tls_configure (ctx);
  if (r < 0) {
    swap_paths (&ctx->config, &new_certs, &new_psk);
    free (new_certs);
    free (new_psk);
    return sd_bus_error_setf (error, NBDKITD_ERROR_INVALID_PARAMETER,
                              "SetTLS: the credentials in '%s%s%s' cannot be "
                              "loaded (the daemon's log says why); the old "
                              "ones stay in force", certs,
                              *certs && *psk ? "', '" : "", psk);
  }
  free (new_certs);
  free (new_psk);
  if ((r = save (ctx)) < 0)
    log_warning (ctx, "Failed to save %s/%s: %s, ignoring",
                 ctx->config.state_dir, SAVED_FILE, strerror (-r));
  log_info (ctx, "shared listener: TLS set to certificates '%s', PSK '%s'",
            certs, psk);
  sd_bus_emit_properties_changed (ctx->bus, NBDKITD_MANAGER_PATH,
                                  NBDKITD_MANAGER_IFACE, "TLSCertificates",
                                  "TLSPSK", NULL);
  return sd_bus_reply_method_return (m, NULL);
}

int
property_get_shared_tls (sd_bus *bus, const char *path, const char *interface,
                         const char *property, sd_bus_message *reply,
                         void *userdata, sd_bus_error *error)
{
  struct context *ctx = userdata;
  const char *v = strcmp (property, "TLSPSK") == 0 ? ctx->config.tls_psk
    : ctx->config.tls_certificates;

  return sd_bus_message_append (reply, "s", v ? v : "");
}
