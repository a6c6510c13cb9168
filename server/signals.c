/* SPDX-License-Identifier: BSD-3-Clause
 * Signal dispositions: INT, QUIT and TERM stop the server cleanly; PIPE
 * and HUP are ignored (a client going away must not kill the server).
 */

#include <config.h>

#include <signal.h>
#include <string.h>

#include "internal.h"

void
set_up_signals (void)
{
  struct sigaction sa;

  memset (&sa, 0, sizeof sa);
  sa.sa_flags = SA_RESTART;
  sa.sa_handler = handle_quit;
  sigaction (SIGINT, &sa, NULL);
  sigaction (SIGQUIT, &sa, NULL);
  sigaction (SIGTERM, &sa, NULL);

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigaction (SIGPIPE, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
}
