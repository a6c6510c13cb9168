/* SPDX-License-Identifier: BSD-3-Clause
 * One SSH session per NBD connection: libssh options from the
 * parameters, the TCP connection, the server's host key checked against
 * the known hosts files, authentication (none, publickey, password) and
 * the SFTP channel.  Also maps SFTP status codes to errno.
 */

#include <config.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include <libssh/callbacks.h>

#include "ssh.h"

static void
log_to_nbdkit (int priority, const char *function, const char *buffer,
               void *userdata)
{
  nbdkit_debug ("libssh: %s", buffer);
}

/* libssh keeps its log level and callback per thread, and nbdkit may
 * call the plugin from several threads: set them in each call.
 */
void
remote_thread_logging (void)
{
  if (ssh_debug_log > 0) {
    ssh_set_log_callback (log_to_nbdkit);
    ssh_set_log_level (ssh_debug_log);
  }
}

/* The remote end as the messages name it: "host=H port=P". */
static const char *
describe_remote (void)
{
  if (params.port != 0)
    return nbdkit_printf_intern ("host=%s port=%u", params.host, params.port);
  return nbdkit_printf_intern ("host=%s", params.host);
}

static int
set_option (ssh_session s, enum ssh_options_e opt, const void *value,
            const char *what)
{
  if (ssh_options_set (s, opt, value) != SSH_OK) {
    nbdkit_error ("%s: libssh refused the setting: %s", what,
                  ssh_get_error (s));
    return -1;
  }
  return 0;
}

/* Everything that is known before connecting.  The configuration file
 * is read last: libssh lets values set here take precedence over it.
 */
static int
set_options (ssh_session s)
{
  const char *yes = "yes";
  bool process_config = false;
  int nodelay = 1;
  size_t i;

  if (set_option (s, SSH_OPTIONS_HOST, params.host, "host") == -1)
    return -1;
  /* Each request waits for its reply: without this, Nagle's algorithm
   * and delayed ACKs hold back the tail of each request (~40 ms).
   */
  if (set_option (s, SSH_OPTIONS_NODELAY, &nodelay, "nodelay") == -1)
    return -1;
  if (params.port != 0 &&
      set_option (s, SSH_OPTIONS_PORT, &params.port, "port") == -1)
    return -1;
  if (params.user &&
      set_option (s, SSH_OPTIONS_USER, params.user, "user") == -1)
    return -1;
  for (i = 0; i < params.identities.len; ++i)
    if (set_option (s, SSH_OPTIONS_IDENTITY, params.identities.ptr[i],
                    "identity") == -1)
      return -1;
  if (params.known_hosts.len > 0 &&
      set_option (s, SSH_OPTIONS_KNOWNHOSTS, params.known_hosts.ptr[0],
                  "known-hosts") == -1)
    return -1;
  if (params.timeout > 0 &&
      set_option (s, SSH_OPTIONS_TIMEOUT, &params.timeout, "timeout") == -1)
    return -1;
  if (params.compression &&
      set_option (s, SSH_OPTIONS_COMPRESSION, yes, "compression") == -1)
    return -1;
  if (ssh_debug_log > 0 &&
      set_option (s, SSH_OPTIONS_LOG_VERBOSITY, &ssh_debug_log,
                  "-D ssh.log") == -1)
    return -1;

  if (!params.config_given)
    return 0;                   /* libssh reads the default files */
  if (set_option (s, SSH_OPTIONS_PROCESS_CONFIG, &process_config,
                  "config") == -1)
    return -1;
  if (params.config_file &&
      ssh_options_parse_config (s, params.config_file) != 0) {
    nbdkit_error ("config=%s: cannot read the SSH configuration: %s",
                  params.config_file, ssh_get_error (s));
    return -1;
  }
  return 0;
}

/* How bad a known hosts answer is, so that several files combine into
 * one answer: any file that knows the key wins, otherwise the most
 * alarming answer is kept.
 */
static int
known_hosts_rank (enum ssh_known_hosts_e r)
{
  switch (r) {
  case SSH_KNOWN_HOSTS_OK:        return 5;
  case SSH_KNOWN_HOSTS_CHANGED:   return 4;
  case SSH_KNOWN_HOSTS_OTHER:     return 3;
  case SSH_KNOWN_HOSTS_ERROR:     return 2;
  case SSH_KNOWN_HOSTS_UNKNOWN:   return 1;
  case SSH_KNOWN_HOSTS_NOT_FOUND: return 0;
  }
  return 2;
}

