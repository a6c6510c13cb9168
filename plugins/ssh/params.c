/* SPDX-License-Identifier: BSD-3-Clause
 * The ssh plugin's parameters: parsing each key=value, checking the set
 * once it is complete (required keys, local files that must exist), and
 * freeing it at unload.
 */

#include <config.h>

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "ssh.h"

/* The parameters, filled by params_config and frozen afterwards. */
struct ssh_params params = {
  .verify_remote_host = true,
  .create_size = -1,
  .create_mode = 0600,
};

/* Replace *STR by a copy of VALUE (a later key=value wins). */
static int
set_string (char **str, const char *key, const char *value)
{
  char *copy = strdup (value);

  if (copy == NULL) {
    nbdkit_error ("%s: strdup: %m", key);
    return -1;
  }
  free (*str);
  *str = copy;
  return 0;
}

static int
append_string (string_vector *v, const char *key, const char *value)
{
  char *copy = strdup (value);

  if (copy == NULL || string_vector_append (v, copy) == -1) {
    nbdkit_error ("%s: %m", key);
    free (copy);
    return -1;
  }
  return 0;
}

static int
parse_bool (const char *key, const char *value, bool *b)
{
  int r = nbdkit_parse_bool (value);

  if (r == -1) {
    nbdkit_error ("%s=%s: expected a boolean (true or false)", key, value);
    return -1;
  }
  *b = r;
  return 0;
}

/* port=NUMBER (decimal, as ssh(1) reads it: 022 is 22) or a service
 * name from /etc/services such as "ssh".
 */
static int
parse_port (const char *value)
{
  size_t len = strlen (value);
  unsigned long n;
  struct servent *se;

  if (len > 0 && strspn (value, "0123456789") == len) {
    n = len <= 5 ? strtoul (value, NULL, 10) : 0;
    if (n == 0 || n > 65535) {
      nbdkit_error ("port=%s: the port number must be 1 to 65535", value);
      return -1;
    }
    params.port = n;
    return 0;
  }
  se = getservbyname (value, "tcp");
  if (se == NULL) {
    nbdkit_error ("port=%s: not a port number or a known TCP service name",
                  value);
    return -1;
  }
  params.port = ntohs (se->s_port);
  return 0;
}

static int
parse_create_mode (const char *value)
{
  unsigned mode;

  if (nbdkit_parse_unsigned ("create-mode", value, &mode) == -1)
    return -1;
  if (mode > 0777) {
    nbdkit_error ("create-mode=%s: the mode must be at most 0777 "
                  "(write it in octal with a leading 0, as 0644)", value);
    return -1;
  }
  params.create_mode = mode;
  return 0;
}

int
params_config (const char *key, const char *value)
{
  unsigned timeout;

  if (strcmp (key, "host") == 0)
    return set_string (&params.host, key, value);
  else if (strcmp (key, "path") == 0)
    return set_string (&params.path, key, value);
  else if (strcmp (key, "port") == 0)
    return parse_port (value);
  else if (strcmp (key, "user") == 0)
    return set_string (&params.user, key, value);
  else if (strcmp (key, "password") == 0) {
    free (params.password);
    params.password = NULL;
    if (nbdkit_read_password (value, &params.password) == -1) {
      nbdkit_error ("password=%s: cannot read the password", value);
      return -1;
    }
    return 0;
  }
  else if (strcmp (key, "identity") == 0)
    return append_string (&params.identities, key, value);
  else if (strcmp (key, "known-hosts") == 0)
    return append_string (&params.known_hosts, key, value);
  else if (strcmp (key, "verify-remote-host") == 0)
    return parse_bool (key, value, &params.verify_remote_host);
  else if (strcmp (key, "config") == 0) {
    params.config_given = true;
    free (params.config_file);
    params.config_file = NULL;
    return *value ? set_string (&params.config_file, key, value) : 0;
  }
  else if (strcmp (key, "compression") == 0)
    return parse_bool (key, value, &params.compression);
  else if (strcmp (key, "timeout") == 0) {
    if (nbdkit_parse_unsigned ("timeout", value, &timeout) == -1)
      return -1;
    params.timeout = timeout;
  }
  else if (strcmp (key, "create") == 0)
    return parse_bool (key, value, &params.create);
  else if (strcmp (key, "create-size") == 0) {
    params.create_size = nbdkit_parse_size (value);
    if (params.create_size == -1) {
      nbdkit_error ("create-size=%s: expected a size such as 1M", value);
      return -1;
    }
  }
  else if (strcmp (key, "create-mode") == 0)
    return parse_create_mode (value);
  else {
    nbdkit_error ("unknown parameter '%s'", key);
    return -1;
  }
  return 0;
}

/* A local file named by KEY=*PATH must be readable, unless it uses
 * libssh's %-expansion or ~ (only libssh knows what those become).
 * Relative names are made absolute now, as nbdkit may change directory.
 */
static int
check_local_file (const char *key, char **path)
{
  char *abs;

  if (strchr (*path, '%') || (*path)[0] == '~')
    return 0;
  if ((*path)[0] != '/') {
    abs = nbdkit_absolute_path (*path);
    if (abs == NULL)
      return -1;
    free (*path);
    *path = abs;
  }
  if (access (*path, R_OK) == -1) {
    nbdkit_error ("%s=%s: %m", key, *path);
    return -1;
  }
  return 0;
}

int
params_config_complete (void)
{
  size_t i;

  if (params.host == NULL || params.path == NULL) {
    nbdkit_error ("you must give %s on the command line",
                  params.host == NULL ? "host=HOST" : "the remote [path=]PATH");
    return -1;
  }
  if (params.create && params.create_size == -1) {
    nbdkit_error ("create=true needs create-size=SIZE, the size of the "
                  "new remote file");
    return -1;
  }
  for (i = 0; i < params.identities.len; ++i)
    if (check_local_file ("identity", &params.identities.ptr[i]) == -1)
      return -1;
  if (params.verify_remote_host)
    for (i = 0; i < params.known_hosts.len; ++i)
      if (check_local_file ("known-hosts", &params.known_hosts.ptr[i]) == -1)
        return -1;
  if (params.config_file &&
      check_local_file ("config", &params.config_file) == -1)
    return -1;
  return 0;
}

const char params_help[] =
  "host=<HOST>     (required) SSH server hostname.\n"
  "[path=]<PATH>   (required) Path of the remote file.\n"
  "port=<PORT>                SSH port number or service name.\n"
  "user=<USER>                Remote user name.\n"
  "password=<PASSWORD>        Password (or -, -FD, +FILENAME).\n"
  "config=<CONFIG>            Alternate local SSH configuration file.\n"
  "known-hosts=<FILENAME>     known_hosts file (may be repeated).\n"
  "identity=<FILENAME>        Prepend a private key file (may be repeated).\n"
  "timeout=<SECS>             SSH connection timeout.\n"
  "verify-remote-host=false   Do not check the server's host key.\n"
  "compression=true           Enable SSH compression.\n"
  "create=true                Create (replace) the remote file.\n"
  "create-mode=<MODE>         Permissions of the created file (0600).\n"
  "create-size=<SIZE>         Size of the created file.";

void
params_free (void)
{
  free (params.host);
  free (params.path);
  free (params.user);
  free (params.password);
  free (params.config_file);
  string_vector_free_all (&params.identities);
  string_vector_free_all (&params.known_hosts);
}
