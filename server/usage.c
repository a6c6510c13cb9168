/* SPDX-License-Identifier: BSD-3-Clause
 * --help, --version and --dump-config output, and command line errors.
 */

#include <config.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void
usage (void)
{
  printf (
"nbdkit [-4|--ipv4-only] [-6|--ipv6-only]\n"
"       [-D|--debug PLUGIN|FILTER|nbdkit.FLAG=N]\n"
"       [-e|--exportname EXPORTNAME] [--exit-with-parent]\n"
"       [--filter FILTER ...] [-f|--foreground]\n"
"       [-g|--group GROUP] [--handshake-timeout SECS]\n"
"       [-i|--ipaddr IPADDR]\n"
"       [--log stderr|syslog|null] [--mask-handshake MASK]\n"
"       [--max-connections N]\n"
"       [-n|--newstyle] [--no-sr] [-o|--oldstyle]\n"
"       [-P|--pidfile PIDFILE] [--poll-max MICROSECONDS]\n"
"       [-p|--port PORT] [-r|--readonly]\n"
"       [--run CMD] [-s|--single] [--selinux-label LABEL] [--swap]\n"
"       [-t|--threads THREADS]\n"
"       [--tls off|on|require] [--tls-certificates /path/to/certificates]\n"
"       [--tls-psk /path/to/pskfile] [--tls-verify-peer]\n"
"       [--tls-priority PRIORITY]\n"
"       [-U|--unix SOCKET] [-u|--user USER]\n"
"       [-v|--verbose] [-V|--version] [--vsock]\n"
"       PLUGIN [[KEY=]VALUE [KEY=VALUE [...]]]\n"
"\n"
"Command line options:\n"
"  -f, --foreground        stay in the foreground\n"
"  -i, --ipaddr IPADDR     listen on this address (default: all)\n"
"  -p, --port PORT         listen on this TCP port (default: 10809)\n"
"  -U, --unix SOCKET       listen on a Unix socket (- for a private one)\n"
"  -s, --single            serve one connection on stdin/stdout\n"
"  -r, --readonly          serve the export read-only\n"
"  -e, --exportname NAME   export name used in the --run URI\n"
"  -o, --oldstyle          use the oldstyle protocol\n"
"  -n, --newstyle          use the fixed newstyle protocol (default)\n"
"  --no-sr                 do not offer structured replies\n"
"  -t, --threads N         request threads per connection (default: %d)\n"
"  --handshake-timeout S   drop clients that take longer to finish the\n"
"                          handshake (default: %d seconds, 0 = no limit)\n"
"  --max-connections N     at most N clients at once (default: %d)\n"
"  --poll-max US           poll for the next request for up to US\n"
"                          microseconds before sleeping (default: %d,\n"
"                          0 = never)\n"
"  -P, --pidfile FILE      write the server pid here once ready\n"
"  --run CMD               run CMD with $uri set, exit when it exits\n"
"  -v, --verbose           print debug messages to stderr\n"
"  --dump-config           print the build configuration\n"
"  --dump-plugin           print information about the plugin\n"
"\n"
"Please read the nbdkit(1) manual page for full usage.\n",
          DEFAULT_THREADS, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
          DEFAULT_POLL_MAX);
}

void
display_version (void)
{
  printf ("%s %s\n", "nbdkit", PACKAGE_VERSION);
}

void
dump_config (void)
{
  const char *binary = SBINDIR "/nbdkit";
  char *self = realpath ("/proc/self/exe", NULL);

  printf ("binary=%s\n", self ? self : binary);
  printf ("bindir=%s\n", SBINDIR);
  printf ("filterdir=%s\n", FILTERDIR);
  printf ("exit_with_parent=yes\n");
  printf ("host_cpu=%s\n", HOST_CPU);
  printf ("host_os=%s\n", HOST_OS);
  printf ("libdir=%s\n", LIBDIR);
  printf ("mandir=%s\n", MANDIR);
  printf ("name=%s\n", "nbdkit");
  printf ("plugindir=%s\n", PLUGINDIR);
  printf ("root_tls_certificates_dir=%s\n", SYSCONFDIR "/pki/nbdkit");
  printf ("sbindir=%s\n", SBINDIR);
  printf ("selinux=%s\n", HAVE_LIBSELINUX ? "yes" : "no");
  printf ("sysconfdir=%s\n", SYSCONFDIR);
  printf ("tls=%s\n", HAVE_GNUTLS ? "yes" : "no");
  printf ("version=%s\n", PACKAGE_VERSION);
  printf ("version_major=%d\n", NBDKIT_VERSION_MAJOR);
  printf ("version_minor=%d\n", NBDKIT_VERSION_MINOR);
  printf ("version_micro=%d\n", NBDKIT_VERSION_MICRO);
  free (self);
}

/* A command line error: the message, a pointer to the help, exit. */
void
usage_error (const char *fs, ...)
{
  va_list args;

  fprintf (stderr, "%s: ", config.program_name);
  va_start (args, fs);
  vfprintf (stderr, fs, args);
  va_end (args);
  fprintf (stderr, "\nUse '%s --help' or read the nbdkit(1) manual page "
           "for documentation.\n", config.program_name);
  exit (EXIT_FAILURE);
}
