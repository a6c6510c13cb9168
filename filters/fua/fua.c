/* SPDX-License-Identifier: BSD-3-Clause
 * The fua filter: changes how Forced Unit Access and flush requests are
 * advertised and carried out, for testing clients and for speed at the
 * cost of safety.
 */

#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-filter.h>

/* fuamode=: what the filter does with FUA and flush. */
static enum fua_mode {
  FUA_NONE,                     /* FUA not advertised */
  FUA_EMULATE,                  /* FUA done as write + flush */
  FUA_ADVERTISE,                /* FUA advertised even if the plugin lacks it */
  FUA_NATIVE,                   /* FUA advertised as native, passed on */
  FUA_FORCE,                    /* every write gets FUA; flush is a no-op */
  FUA_PASS,                     /* nothing changed */
  FUA_DISCARD,                  /* FUA and flush ignored (unsafe) */
} fuamode = FUA_NONE;

static const char *const mode_names[] = {
  [FUA_NONE] = "none", [FUA_EMULATE] = "emulate",
  [FUA_ADVERTISE] = "advertise", [FUA_NATIVE] = "native",
  [FUA_FORCE] = "force", [FUA_PASS] = "pass", [FUA_DISCARD] = "discard",
};

static int
fua_config (nbdkit_next_config *next, nbdkit_backend *nxdata,
            const char *key, const char *value)
{
  size_t i;

  if (strcmp (key, "fuamode") != 0)
    return next (nxdata, key, value);
  for (i = 0; i < sizeof mode_names / sizeof mode_names[0]; ++i) {
    if (strcmp (value, mode_names[i]) == 0) {
      fuamode = i;
      return 0;
    }
  }
  nbdkit_error ("fuamode: unknown mode '%s' (expected none, emulate, "
                "advertise, native, force, pass or discard)", value);
  return -1;
}

#define fua_config_help \
  "fuamode=<MODE>       One of 'none' (default), 'emulate', 'advertise',\n" \
  "                     'native', 'force', 'pass', 'discard'."

/* Modes that rely on the plugin refuse a connection it cannot serve.
 * Read-only connections never see FUA, so they are always fine.
 */
static int
fua_prepare (nbdkit_next *next, void *handle, int readonly)
{
  int r = next->can_write (next);

  if (r <= 0)
    return r;
  switch (fuamode) {
  case FUA_EMULATE:
    r = next->can_flush (next);
    if (r == -1)
      return -1;
    if (r == 0) {
      nbdkit_error ("fuamode=emulate needs a plugin that can flush");
      return -1;
    }
    break;
  case FUA_NATIVE:
  case FUA_FORCE:
    r = next->can_fua (next);
    if (r == -1)
      return -1;
    if (r == NBDKIT_FUA_NONE) {
      nbdkit_error ("fuamode=%s needs a plugin that supports FUA",
                    mode_names[fuamode]);
      return -1;
    }
    break;
  default:
    break;
  }
  return 0;
}

/* In force and discard modes a flush has nothing left to do, so it is
 * offered (and answered at once) whatever the plugin can do.
 */
static int
fua_can_flush (nbdkit_next *next, void *handle)
{
  if (fuamode == FUA_FORCE || fuamode == FUA_DISCARD)
    return 1;
  return next->can_flush (next);
}

static int
fua_can_fua (nbdkit_next *next, void *handle)
{
  switch (fuamode) {
  case FUA_NONE:
    return NBDKIT_FUA_NONE;
  case FUA_EMULATE:
    return NBDKIT_FUA_EMULATE;
  case FUA_ADVERTISE:
  case FUA_NATIVE:
  case FUA_FORCE:
  case FUA_DISCARD:
    return NBDKIT_FUA_NATIVE;
  case FUA_PASS:
    return next->can_fua (next);
  }
  abort ();
}

/* The flags to pass on for a write-type request, and whether a flush
 * must follow it.
 */
static int
adjust_flags (nbdkit_next *next, uint32_t *flags, int *need_flush)
{
  int r;

  *need_flush = 0;
  switch (fuamode) {
  case FUA_NONE:
  case FUA_NATIVE:
  case FUA_PASS:
    break;
  case FUA_EMULATE:
    if (*flags & NBDKIT_FLAG_FUA) {
      *flags &= ~NBDKIT_FLAG_FUA;
      *need_flush = 1;
    }
    break;
  case FUA_ADVERTISE:
    r = next->can_fua (next);
    if (r == -1)
      return -1;
    if (r == NBDKIT_FUA_NONE)
      *flags &= ~NBDKIT_FLAG_FUA;
    break;
  case FUA_FORCE:
    *flags |= NBDKIT_FLAG_FUA;
    break;
  case FUA_DISCARD:
    *flags &= ~NBDKIT_FLAG_FUA;
    break;
  }
  return 0;
}

static int
fua_pwrite (nbdkit_next *next, void *handle, const void *buf,
            uint32_t count, uint64_t offset, uint32_t flags, int *err)
{
  int need_flush;

  if (adjust_flags (next, &flags, &need_flush) == -1) {
    *err = EIO;
    return -1;
  }
  if (next->pwrite (next, buf, count, offset, flags, err) == -1)
    return -1;
  return need_flush ? next->flush (next, 0, err) : 0;
}

static int
fua_trim (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
          uint32_t flags, int *err)
{
  int need_flush;

  if (adjust_flags (next, &flags, &need_flush) == -1) {
    *err = EIO;
    return -1;
  }
  if (next->trim (next, count, offset, flags, err) == -1)
    return -1;
  return need_flush ? next->flush (next, 0, err) : 0;
}

static int
fua_zero (nbdkit_next *next, void *handle, uint32_t count, uint64_t offset,
          uint32_t flags, int *err)
{
  int need_flush;

  if (adjust_flags (next, &flags, &need_flush) == -1) {
    *err = EIO;
    return -1;
  }
  if (next->zero (next, count, offset, flags, err) == -1)
    return -1;
  return need_flush ? next->flush (next, 0, err) : 0;
}

static int
fua_flush (nbdkit_next *next, void *handle, uint32_t flags, int *err)
{
  if (fuamode == FUA_FORCE || fuamode == FUA_DISCARD)
    return 0;
  return next->flush (next, flags, err);
}

static struct nbdkit_filter filter = {
  .name              = "fua",
  .longname          = "nbdkit fua filter",
  .version           = PACKAGE_VERSION,
  .description       = "Change how FUA and flush requests are handled",
  .config            = fua_config,
  .config_help       = fua_config_help,
  .prepare           = fua_prepare,
  .can_flush         = fua_can_flush,
  .can_fua           = fua_can_fua,
  .pwrite            = fua_pwrite,
  .trim              = fua_trim,
  .zero              = fua_zero,
  .flush             = fua_flush,
};

NBDKIT_REGISTER_FILTER (filter)
