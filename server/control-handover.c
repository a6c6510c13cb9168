/* SPDX-License-Identifier: BSD-3-Clause
 * The hand-over command (nbdkit-worker(7) "hand-over"): an accepted
 * client socket from the supervisor, with the handshake state it has
 * already negotiated, becomes a connection of this worker exactly as if
 * the worker had accepted it and read that much itself.
 */

#include <config.h>

#include <endian.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <json-c/json.h>

#include "internal.h"
#include "nbd-protocol.h"

/* The option header: IHAVEOPT, option number, length. */
#define OPTION_HEADER_LEN 16

static int
base64_value (char c)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Standard base64 (RFC 4648 section 4) with padding.  Returns a new
 * buffer, or NULL if IN is not base64.
 */
static char *
base64_decode (const char *in, size_t *out_len)
{
  size_t len = strlen (in), n = 0, i;
  char *out;

  if (len == 0 || len % 4 != 0)
    return NULL;
  out = malloc (len / 4 * 3);
  if (out == NULL)
    return NULL;
  for (i = 0; i < len; i += 4) {
    int v[4], pad = 0;
    for (int j = 0; j < 4; ++j) {
      if (in[i + j] == '=' && i + 4 == len && j >= 2) {
        v[j] = 0;
        pad++;
        continue;
      }
      if (pad || (v[j] = base64_value (in[i + j])) == -1)
        goto bad;
    }
    out[n++] = v[0] << 2 | v[1] >> 4;
    if (pad < 2)
      out[n++] = (v[1] & 15) << 4 | v[2] >> 2;
    if (pad < 1)
      out[n++] = (v[2] & 3) << 6 | v[3];
  }
  *out_len = n;
  return out;
 bad:
  free (out);
  return NULL;
}

/* The pending option must be exactly one whole option. */
static int
check_option (const char *opt, size_t len, char **error)
{
  uint64_t magic;
  uint32_t optlen;

  if (len < OPTION_HEADER_LEN) {
    *error = control_error_text ("'option' is shorter than an option header");
    return -1;
  }
  memcpy (&magic, opt, 8);
  memcpy (&optlen, opt + 12, 4);
  optlen = be32toh (optlen);
  if (be64toh (magic) != NBD_NEW_VERSION) {
    *error = control_error_text ("'option' does not start with IHAVEOPT");
    return -1;
  }
  if (optlen > NBD_MAX_OPTION_LENGTH ||
      len != OPTION_HEADER_LEN + (size_t) optlen) {
    *error = control_error_text ("'option' must hold exactly one option with its "
                         "data (length %" PRIu32 ", %zu bytes given)",
                         optlen, len - OPTION_HEADER_LEN);
    return -1;
  }
  return 0;
}

static int
parse_meta_contexts (struct json_object *cmd, struct handshake_resume *r,
                     char **error)
{
  struct json_object *list, *exp;

  if (!json_object_object_get_ex (cmd, "meta_contexts", &list))
    return 0;
  if (!json_object_is_type (list, json_type_array)) {
    *error = control_error_text ("field 'meta_contexts' must be an array");
    return -1;
  }
  for (size_t i = 0; i < json_object_array_length (list); ++i) {
    struct json_object *e = json_object_array_get_idx (list, i);
    if (!json_object_is_type (e, json_type_string) ||
        strcmp (json_object_get_string (e), "base:allocation") != 0) {
      *error = control_error_text ("meta context %s is not one this worker has",
                           json_object_to_json_string (e));
      return -1;
    }
    r->meta_context_base_allocation = true;
  }
  if (r->meta_context_base_allocation && !r->structured_replies) {
    *error = control_error_text ("meta contexts need structured replies");
    return -1;
  }
  if (json_object_object_get_ex (cmd, "meta_context_export", &exp)) {
    if (!json_object_is_type (exp, json_type_string)) {
      *error = control_error_text ("field 'meta_context_export' must be a string");
      return -1;
    }
    r->meta_context_exportname = strdup (json_object_get_string (exp));
  }
  else
    r->meta_context_exportname = strdup ("");
  if (r->meta_context_exportname == NULL) {
    *error = control_error_text ("strdup: out of memory");
    return -1;
  }
  return 0;
}