static enum ssh_known_hosts_e
check_known_hosts (ssh_session s)
{
  enum ssh_known_hosts_e best = SSH_KNOWN_HOSTS_NOT_FOUND, r;
  size_t i;

  if (params.known_hosts.len == 0)
    return ssh_session_is_known_server (s);

  for (i = 0; i < params.known_hosts.len; ++i) {
    if (ssh_options_set (s, SSH_OPTIONS_KNOWNHOSTS,
                         params.known_hosts.ptr[i]) != SSH_OK)
      return SSH_KNOWN_HOSTS_ERROR;
    r = ssh_session_is_known_server (s);
    if (r == SSH_KNOWN_HOSTS_OK)
      return r;
    if (known_hosts_rank (r) > known_hosts_rank (best))
      best = r;
  }
  return best;
}

static int
verify_remote_host (ssh_session s)
{
  const char *files = params.known_hosts.len == 0
    ? "~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts"
    : "the known-hosts= files";

  switch (check_known_hosts (s)) {
  case SSH_KNOWN_HOSTS_OK:
    return 0;
  case SSH_KNOWN_HOSTS_CHANGED:
    nbdkit_error ("%s: the server's host key differs from the one "
                  "recorded in %s; refusing to connect (this could be a "
                  "man-in-the-middle attack)", describe_remote (), files);
    break;
  case SSH_KNOWN_HOSTS_OTHER:
    nbdkit_error ("%s: the server offers a different type of host key "
                  "from the one recorded in %s; refusing to connect",
                  describe_remote (), files);
    break;
  case SSH_KNOWN_HOSTS_UNKNOWN:
  case SSH_KNOWN_HOSTS_NOT_FOUND:
    nbdkit_error ("%s: the server's host key is not recorded in %s "
                  "(connect once with ssh(1) to accept it, name a file "
                  "with known-hosts=, or use verify-remote-host=false)",
                  describe_remote (), files);
    break;
  case SSH_KNOWN_HOSTS_ERROR:
    nbdkit_error ("%s: cannot check the server's host key: %s",
                  describe_remote (), ssh_get_error (s));
    break;
  }
  return -1;
}

/* Log in with "none", then public keys (ssh-agent and the identity
 * files), then the password if one was given.  Keyboard-interactive is
 * not supported: there is nobody to answer its questions.
 */
static int
authenticate (ssh_session s)
{
  int rc, methods;
  char *user = NULL;

  rc = ssh_userauth_none (s, NULL);
  if (rc == SSH_AUTH_SUCCESS)
    return 0;
  if (rc == SSH_AUTH_ERROR)
    goto error;
  methods = ssh_userauth_list (s, NULL);

  if (methods & SSH_AUTH_METHOD_PUBLICKEY) {
    rc = ssh_userauth_publickey_auto (s, NULL, NULL);
    if (rc == SSH_AUTH_SUCCESS)
      return 0;
    if (rc == SSH_AUTH_ERROR)
      goto error;
  }
  if (params.password && (methods & SSH_AUTH_METHOD_PASSWORD)) {
    rc = ssh_userauth_password (s, NULL, params.password);
    if (rc == SSH_AUTH_SUCCESS)
      return 0;
    if (rc == SSH_AUTH_ERROR)
      goto error;
  }

  ssh_options_get (s, SSH_OPTIONS_USER, &user);
  nbdkit_error ("%s: authentication as user %s failed: the server offers "
                "%s%s%s; no key%s was accepted (check identity=, user= "
                "and password=)",
                describe_remote (), user ? user : "(unknown)",
                methods & SSH_AUTH_METHOD_PUBLICKEY ? "[publickey]" : "",
                methods & SSH_AUTH_METHOD_PASSWORD ? "[password]" : "",
                methods & SSH_AUTH_METHOD_INTERACTIVE
                ? "[keyboard-interactive, not supported]" : "",
                params.password ? " or password" : "");
  ssh_string_free_char (user);
  return -1;

 error:
  nbdkit_error ("%s: authentication: %s", describe_remote (),
                ssh_get_error (s));
  return -1;
}

