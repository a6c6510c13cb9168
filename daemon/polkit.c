/* SPDX-License-Identifier: BSD-3-Clause
 * Authorization by polkit: an asynchronous CheckAuthorization per method
 * call, so one caller waiting for polkit never blocks the others.  When
 * the answer arrives the method handler runs again from the start and
 * finds the answer (the handler order: read, validate, no-op shortcut,
 * authorize, act).  uid 0 passes without asking; polkit being absent
 * means denied.
 */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbdkitd.h"

struct polkit_query {
  struct polkit_query *next;
  struct context *ctx;
  sd_bus_message *request;
  sd_bus_slot *slot;
  sd_bus_message_handler_t handler;
  bool done;
  bool authorized;
  bool challenge;
};

static void
query_unlink_free (struct polkit_query *q)
{
  struct context *ctx = q->ctx;
  struct polkit_query **pp;

  for (pp = &q->ctx->polkit_queries; *pp; pp = &(*pp)->next)
    if (*pp == q) {
      *pp = q->next;
      break;
    }
  q->ctx->pending_calls--;
  sd_bus_slot_unref (q->slot);
  sd_bus_message_unref (q->request);
  free (q);
  context_check_idle (ctx);
}

void
polkit_queries_free (struct context *ctx)
{
  while (ctx->polkit_queries)
    query_unlink_free (ctx->polkit_queries);
}

/* Run the method handler again now that the answer is known. */
static void
query_redispatch (struct polkit_query *q)
{
  struct context *ctx = q->ctx;
  sd_bus_error error = SD_BUS_ERROR_NULL;
  const char *path = sd_bus_message_get_path (q->request);
  void *userdata = ctx;
  int r;

  if (strcmp (path, NBDKITD_MANAGER_PATH) != 0) {
    userdata = export_registry_find_path (ctx, path);
    if (userdata == NULL) {
      sd_bus_reply_method_errorf (q->request, NBDKITD_ERROR_NO_SUCH_EXPORT,
                                  "The export at %s was removed", path);
      query_unlink_free (q);
      return;
    }
  }
  sd_bus_message_ref (q->request);
  {
    sd_bus_message *m = q->request;
    r = sd_bus_message_rewind (m, true);
    if (r >= 0)
      r = q->handler (m, userdata, &error);
    if (r < 0) {
      if (sd_bus_error_is_set (&error))
        sd_bus_reply_method_error (m, &error);
      else
        sd_bus_reply_method_errno (m, r, NULL);
    }
    /* The handler normally consumed the answer; drop it if not. */
    for (struct polkit_query *p = ctx->polkit_queries; p; p = p->next)
      if (p == q) {
        query_unlink_free (q);
        break;
      }
    sd_bus_message_unref (m);
  }
  sd_bus_error_free (&error);
}

static int
on_check_reply (sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
  struct polkit_query *q = userdata;
  const sd_bus_error *e = sd_bus_message_get_error (reply);
  int authorized = 0, challenge = 0;
  int r;

  q->slot = sd_bus_slot_unref (q->slot);
  if (e) {
    /* polkit not running (ServiceUnknown, NameHasNoOwner, ...): denied. */
    log_warning (q->ctx, "polkit CheckAuthorization failed: %s: %s, denying",
                 e->name, e->message ? e->message : "");
  }
  else {
    r = sd_bus_message_enter_container (reply, 'r', "bba{ss}");
    if (r >= 0)
      r = sd_bus_message_read (reply, "bb", &authorized, &challenge);
    if (r < 0) {
      log_warning (q->ctx, "Failed to parse polkit reply: %s, denying",
                   strerror (-r));
      authorized = challenge = 0;
    }
  }
  q->done = true;
  q->authorized = authorized;
  q->challenge = challenge;
  query_redispatch (q);
  return 0;
}

static int
query_start (struct context *ctx, sd_bus_message *m, const char *action,
             bool interactive, sd_bus_message_handler_t handler)
{
  sd_bus_message *call = NULL;
  struct polkit_query *q;
  int r;

  q = calloc (1, sizeof *q);
  if (q == NULL)
    return -ENOMEM;
  r = sd_bus_message_new_method_call (ctx->bus, &call,
                                      "org.freedesktop.PolicyKit1",
                                      "/org/freedesktop/PolicyKit1/Authority",
                                      "org.freedesktop.PolicyKit1.Authority",
                                      "CheckAuthorization");
  if (r >= 0)
    r = sd_bus_message_append (call, "(sa{sv})sa{ss}us",
                               "system-bus-name", 1, "name", "s",
                               sd_bus_message_get_sender (m),
                               action, 0, (uint32_t) (interactive ? 1 : 0), "");
  if (r >= 0)
    r = sd_bus_call_async (ctx->bus, &q->slot, call, on_check_reply, q,
                           interactive ? UINT64_C (300000000) : 0);
  sd_bus_message_unref (call);
  if (r < 0) {
    free (q);
    return r;
  }
  q->ctx = ctx;
  q->request = sd_bus_message_ref (m);
  q->handler = handler;
  q->next = ctx->polkit_queries;
  ctx->polkit_queries = q;
  ctx->pending_calls++;
  return 0;
}

/* Returns 1 if the caller of M may do ACTION, 0 if the question was put
 * to polkit (the handler returns 1 and runs again with the answer), or a
 * negative errno with ERROR set when denied.
 */
int
polkit_authorize (struct context *ctx, sd_bus_message *m, const char *action,
                  bool interactive, sd_bus_message_handler_t handler,
                  sd_bus_error *error)
{
  sd_bus_creds *creds = NULL;
  uid_t euid;
  int r;

  r = sd_bus_query_sender_creds (m, SD_BUS_CREDS_EUID, &creds);
  if (r >= 0) {
    r = sd_bus_creds_get_euid (creds, &euid);
    sd_bus_creds_unref (creds);
    if (r >= 0 && euid == 0)
      return 1;
  }
  for (struct polkit_query *q = ctx->polkit_queries; q; q = q->next) {
    if (q->request != m || !q->done)
      continue;
    bool authorized = q->authorized, challenge = q->challenge;
    query_unlink_free (q);
    if (authorized)
      return 1;
    if (challenge)
      return sd_bus_error_setf (error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                "Interactive authorization is needed for %s",
                                action);
    return sd_bus_error_setf (error, SD_BUS_ERROR_ACCESS_DENIED,
                              "Not authorized to %s", action);
  }
  interactive = interactive && sd_bus_message_get_allow_interactive_authorization (m);
  r = query_start (ctx, m, action, interactive, handler);
  if (r < 0)
    return sd_bus_error_set_errnof (error, r, "Failed to ask polkit: %m");
  return 0;
}
