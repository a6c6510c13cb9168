/* SPDX-License-Identifier: BSD-3-Clause
 * The log filter's private header: log-format.c writes entries to the
 * log file and runs the log script; log.c decides what to log.
 */

#ifndef NBDKIT_LOG_FILTER_H
#define NBDKIT_LOG_FILTER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* The key=value fields of one entry, as written to the log file and as
 * shell assignments for the log script (the two differ only for lists,
 * which the script receives as one quoted string).
 */
struct log_fields {
  char *text, *shell;
  size_t text_len, shell_len;
  FILE *text_fp, *shell_fp;
};

/* Kinds of entry, named as the log script sees them in $type. */
enum log_type { LOG_ENTER, LOG_LEAVE, LOG_PRINT };

/* log-format.c */
extern int log_start (const char *logfile, bool append, const char *script);
extern void log_stop (void);
extern bool log_enabled (void);

extern int log_fields_init (struct log_fields *f);
extern void log_fields_free (struct log_fields *f);
extern void log_fields_add (struct log_fields *f, const char *key,
                            const char *fs, ...)
  __attribute__ ((__format__ (__printf__, 3, 4)));
extern void log_fields_add_string (struct log_fields *f, const char *key,
                                   const char *value);
extern void log_fields_add_list (struct log_fields *f, const char *key,
                                 const char *items);
extern void log_fields_add_result (struct log_fields *f, int r, int err,
                                   double seconds);
extern void log_quote (FILE *fp, const char *str);

/* Write one entry.  CONNECTION and ID are 0 when they do not apply. */
extern void log_entry (enum log_type type, uint64_t connection,
                       const char *act, uint64_t id, struct log_fields *f);

#endif /* NBDKIT_LOG_FILTER_H */
