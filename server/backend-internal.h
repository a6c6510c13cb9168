/* SPDX-License-Identifier: BSD-3-Clause
 * Private to the backend layer: backend.c (loading, control path,
 * can_*) and backend-data.c (the data operations and their emulations).
 */

#ifndef NBDKIT_BACKEND_INTERNAL_H
#define NBDKIT_BACKEND_INTERNAL_H

#include "internal.h"

#define controlpath_debug(fs, ...)                                      \
  do {                                                                  \
    if (config.verbose && nbdkit_debug_backend_controlpath)             \
      nbdkit_debug ((fs), ##__VA_ARGS__);                               \
  } while (0)
#define datapath_debug(fs, ...)                                         \
  do {                                                                  \
    if (config.verbose && nbdkit_debug_backend_datapath)                \
      nbdkit_debug ((fs), ##__VA_ARGS__);                               \
  } while (0)

/* Run EXPR with messages attributed to layer B. */
#define IN_LAYER(b, expr)                                               \
  ({                                                                    \
    const char *saved_name_ = threadlocal_get_name ();                  \
    threadlocal_set_name ((b)->name);                                   \
    __typeof__ (expr) r_ = (expr);                                      \
    threadlocal_set_name (saved_name_);                                 \
    r_;                                                                 \
  })

#endif /* NBDKIT_BACKEND_INTERNAL_H */
