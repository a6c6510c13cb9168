#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The readahead filter in prefetch mode: over the file plugin (which
# prefetches natively) reads pass through unchanged and sequential reads
# make the filter send cache requests for the data ahead, each byte at
# most once; random reads send none.  The data is always the file's,
# including after writes, and through the xz filter too.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires_plugin file
requires_filter readahead
requires_filter log
make_tmpdir
export tmpdir

disk=$tmpdir/disk.img
head -c 16M /dev/urandom >"$disk"
cp "$disk" "$tmpdir/model"

"$NBDKIT" -U - --filter=readahead --filter=log file "$disk" \
    logfile="$tmpdir/log" --run 'nbdsh -u "$uri" -c "
import random
model = bytearray(open(\"$tmpdir/model\", \"rb\").read())
for off in range(0, 8 << 20, 4096):
    assert h.pread(4096, off) == model[off:off+4096], off
h.pwrite(b\"new\" * 1000, 8 << 20)
model[8 << 20:(8 << 20) + 3000] = b\"new\" * 1000
for off in range(8 << 20, 9 << 20, 4096):
    assert h.pread(4096, off) == model[off:off+4096], off
open(\"$tmpdir/model\", \"wb\").write(model)
"' || fail "sequential reads returned wrong data"
cmp "$disk" "$tmpdir/model" || fail "the write did not land in the file"

python3 - "$tmpdir/log" <<'PY' || fail "the prefetches are not as expected"
import re, sys
reads, caches = [], []
for line in open(sys.argv[1]):
    m = re.search(r" (Read|Cache) id=\d+ offset=(0x[0-9a-f]+) count=(0x[0-9a-f]+)", line)
    if m:
        (reads if m.group(1) == "Read" else caches).append(
            (int(m.group(2), 16), int(m.group(3), 16)))
assert len(reads) == 2048 + 256, "reads were not passed through: %d" % len(reads)
assert all(n == 4096 for off, n in reads), "a read was changed"
assert len(caches) >= 4, "no prefetch: %r" % caches
# Each prefetch lies ahead of the read before it, and no byte is asked
# for twice.
covered = sorted(caches)
for (a, an), (b, bn) in zip(covered, covered[1:]):
    assert a + an <= b, "overlapping prefetches %r %r" % ((a, an), (b, bn))
assert sum(n for o, n in caches) >= 8 << 20, "prefetched too little"
PY

# Random reads: no prefetching.
"$NBDKIT" -U - --filter=readahead --filter=log file "$disk" \
    logfile="$tmpdir/log2" --run 'nbdsh -u "$uri" -c "
import random
r = random.Random(2)
model = open(\"$tmpdir/model\", \"rb\").read()
for i in range(300):
    off = r.randrange(0, len(model) - 4096, 8192) + 4096
    assert h.pread(4096, off) == model[off:off+4096], off
"' || fail "random reads returned wrong data"
[ "$(grep -c ' Cache id=.*count=' "$tmpdir/log2")" = 0 ] ||
  fail "random reads should not prefetch"

"$NBDKIT" -U - --filter=readahead file "$disk" \
    --run 'nbdcopy "$uri" "$tmpdir/copy"' || fail "nbdcopy failed"
cmp "$disk" "$tmpdir/copy" || fail "nbdcopy read wrong data"

# Prefetching decompresses xz blocks ahead.
if xz --version >/dev/null 2>&1 &&
   "$NBDKIT" --filter=xz null --dump-plugin >/dev/null 2>&1; then
  head -c 4M "$disk" | xz -0 --block-size=256KiB >"$tmpdir/d.xz"
  "$NBDKIT" -U - --filter=readahead --filter=xz file "$tmpdir/d.xz" \
      xz-max-depth=4 --run 'nbdsh -u "$uri" -c "
model = open(\"$tmpdir/model\", \"rb\").read()
for off in range(0, 4 << 20, 4096):
    assert h.pread(4096, off) == model[off:off+4096], off
"' || fail "sequential reads through readahead and xz returned wrong data"
fi
