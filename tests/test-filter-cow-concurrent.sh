#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Concurrent writers through the cow filter: four nbdsh clients, each
# with 64 unaligned writes in flight, write disjoint byte ranges that
# share every block (so each block is read-modified-written by all of
# them at once), while qemu-io writes unaligned block-crossing ranges
# with 64 requests in flight and nbdcopy reads the whole disk.  No write
# may be lost: the result is compared byte for byte with the expected
# image, and the file underneath must be unchanged.  The delay filter
# slows the plugin's reads, widening the read-modify-write window that
# an unserialized overlay would lose writes in.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdcopy --version
requires qemu-io --version
requires_plugin file
requires_filter cow
requires_filter delay
make_tmpdir
export tmpdir
export TMPDIR=$tmpdir

blocks=144                       # 9 MiB of 64K blocks
head -c $(( blocks * 65536 )) /dev/urandom >"$tmpdir/disk"
sum_before=$(sha256sum <"$tmpdir/disk")

# Writer W of NW writes in every block 0..63, at W * span + 1 + (k % 3),
# a run of span - 5 random bytes from a generator seeded with W.
cat >"$tmpdir/writes.py" <<'PY'
import random
def writer_ranges(w, nw=4, nblocks=64):
    span = 65536 // nw
    rng = random.Random(w)
    for k in range(nblocks):
        yield k * 65536 + w * span + 1 + k % 3, rng.randbytes(span - 5)
# qemu-io: in blocks 64..127, 64K at k * 64K + 777 filled with 0x20 + k%64.
def qemu_ranges():
    for k in range(64, 128):
        yield k * 65536 + 777, bytes([0x20 + k % 64]) * 65536
PY
cat >"$tmpdir/writer.py" <<'PY'
import os, sys
sys.path.insert(0, os.environ["tmpdir"])
from writes import writer_ranges
import time
# Start together: wait (at most 20 s) until all four are connected.
open(os.environ["tmpdir"] + "/ready." + os.environ["W"], "w").close()
deadline = time.monotonic() + 20
while not all(os.path.exists(os.environ["tmpdir"] + "/ready.%d" % w)
              for w in range(4)):
    assert time.monotonic() < deadline, "the other writers did not start"
    time.sleep(0.001)
cmds = [h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data)), off)
        for off, data in writer_ranges(int(os.environ["W"]))]
while h.aio_in_flight() > 0:
    h.poll(-1)
for c in cmds:
    assert h.aio_command_completed(c)
PY
for (( k=64; k<128; k++ )); do
  echo "aio_write -P $(( 0x20 + k % 64 )) $(( k * 65536 + 777 )) 65536"
done >"$tmpdir/qemu-io.cmds"
echo "aio_flush" >>"$tmpdir/qemu-io.cmds"

cp "$tmpdir/disk" "$tmpdir/expected"
python3 - "$tmpdir/expected" <<'PY' || fail "building the expected image failed"
import os, sys
sys.path.insert(0, os.environ["tmpdir"])
from writes import writer_ranges, qemu_ranges
with open(sys.argv[1], "r+b") as f:
    for w in range(4):
        for off, data in writer_ranges(w):
            f.seek(off); f.write(data)
    for off, data in qemu_ranges():
        f.seek(off); f.write(data)
PY

"$NBDKIT" -U - --filter=cow --filter=delay file "$tmpdir/disk" delay-read=2ms \
    --run '
  pids=
  for w in 0 1 2 3; do
    W=$w nbdsh -u "$uri" -c - <"$tmpdir/writer.py" &
    pids="$pids $!"
  done
  qemu-io -f raw "$uri" <"$tmpdir/qemu-io.cmds" >"$tmpdir/qemu-io.out" &
  pids="$pids $!"
  nbdcopy "$uri" null: &
  pids="$pids $!"
  status=0
  for p in $pids; do wait $p || status=1; done
  [ $status = 0 ] && nbdcopy "$uri" "$tmpdir/result"
' 2>"$tmpdir/log" || fail "the concurrent clients failed: $(tail -20 "$tmpdir/log")"

grep -q "wrote" "$tmpdir/qemu-io.out" || fail "qemu-io wrote nothing"
cmp "$tmpdir/result" "$tmpdir/expected" ||
  fail "concurrent writes through the overlay lost or mixed up data"
[ "$(sha256sum <"$tmpdir/disk")" = "$sum_before" ] ||
  fail "the file under the cow filter was changed"

echo "$0: ok"
