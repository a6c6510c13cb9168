/* SPDX-License-Identifier: BSD-3-Clause
 * The nofilter filter: a layer with no callbacks at all, so every call
 * goes straight to the layer below.  Used to test the filter machinery.
 */

#include <config.h>

#include <nbdkit-filter.h>

static struct nbdkit_filter filter = {
  .name        = "nofilter",
  .longname    = "nbdkit nofilter filter",
  .version     = PACKAGE_VERSION,
  .description = "A filter that passes every request through unchanged",
};

NBDKIT_REGISTER_FILTER (filter)
