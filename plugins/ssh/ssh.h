/* SPDX-License-Identifier: BSD-3-Clause
 * The ssh plugin's private header: the parameters, frozen once config
 * is complete, and the per-connection session that session.c opens.
 */

#ifndef NBDKIT_SSH_PLUGIN_H
#define NBDKIT_SSH_PLUGIN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <libssh/libssh.h>
#include <libssh/sftp.h>

#include "vector.h"

struct ssh_params {
  char *host;                   /* host= (required) */
  char *path;                   /* [path=] (required), remote, as given */
  unsigned port;                /* port=, resolved to a number, 0 if unset */
  char *user;                   /* user=, or NULL for the local user */
  char *password;               /* password=, after nbdkit_read_password */
  string_vector identities;     /* identity=, in the order given */
  string_vector known_hosts;    /* known-hosts=, in the order given */
  bool verify_remote_host;      /* verify-remote-host= (default true) */
  bool config_given;            /* config= appeared at all */
  char *config_file;            /* config=FILE, NULL for config= */
  bool compression;             /* compression= */
  long timeout;                 /* timeout= in seconds, 0 if not set */
  bool create;                  /* create= */
  int64_t create_size;          /* create-size=, -1 if not set */
  mode_t create_mode;           /* create-mode= (default 0600) */
};

/* params.c */
extern struct ssh_params params;
extern const char params_help[];
extern int params_config (const char *key, const char *value);
extern int params_config_complete (void);
extern void params_free (void);

/* ssh.c: -D ssh.log=N, libssh's log verbosity (0 = quiet). */
extern int ssh_debug_log;

/* One SSH session and the open remote file, per NBD connection. */
struct ssh_handle {
  ssh_session session;
  sftp_session sftp;
  sftp_file file;
};

/* session.c */
extern int remote_connect (struct ssh_handle *h);
extern void remote_disconnect (struct ssh_handle *h);
extern void remote_thread_logging (void);
extern int remote_errno (sftp_session sftp);
extern const char *remote_strerror (sftp_session sftp);

#endif /* NBDKIT_SSH_PLUGIN_H */
