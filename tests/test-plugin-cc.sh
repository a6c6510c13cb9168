#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cc plugin: a C RAM disk compiled at start-up (from a file, from
# stdin, as an executable #! or "#if 0" script) read and written with nbdsh;
# EXTRA_CFLAGS and CFLAGS reach the compiler; the compiled plugin gets
# its parameters, thread model and errno; the temporary directory is
# removed.  (Forwarding: test-plugin-cc-forward.sh; errors:
# test-plugin-cc-errors.sh.)
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires nbdcopy --version
requires_plugin cc
CC=$("$NBDKIT" cc --dump-plugin | sed -n 's/^CC=//p')
requires $CC --version
make_tmpdir
export tmpdir
cd "$tmpdir"
mkdir tmp
export TMPDIR=$tmpdir/tmp

# A RAM disk of SIZE bytes; fill=N (its magic key) fills it with N; a
# read of 511 bytes fails with ENOSPC through errno.
cat >ram.c <<'C'
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

static unsigned char data[SIZE];

static int
ram_config (const char *key, const char *value)
{
  if (strcmp (key, "fill") != 0) {
    nbdkit_error ("ram: unknown parameter %s", key);
    return -1;
  }
  memset (data, atoi (value), sizeof data);
  return 0;
}

static void *
ram_open (int readonly)
{
  return NBDKIT_HANDLE_NOT_NEEDED;
}

#define THREAD_MODEL NBDKIT_THREAD_MODEL_SERIALIZE_ALL_REQUESTS

static int64_t
ram_get_size (void *handle)
{
  return sizeof data;
}

static int
ram_pread (void *handle, void *buf, uint32_t count, uint64_t offset,
           uint32_t flags)
{
  if (count == 511) {
    errno = ENOSPC;
    return -1;
  }
  memcpy (buf, data + offset, count);
  return 0;
}

static int
ram_pwrite (void *handle, const void *buf, uint32_t count, uint64_t offset,
            uint32_t flags)
{
  memcpy (data + offset, buf, count);
  return 0;
}

static struct nbdkit_plugin plugin = {
  .name               = "ram",
  .config             = ram_config,
  .magic_config_key   = "fill",
  .open               = ram_open,
  .get_size           = ram_get_size,
  .pread              = ram_pread,
  .pwrite             = ram_pwrite,
  .errno_is_preserved = 1,
};

NBDKIT_REGISTER_PLUGIN (plugin)
C

cat >check.py <<'PY'
import errno, os
size = int(os.environ["SIZE"])
fill = int(os.environ["FILL"])
assert h.get_size() == size, h.get_size()
assert not h.is_read_only()
assert h.pread(4096, 0) == bytes([fill]) * 4096
h.pwrite(b"hello, world", 1000)
assert h.pread(16, 998) == bytes([fill]) * 2 + b"hello, world" + bytes([fill]) * 2
h.zero(100, 2000)                   # emulated with pwrite
assert h.pread(100, 2000) == bytes(100)
try:
    h.pread(511, 0)
except nbd.Error as e:
    assert e.errnum == errno.ENOSPC, e.errnum
else:
    raise AssertionError("read of 511 bytes succeeded")
PY

# From a file, with EXTRA_CFLAGS, a plugin parameter; -v shows the
# compiled plugin's thread model.
SIZE=65536 FILL=7 "$NBDKIT" -v -U - cc ram.c EXTRA_CFLAGS="-O0 -DSIZE=65536" \
  fill=7 \
  --run 'nbdsh -u "$uri" -c - <check.py' 2>log ||
  fail "RAM disk from a file: $(cat log)"
grep -q "using thread model: serialize_all_requests" log ||
  fail "the compiled plugin's thread model was not used: $(grep thread log)"

# The other forms are checked by copying the disk (cheaper than nbdsh):
# check_copy SIZE FILL compares the copy in "out" with SIZE bytes of FILL.
check_copy ()
{
  head -c "$1" /dev/zero | tr '\0' "\\$(printf %03o "$2")" >expected
  cmp -s out expected || fail "$3: the disk is not $1 bytes of $2"
  rm -f out
}

# From stdin, CFLAGS replacing the defaults, a bare parameter going to
# the compiled plugin's magic key.
"$NBDKIT" -U - cc - CFLAGS="-O0 -fPIC -shared -DSIZE=8192" 3 \
  --run 'nbdcopy "$uri" out' <ram.c || fail "RAM disk from stdin failed"
check_copy 8192 3 stdin

# An executable script starting with #!, in another directory, whose
# #include "size.h" finds the header beside it.
mkdir dir
echo '#define SIZE 8192' >dir/size.h
{ echo "#!$NBDKIT cc"; echo '#include "size.h"'; cat ram.c; } >dir/script.c
chmod +x dir/script.c
dir/script.c -U - EXTRA_CFLAGS=-O0 fill=9 --run 'nbdcopy "$uri" out' ||
  fail "#! script failed"
check_copy 8192 9 "#! script"

# The "#if 0 / exec nbdkit cc" form: the shell runs the file.
{ printf '#if 0\nexec nbdkit cc "$0" "$@"\n#endif\n'; cat ram.c; } >trick.c
chmod +x trick.c
PATH="$(dirname "$NBDKIT"):$PATH" \
  ./trick.c -U - EXTRA_CFLAGS="-O0 -DSIZE=4096" 5 --run 'nbdcopy "$uri" out' ||
  fail "#if 0 script failed"
check_copy 4096 5 "#if 0 script"

[ -z "$(ls tmp)" ] || fail "temporary files left behind: $(ls tmp)"
