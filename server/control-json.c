/* SPDX-License-Identifier: BSD-3-Clause
 * Building the worker's messages (nbdkit-worker(7)): the common header,
 * the ready event, the counters and the description of a connection.
 */

#include <config.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>

#include <json-c/json.h>

#include "internal.h"
#include "nbd-protocol.h"

#define PROTOCOL_VERSION 1

/* The text of an error reply, formatted; NULL if out of memory. */
char *
control_error_text (const char *fs, ...)
{
  va_list args;
  char *s = NULL;

  va_start (args, fs);
  if (vasprintf (&s, fs, args) == -1)
    s = NULL;
  va_end (args);
  return s;
}

static void
add_string (struct json_object *o, const char *key, const char *value)
{
  json_object_object_add (o, key, json_object_new_string (value ? value : ""));
}

static void
add_int (struct json_object *o, const char *key, int64_t value)
{
  json_object_object_add (o, key, json_object_new_int64 (value));
}

static void
add_bool (struct json_object *o, const char *key, bool value)
{
  json_object_object_add (o, key, json_object_new_boolean (value));
}

/* {"v":1,"type":TYPE} */
struct json_object *
control_message (const char *type)
{
  struct json_object *o = json_object_new_object ();

  if (o == NULL)
    return NULL;
  add_int (o, "v", PROTOCOL_VERSION);
  add_string (o, "type", type);
  return o;
}

static const char *
tls_mode_name (void)
{
  switch (config.tls) {
  case TLS_ON: return "on";
  case TLS_REQUIRE: return "require";
  case TLS_OFF:
  default: return "off";
  }
}

static struct json_object *
export_object (const struct export_summary *s)
{
  struct json_object *o = json_object_new_object ();
  struct json_object *bs = json_object_new_object ();
  uint16_t f = s->eflags;

  add_string (o, "name", s->name);
  if (s->description)
    add_string (o, "description", s->description);
  add_int (o, "size", s->size);
  add_int (o, "eflags", f);
  add_bool (o, "read_only", f & NBD_FLAG_READ_ONLY);
  add_bool (o, "can_flush", f & NBD_FLAG_SEND_FLUSH);
  add_bool (o, "can_fua", f & NBD_FLAG_SEND_FUA);
  add_bool (o, "can_trim", f & NBD_FLAG_SEND_TRIM);
  add_bool (o, "can_zero", f & NBD_FLAG_SEND_WRITE_ZEROES);
  add_bool (o, "can_fast_zero", f & NBD_FLAG_SEND_FAST_ZERO);
  add_bool (o, "can_cache", f & NBD_FLAG_SEND_CACHE);
  add_bool (o, "can_multi_conn", f & NBD_FLAG_CAN_MULTI_CONN);
  add_bool (o, "can_extents", s->can_extents);
  add_bool (o, "is_rotational", f & NBD_FLAG_ROTATIONAL);
  add_int (bs, "minimum", s->minimum);
  add_int (bs, "preferred", s->preferred);
  add_int (bs, "maximum", s->maximum);
  json_object_object_add (o, "block_size", bs);
  return o;
}

/* nbdkit-worker(7) "ready".  NULL if the default export cannot be
 * opened (the error has been printed).
 */
struct json_object *
control_json_ready (void)
{
  struct json_object *msg, *filters;
  struct export_summary s;
  struct backend *b;
  int r;

  r = protocol_summarize_default_export (&s);
  if (r == -1) {
    nbdkit_error ("the default export could not be opened");
    return NULL;
  }
  msg = control_message ("ready");
  filters = json_object_new_array ();
  add_int (msg, "pid", getpid ());
  add_string (msg, "version", PACKAGE_VERSION);
  for_each_backend (b)
    if (b->next == NULL)
      add_string (msg, "plugin", b->name);
    else
      json_object_array_add (filters, json_object_new_string (b->name));
  json_object_object_add (msg, "filters", filters);
  add_string (msg, "tls", tls_mode_name ());
  add_bool (msg, "structured_replies", !config.no_sr);
  if (r == 0)
    json_object_object_add (msg, "export", export_object (&s));
  export_summary_free (&s);
  return msg;
}

