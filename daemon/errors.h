/* SPDX-License-Identifier: BSD-3-Clause
 * The named D-Bus errors of org.nbdkit.Daemon1 and their errno values,
 * shared by nbdkitd and nbdkitctl so that errno survives the round trip.
 */

#ifndef NBDKITD_ERRORS_H
#define NBDKITD_ERRORS_H

#include <systemd/sd-bus.h>

#define NBDKITD_ERROR_PREFIX "org.nbdkit.Daemon1.Error."
#define NBDKITD_ERROR_NO_SUCH_EXPORT     NBDKITD_ERROR_PREFIX "NoSuchExport"
#define NBDKITD_ERROR_EXPORT_EXISTS      NBDKITD_ERROR_PREFIX "ExportExists"
#define NBDKITD_ERROR_INVALID_PARAMETER  NBDKITD_ERROR_PREFIX "InvalidParameter"
#define NBDKITD_ERROR_NO_SUCH_PLUGIN     NBDKITD_ERROR_PREFIX "NoSuchPlugin"
#define NBDKITD_ERROR_NO_SUCH_FILTER     NBDKITD_ERROR_PREFIX "NoSuchFilter"
#define NBDKITD_ERROR_PLUGIN_FAILED      NBDKITD_ERROR_PREFIX "PluginFailed"
#define NBDKITD_ERROR_ADDRESS_IN_USE     NBDKITD_ERROR_PREFIX "AddressInUse"
#define NBDKITD_ERROR_BUSY               NBDKITD_ERROR_PREFIX "Busy"

/* Terminated by SD_BUS_ERROR_MAP_END; register with nbdkitd_errors_register. */
extern const sd_bus_error_map nbdkitd_error_map[];

/* Make sd-bus translate the names above to errno and back, process-wide. */
extern int nbdkitd_errors_register (void);

/* The errno a named error maps to, or 0 if NAME is not one of ours. */
extern int nbdkitd_error_to_errno (const char *name);

#endif /* NBDKITD_ERRORS_H */
