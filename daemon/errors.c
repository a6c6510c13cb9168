/* SPDX-License-Identifier: BSD-3-Clause
 * The named-error map of org.nbdkit.Daemon1 (errors.h): one table, used by
 * the daemon to reply with named errors and by clients to read them back.
 */

#include <config.h>

#include <errno.h>
#include <string.h>

#include "errors.h"

/* Each errno appears once so that the mapping is reversible. */
const sd_bus_error_map nbdkitd_error_map[] = {
  SD_BUS_ERROR_MAP (NBDKITD_ERROR_NO_SUCH_EXPORT,    ENOENT),
  SD_BUS_ERROR_MAP (NBDKITD_ERROR_EXPORT_EXISTS,     EEXIST),
  SD_BUS_ERROR_MAP (NBDKITD_ERROR_INVALID_PARAMETER, EINVAL),
  SD_BUS_ERROR_MAP (NBDKITD_ERROR_NO_SUCH_PLUGIN,    ENOPKG),
  SD_BUS_ERROR_MAP (NBDKITD_ERROR_NO_SUCH_FILTER,    ELIBACC),
  SD_BUS_ERROR_MAP (NBDKITD_ERROR_PLUGIN_FAILED,     EIO),
  SD_BUS_ERROR_MAP (NBDKITD_ERROR_ADDRESS_IN_USE,    EADDRINUSE),
  SD_BUS_ERROR_MAP (NBDKITD_ERROR_BUSY,              EBUSY),
  SD_BUS_ERROR_MAP_END
};

int
nbdkitd_errors_register (void)
{
  return sd_bus_error_add_map (nbdkitd_error_map);
}

int
nbdkitd_error_to_errno (const char *name)
{
  for (const sd_bus_error_map *m = nbdkitd_error_map; m->name; m++)
    if (strcmp (m->name, name) == 0)
      return m->code;
  return 0;
}
