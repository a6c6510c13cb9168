/* SPDX-License-Identifier: BSD-3-Clause
 * TLS with pre-shared keys (--tls-psk): parse the "username:hexkey"
 * file psktool(1) writes, build the GnuTLS PSK credentials and look up
 * the key of the user a client names during the handshake.
 */

#include <config.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if HAVE_GNUTLS

#include "tls-internal.h"

static void
free_psk_users (psk_user_list *users)
{
  for (size_t i = 0; i < users->len; ++i) {
    free (users->ptr[i].name);
    if (users->ptr[i].key.data) {
      explicit_bzero (users->ptr[i].key.data, users->ptr[i].key.size);
      free (users->ptr[i].key.data);
    }
  }
  psk_user_list_reset (users);
}

static int
hex_value (char c)
{
  return isdigit ((unsigned char) c) ? c - '0'
    : tolower ((unsigned char) c) - 'a' + 10;
}

/* Parse one non-empty line into *USER; USERS are those read so far.
 * The key is never echoed.
 */
static int
parse_psk_line (const char *file, size_t lineno, char *line,
                const psk_user_list *users, struct psk_user *user)
{
  char *colon = strchr (line, ':');
  const char *hex;
  size_t hexlen, i;

  if (colon == NULL) {
    nbdkit_error ("--tls-psk: %s:%zu: expected USERNAME:HEXKEY "
                  "(the format psktool writes)", file, lineno);
    return -1;
  }
  *colon = '\0';
  hex = colon + 1;
  hexlen = strlen (hex);
  if (*line == '\0') {
    nbdkit_error ("--tls-psk: %s:%zu: the username is empty", file, lineno);
    return -1;
  }
  for (i = 0; i < hexlen && isxdigit ((unsigned char) hex[i]); ++i)
    ;
  if (hexlen == 0 || i < hexlen || hexlen % 2 != 0) {
    nbdkit_error ("--tls-psk: %s:%zu: the key of user \"%s\" must be a "
                  "non-empty, even-length hexadecimal string",
                  file, lineno, line);
    return -1;
  }
  for (i = 0; i < users->len; ++i)
    if (strcmp (users->ptr[i].name, line) == 0) {
      nbdkit_error ("--tls-psk: %s:%zu: user \"%s\" appears twice",
                    file, lineno, line);
      return -1;
    }

  user->name = strdup (line);
  user->key.size = hexlen / 2;
  user->key.data = malloc (user->key.size);
  if (user->name == NULL || user->key.data == NULL) {
    nbdkit_error ("malloc: %m");
    free (user->name);
    free (user->key.data);
    return -1;
  }
  for (i = 0; i < user->key.size; ++i)
    user->key.data[i] = hex_value (hex[2*i]) << 4 | hex_value (hex[2*i+1]);
  return 0;
}

static int
load_psk_file (const char *file, psk_user_list *users)
{
  FILE *fp = fopen (file, "re");
  char *line = NULL;
  size_t cap = 0, lineno = 0;
  ssize_t len;
  int r = 0;

  if (fp == NULL) {
    nbdkit_error ("--tls-psk: %s: %m", file);
    return -1;
  }
  while (r == 0 && (len = getline (&line, &cap, fp)) != -1) {
    struct psk_user user;

    lineno++;
    while (len > 0 && isspace ((unsigned char) line[len - 1]))
      line[--len] = '\0';
    if (len == 0)
      continue;
    r = parse_psk_line (file, lineno, line, users, &user);
    if (r == 0 && psk_user_list_append (users, user) == -1) {
      nbdkit_error ("realloc: %m");
      free (user.name);
      free (user.key.data);
      r = -1;
    }
  }
  if (line) {
    explicit_bzero (line, cap);
    free (line);
  }
  if (r == 0 && ferror (fp)) {
    nbdkit_error ("--tls-psk: %s: read error: %m", file);
    r = -1;
  }
  fclose (fp);
  if (r == 0 && users->len == 0) {
    nbdkit_error ("--tls-psk: %s: the file has no users", file);
    r = -1;
  }
  return r;
}

/* GnuTLS asks for the key of the user the client named. */
static int
psk_lookup (gnutls_session_t session, const gnutls_datum_t *username,
            gnutls_datum_t *key)
{
  struct tls_handshake_state *hs = gnutls_session_get_ptr (session);
  char printable[128];
  size_t i, j;

  if (hs == NULL || hs->creds == NULL)
    return -1;
  for (i = 0; i < hs->creds->psk_users.len; ++i) {
    const struct psk_user *u = &hs->creds->psk_users.ptr[i];
    if (strlen (u->name) == username->size &&
        memcmp (u->name, username->data, username->size) == 0) {
      key->data = gnutls_malloc (u->key.size);
      if (key->data == NULL)
        return -1;
      memcpy (key->data, u->key.data, u->key.size);
      key->size = u->key.size;
      if (hs)
        hs->psk_user = u;
      return 0;
    }
  }

  /* The name is client input: show it safely. */
  for (i = j = 0; i < username->size && j < sizeof printable - 5; ++i) {
    unsigned char c = username->data[i];
    if (isprint (c) && c != '\\' && c != '"')
      printable[j++] = c;
    else
      j += snprintf (&printable[j], 5, "\\x%02x", c);
  }
  printable[j] = '\0';
  tls_set_reason (session, "PSK user \"%s\" is not in %s", printable,
                  config.tls_psk);
  return -1;
}

/* What is loaded so far is freed by tls_psk_free, also on failure. */
int
tls_psk_load (struct tls_credentials *c)
{
  int r;

  if (load_psk_file (config.tls_psk, &c->psk_users) == -1)
    return -1;
  r = gnutls_psk_allocate_server_credentials (&c->psk);
  if (r < 0) {
    nbdkit_error ("gnutls_psk_allocate_server_credentials: %s",
                  gnutls_strerror (r));
    return -1;
  }
  gnutls_psk_set_server_credentials_function2 (c->psk, psk_lookup);
  gnutls_psk_set_server_known_dh_params (c->psk, GNUTLS_SEC_PARAM_MEDIUM);
  if (config.tls_verify_peer)
    fprintf (stderr, "%s: warning: --tls-verify-peer has no effect with "
             "--tls-psk: the pre-shared key already authenticates "
             "the client\n", config.program_name);
  debug ("TLS: using pre-shared keys from %s (%zu user%s)",
         config.tls_psk, c->psk_users.len,
         c->psk_users.len == 1 ? "" : "s");
  return 0;
}

void
tls_psk_free (struct tls_credentials *c)
{
  if (c->psk)
    gnutls_psk_free_server_credentials (c->psk);
  c->psk = NULL;
  free_psk_users (&c->psk_users);
}

#endif /* HAVE_GNUTLS */