static int
start_sftp (struct ssh_handle *h)
{
  h->sftp = sftp_new (h->session);
  if (h->sftp == NULL) {
    nbdkit_error ("%s: cannot open an SFTP channel: %s",
                  describe_remote (), ssh_get_error (h->session));
    return -1;
  }
  if (sftp_init (h->sftp) != SSH_OK) {
    nbdkit_error ("%s: cannot start SFTP (is the sftp subsystem enabled "
                  "on the server?): %s",
                  describe_remote (), ssh_get_error (h->session));
    return -1;
  }
  return 0;
}

int
remote_connect (struct ssh_handle *h)
{
  remote_thread_logging ();
  h->session = ssh_new ();
  if (h->session == NULL) {
    nbdkit_error ("ssh_new: cannot create an SSH session: %m");
    return -1;
  }
  if (set_options (h->session) == -1)
    goto err;
  if (ssh_connect (h->session) != SSH_OK) {
    nbdkit_error ("%s: cannot connect: %s",
                  describe_remote (), ssh_get_error (h->session));
    goto err;
  }
  if (params.verify_remote_host && verify_remote_host (h->session) == -1)
    goto err;
  if (authenticate (h->session) == -1)
    goto err;
  if (start_sftp (h) == -1)
    goto err;
  nbdkit_debug ("ssh: connected to %s", describe_remote ());
  return 0;

 err:
  remote_disconnect (h);
  return -1;
}

void
remote_disconnect (struct ssh_handle *h)
{
  if (h->file) {
    sftp_close (h->file);
    h->file = NULL;
  }
  if (h->sftp) {
    sftp_free (h->sftp);
    h->sftp = NULL;
  }
  if (h->session) {
    if (ssh_is_connected (h->session))
      ssh_disconnect (h->session);
    ssh_free (h->session);
    h->session = NULL;
  }
}

/* SFTP status codes (draft-ietf-secsh-filexfer-02 section 7). */
int
remote_errno (sftp_session sftp)
{
  switch (sftp_get_error (sftp)) {
  case SSH_FX_OK:                  return EIO; /* libssh-side failure */
  case SSH_FX_EOF:                 return EIO;
  case SSH_FX_NO_SUCH_FILE:        return ENOENT;
  case SSH_FX_PERMISSION_DENIED:   return EPERM;
  case SSH_FX_FAILURE:             return EIO;
  case SSH_FX_BAD_MESSAGE:         return EINVAL;
  case SSH_FX_NO_CONNECTION:       return ENOTCONN;
  case SSH_FX_CONNECTION_LOST:     return ESHUTDOWN;
  case SSH_FX_OP_UNSUPPORTED:      return EOPNOTSUPP;
  case SSH_FX_INVALID_HANDLE:      return EBADF;
  case SSH_FX_NO_SUCH_PATH:        return ENOENT;
  case SSH_FX_FILE_ALREADY_EXISTS: return EEXIST;
  case SSH_FX_WRITE_PROTECT:       return EPERM;
  case SSH_FX_NO_MEDIA:            return ENXIO;
  default:                         return EIO;
  }
}

const char *
remote_strerror (sftp_session sftp)
{
  switch (sftp_get_error (sftp)) {
  case SSH_FX_OK:
    return ssh_get_error (sftp->session);
  case SSH_FX_EOF:                 return "unexpected end of file";
  case SSH_FX_NO_SUCH_FILE:        return "no such file";
  case SSH_FX_PERMISSION_DENIED:   return "permission denied";
  case SSH_FX_FAILURE:             return "the server reported a failure";
  case SSH_FX_BAD_MESSAGE:         return "bad SFTP message";
  case SSH_FX_NO_CONNECTION:       return "no connection";
  case SSH_FX_CONNECTION_LOST:     return "connection lost";
  case SSH_FX_OP_UNSUPPORTED:      return "operation not supported";
  case SSH_FX_INVALID_HANDLE:      return "invalid file handle";
  case SSH_FX_NO_SUCH_PATH:        return "no such path";
  case SSH_FX_FILE_ALREADY_EXISTS: return "file already exists";
  case SSH_FX_WRITE_PROTECT:       return "write protected";
  case SSH_FX_NO_MEDIA:            return "no media";
  default:                         return "unknown SFTP error";
  }
}