/* Stage "options": client flags, what was agreed, the pending option. */
static int
parse_options_stage (struct json_object *cmd, struct handshake_resume *r,
                     char **error)
{
  struct json_object *v;
  int64_t flags;

  if (config.oldstyle) {
    *error = control_error_text ("this worker speaks the oldstyle protocol");
    return -1;
  }
  if (!json_object_object_get_ex (cmd, "client_flags", &v) ||
      !json_object_is_type (v, json_type_int)) {
    *error = control_error_text ("field 'client_flags' (integer) is missing");
    return -1;
  }
  flags = json_object_get_int64 (v);
  if (flags < 0 || flags > UINT32_MAX ||
      (flags & ~(int64_t) protocol_newstyle_gflags ())) {
    *error = control_error_text ("client_flags 0x%" PRIx64 " were not offered",
                         flags);
    return -1;
  }
  r->client_flags = flags;
  if (json_object_object_get_ex (cmd, "structured_replies", &v)) {
    if (!json_object_is_type (v, json_type_boolean)) {
      *error = control_error_text ("field 'structured_replies' must be a boolean");
      return -1;
    }
    r->structured_replies = json_object_get_boolean (v);
    if (r->structured_replies && config.no_sr) {
      *error = control_error_text ("structured replies are disabled (--no-sr)");
      return -1;
    }
  }
  if (parse_meta_contexts (cmd, r, error) == -1)
    return -1;
  if (!json_object_object_get_ex (cmd, "option", &v) ||
      !json_object_is_type (v, json_type_string)) {
    *error = control_error_text ("field 'option' (base64 string) is missing");
    return -1;
  }
  r->option = base64_decode (json_object_get_string (v), &r->option_len);
  if (r->option == NULL) {
    *error = control_error_text ("field 'option' is not valid base64");
    return -1;
  }
  return check_option (r->option, r->option_len, error);
}

/* "tls": true: the supervisor keeps the client's TLS session and relays
 * its plaintext through FD; "tls_identity" is the PSK username or the
 * verified certificate's subject DN.
 */
static int
parse_tls (struct json_object *cmd, struct handshake_resume *r, char **error)
{
  struct json_object *v;

  if (json_object_object_get_ex (cmd, "tls", &v)) {
    if (!json_object_is_type (v, json_type_boolean)) {
      *error = control_error_text ("field 'tls' must be a boolean");
      return -1;
    }
    r->tls = json_object_get_boolean (v);
  }
  if (!json_object_object_get_ex (cmd, "tls_identity", &v))
    return 0;
  if (!json_object_is_type (v, json_type_string) || !r->tls) {
    *error = control_error_text ("field 'tls_identity' must be a string, "
                                 "with \"tls\": true");
    return -1;
  }
  r->tls_identity = strdup (json_object_get_string (v));
  if (r->tls_identity == NULL) {
    *error = control_error_text ("strdup: out of memory");
    return -1;
  }
  return 0;
}

static bool
is_stream_socket (int fd)
{
  int type;
  socklen_t len = sizeof type;

  return getsockopt (fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
    type == SOCK_STREAM;
}

/* Returns 0 with "connection" added to REPLY, or -1 with *ERROR set; the
 * descriptor is always taken.
 */
int
control_hand_over (struct json_object *cmd, int fd,
                   struct json_object *reply, char **error)
{
  struct handshake_resume r = { .stage = HANDSHAKE_GREETING };
  struct json_object *v;
  const char *stage;
  uint64_t id;
  int opt = 1;

  if (!is_stream_socket (fd)) {
    *error = control_error_text ("the descriptor is not a stream socket");
    goto fail;
  }
  if (!json_object_object_get_ex (cmd, "stage", &v) ||
      !json_object_is_type (v, json_type_string)) {
    *error = control_error_text ("field 'stage' (string) is missing");
    goto fail;
  }
  stage = json_object_get_string (v);
  if (strcmp (stage, "options") == 0) {
    r.stage = HANDSHAKE_OPTIONS;
    if (parse_options_stage (cmd, &r, error) == -1)
      goto fail;
  }
  else if (strcmp (stage, "greeting") != 0) {
    *error = control_error_text ("unknown stage '%s' (greeting or options)", stage);
    goto fail;
  }
  if (parse_tls (cmd, &r, error) == -1)
    goto fail;

  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &opt, sizeof opt);
  id = connection_start (fd, fd, &r);
  free (r.option);
  free (r.meta_context_exportname);
  free (r.tls_identity);
  if (id == 0) {
    *error = control_error_text ("the connection could not be started "
                         "(see the worker's log)");
    return -1;
  }
  debug ("control: handed-over client is connection %" PRIu64, id);
  json_object_object_add (reply, "connection",
                          json_object_new_int64 ((int64_t) id));
  return 0;

 fail:
  close (fd);
  free (r.option);
  free (r.meta_context_exportname);
  free (r.tls_identity);
  return -1;
}
