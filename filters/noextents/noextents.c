/* SPDX-License-Identifier: BSD-3-Clause
 * The noextents filter: hides the plugin's block status support, so
 * clients see the whole disk as allocated data.
 */

#include <config.h>

#include <nbdkit-filter.h>

/* Saying "no" is enough: the server then answers every block status
 * request itself with a single allocated, non-zero extent.
 */
static int
noextents_can_extents (nbdkit_next *next, void *handle)
{
  return 0;
}

static struct nbdkit_filter filter = {
  .name        = "noextents",
  .longname    = "nbdkit noextents filter",
  .version     = PACKAGE_VERSION,
  .description = "Report the whole disk as allocated data",
  .can_extents = noextents_can_extents,
};

NBDKIT_REGISTER_FILTER (filter)
