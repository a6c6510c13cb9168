#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cc plugin forwards every callback: a plugin compiled by it looks
# to a client (nbdinfo --json: size, flags, block status) exactly as the
# same plugin compiled by hand and loaded by nbdkit directly, both with
# few callbacks (nbdkit's defaults) and with many.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdinfo --version
requires_plugin cc
CC=$("$NBDKIT" cc --dump-plugin | sed -n 's/^CC=//p')
requires $CC --version
make_tmpdir
cd "$tmpdir"

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
for def in -DNONE -DWRITE; do
  $CC -O0 -fPIC -shared -I"$abs_top_srcdir/include" -I"$abs_top_builddir" \
    $def features.c -o features.so || fail "$CC features.c failed"
  "$NBDKIT" -U - ./features.so \
    --run 'nbdinfo --json "$uri" && nbdinfo --map "$uri"' |
    grep -v '"uri"' >direct.json || fail "nbdinfo of features.so $def failed"
  "$NBDKIT" -U - cc features.c EXTRA_CFLAGS="-O0 $def" \
    --run 'nbdinfo --json "$uri" && nbdinfo --map "$uri"' |
    grep -v '"uri"' >cc.json || fail "nbdinfo of cc features.c $def failed"
  diff -u direct.json cc.json || fail "cc differs from direct loading ($def)"
done
grep -q '"can_multi_conn": true' cc.json || fail "can_multi_conn not forwarded"
grep -q '"can_trim": true' cc.json || fail "can_trim not forwarded"
grep -q "hole,zero" cc.json || fail "extents not forwarded: $(cat cc.json)"