static void
add_counters (struct json_object *o, const struct conn_counters *c)
{
  add_int (o, "bytes_read", c->bytes_read);
  add_int (o, "bytes_written", c->bytes_written);
}

/* The fields of nbdkit-worker(7) "stats", added to MSG. */
void
control_json_add_stats (struct json_object *msg)
{
  static const char *names[NR_COUNTED_REQUESTS] = {
    [COUNT_READ] = "read", [COUNT_WRITE] = "write",
    [COUNT_FLUSH] = "flush", [COUNT_TRIM] = "trim", [COUNT_ZERO] = "zero",
    [COUNT_BLOCK_STATUS] = "block_status", [COUNT_CACHE] = "cache",
  };
  struct json_object *requests = json_object_new_object ();
  struct worker_stats st;

  connection_stats (&st);
  add_int (msg, "connections_active", st.connections_active);
  add_int (msg, "connections_total", st.connections_total);
  for (size_t i = 0; i < NR_COUNTED_REQUESTS; ++i)
    add_int (requests, names[i], st.counters.requests[i]);
  json_object_object_add (msg, "requests", requests);
  add_counters (msg, &st.counters);
  add_int (msg, "errors", st.counters.errors);
}

/* "127.0.0.1:40312", "[::1]:40312", "unix:pid=1,uid=2,gid=3" ... */
static void
format_peer (struct connection *conn, char *buf, size_t len)
{
  char addr[INET6_ADDRSTRLEN];
  const struct sockaddr_storage *ss = &conn->peer_addr;

  if (conn->peer_addrlen == 0) {
    snprintf (buf, len, "unknown");
    return;
  }
  switch (ss->ss_family) {
  case AF_INET: {
    const struct sockaddr_in *sin = (const struct sockaddr_in *) ss;
    inet_ntop (AF_INET, &sin->sin_addr, addr, sizeof addr);
    snprintf (buf, len, "%s:%d", addr, ntohs (sin->sin_port));
    break;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *) ss;
    inet_ntop (AF_INET6, &sin6->sin6_addr, addr, sizeof addr);
    snprintf (buf, len, "[%s]:%d", addr, ntohs (sin6->sin6_port));
    break;
  }
  case AF_UNIX:
    snprintf (buf, len, "unix:pid=%" PRIi64 ",uid=%" PRIi64 ",gid=%" PRIi64,
              conn->peer_pid, conn->peer_uid, conn->peer_gid);
    break;
  case AF_VSOCK: {
    const struct sockaddr_vm *svm = (const struct sockaddr_vm *) ss;
    snprintf (buf, len, "vsock:%u:%u", svm->svm_cid, svm->svm_port);
    break;
  }
  default:
    snprintf (buf, len, "family %d", ss->ss_family);
  }
}

/* The fields of connection-opened; with LIVE, also its counters (the
 * entries of list-connections).
 */
struct json_object *
control_json_connection (struct connection *conn, bool live)
{
  struct json_object *o = json_object_new_object ();
  char peer[128];
  uint64_t requests = 0;

  if (o == NULL)
    return NULL;
  format_peer (conn, peer, sizeof peer);
  if (!live) {
    add_int (o, "v", PROTOCOL_VERSION);
    add_string (o, "type", "connection-opened");
  }
  add_int (o, "connection", conn->id);
  add_string (o, "peer", peer);
  add_string (o, "export", conn->exportname);
  add_bool (o, "tls", conn->using_tls);
  add_string (o, "tls_identity", conn->tls_username);
  add_int (o, "since", conn->since);
  if (live) {
    add_int (o, "bytes_read",
             __atomic_load_n (&conn->counters.bytes_read, __ATOMIC_RELAXED));
    add_int (o, "bytes_written",
             __atomic_load_n (&conn->counters.bytes_written,
                              __ATOMIC_RELAXED));
    for (size_t i = 0; i < NR_COUNTED_REQUESTS; ++i)
      requests += __atomic_load_n (&conn->counters.requests[i],
                                   __ATOMIC_RELAXED);
    add_int (o, "requests", requests);
  }
  return o;
}
