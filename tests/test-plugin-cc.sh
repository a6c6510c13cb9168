#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cc plugin: a C RAM disk compiled at start-up (from a file, from
# stdin, as an executable #! script) read and written with nbdsh;
# EXTRA_CFLAGS and CFLAGS reach the compiler; the compiled plugin gets
# its parameters, thread model and errno; it looks to a client exactly
# as when nbdkit loads it directly; the temporary directory is removed.
# (Errors: test-plugin-cc-errors.sh.)
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires_plugin cc
CC=$("$NBDKIT" cc --dump-plugin | sed -n 's/^CC=//p')
requires $CC --version
make_tmpdir
export tmpdir
cd "$tmpdir"
mkdir tmp
export TMPDIR=$tmpdir/tmp

# A RAM disk of SIZE bytes; fill=N (its magic key) fills it with N; a
# read of the last sector fails with ENOSPC through errno.
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
  if (offset + count > sizeof data - 512) {
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
    h.pread(512, size - 512)
except nbd.Error as e:
    assert e.errnum == errno.ENOSPC, e.errnum
else:
    raise AssertionError("read of the last sector succeeded")
PY

# From a file, with EXTRA_CFLAGS, a plugin parameter; -v shows the
# compiled plugin's thread model.
SIZE=65536 FILL=7 "$NBDKIT" -v -U - cc ram.c EXTRA_CFLAGS="-O0 -DSIZE=65536" fill=7 \
  --run 'nbdsh -u "$uri" -c - <check.py' 2>log ||
  fail "RAM disk from a file: $(cat log)"
grep -q "using thread model: serialize_all_requests" log ||
  fail "the compiled plugin's thread model was not used: $(grep thread log)"

# From stdin, CFLAGS replacing the defaults, a bare parameter going to
# the compiled plugin's magic key.
SIZE=8192 FILL=3 "$NBDKIT" -U - cc - CFLAGS="-O0 -fPIC -shared -DSIZE=8192" 3 \
  --run 'nbdsh -u "$uri" -c - <check.py' <ram.c ||
  fail "RAM disk from stdin failed"

# An executable script starting with #!.
{ echo "#!$NBDKIT cc"; cat ram.c; } >script.c
chmod +x script.c
SIZE=8192 FILL=9 ./script.c -U - EXTRA_CFLAGS="-O0 -DSIZE=8192" fill=9 \
  --run 'nbdsh -u "$uri" -c - <check.py' || fail "#! script failed"

[ -z "$(ls tmp)" ] || fail "temporary files left behind: $(ls tmp)"

# To a client the compiled plugin looks as when nbdkit loads it itself.
cat >features.c <<'C'
#include <stdint.h>
#include <string.h>
#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
static int64_t get_size (void *h) { return 1 << 20; }
static int pread (void *h, void *b, uint32_t n, uint64_t o, uint32_t f)
{ memset (b, 0, n); return 0; }
#ifdef WRITE
static int pwrite (void *h, const void *b, uint32_t n, uint64_t o, uint32_t f)
{ return 0; }
static int flush (void *h, uint32_t f) { return 0; }
static int trim (void *h, uint32_t n, uint64_t o, uint32_t f) { return 0; }
static int zero (void *h, uint32_t n, uint64_t o, uint32_t f) { return 0; }
static int multi (void *h) { return 1; }
static int fua (void *h) { return NBDKIT_FUA_NATIVE; }
static int extents (void *h, uint32_t n, uint64_t o, uint32_t f,
                    struct nbdkit_extents *e)
{ return nbdkit_add_extent (e, o, n, NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO); }
static int cache (void *h, uint32_t n, uint64_t o, uint32_t f) { return 0; }
#endif
static struct nbdkit_plugin plugin = {
  .name = "features", .get_size = get_size, .pread = pread,
#ifdef WRITE
  .pwrite = pwrite, .flush = flush, .trim = trim, .zero = zero,
  .can_multi_conn = multi, .can_fua = fua, .extents = extents,
  .cache = cache,
#endif
};
NBDKIT_REGISTER_PLUGIN (plugin)
C
for def in -DWRITE; do
  $CC -O0 -fPIC -shared -I"$abs_top_srcdir/include" -I"$abs_top_builddir" \
    $def features.c -o features.so || fail "$CC features.c failed"
  "$NBDKIT" -U - ./features.so --run 'nbdinfo --json "$uri"' |
    grep -v '"uri"' >direct.json || fail "nbdinfo of features.so $def failed"
  "$NBDKIT" -U - cc features.c EXTRA_CFLAGS="-O0 $def" \
    --run 'nbdinfo --json "$uri"' |
    grep -v '"uri"' >cc.json || fail "nbdinfo of cc features.c $def failed"
  diff -u direct.json cc.json || fail "cc differs from direct loading ($def)"
done
grep -q '"can_multi_conn": true' cc.json || fail "can_multi_conn not forwarded"
grep -q '"can_trim": true' cc.json || fail "can_trim not forwarded"

[ -z "$(ls tmp)" ] || fail "temporary files left behind: $(ls tmp)"
