/* SPDX-License-Identifier: BSD-3-Clause
 * Running mkfs, mke2fs or a command= script from a plugin without a
 * shell between the parameters and the program.  Shared by the
 * tmpdisk, ondemand and linuxdisk plugins.
 */

#ifndef NBDKIT_RUN_COMMAND_H
#define NBDKIT_RUN_COMMAND_H

#include <stdbool.h>

/* WHAT names the program in error messages (NULL: ARGV[0]).
 * Run ARGV[0] (looked up in $PATH) with ARGV, the environment of
 * nbdkit plus EXTRA_ENV ("NAME=VALUE" strings, NULL-terminated, may
 * be NULL), stdin from /dev/null, and stdout and stderr captured.
 * Returns 0 if it exited with status 0.  Otherwise returns -1 and,
 * if REPORT, calls nbdkit_error with the program's output.  If OUTPUT
 * is not NULL it receives the captured output (caller frees).
 */
extern int run_command (const char *what, char *const argv[],
                        char *const extra_env[], bool report,
                        char **output);

#endif /* NBDKIT_RUN_COMMAND_H */
