/* SPDX-License-Identifier: BSD-3-Clause
 * The filter backend.  Loading filters is part of the filters work; this
 * build refuses --filter with a clear message.
 */

#include <config.h>

#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

struct backend *
filter_register (struct backend *next, size_t index, const char *filename,
                 void *dl, struct nbdkit_filter *(*filter_init) (void))
{
  fprintf (stderr, "%s: %s: filters are not supported yet\n",
           config.program_name, filename);
  exit (EXIT_FAILURE);
}
