#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Concurrent unaligned writes through the blocksize filter (minblock=64k)
# do not undo each other: four nbdsh clients at once, each with many
# writes in flight, write interleaved 100-byte slots, so that every
# 64k block is read-modified-written by all of them.  Afterwards the
# file underneath holds every slot's bytes (checked with sha256sum
# against the expected image) and the bytes after the last slot are
# untouched.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires sha256sum --version
requires_plugin file
requires_filter blocksize
make_tmpdir
export tmpdir

disk=$tmpdir/disk.img
head -c 1M /dev/urandom >"$disk"
cp "$disk" "$tmpdir/expected"

# Slot i is bytes [i*100, i*100+100), written by writer i % 4 with the
# byte (i * 7 + writer) % 251 + 1.
python3 - "$tmpdir/expected" <<'PY' || fail "could not make the expected image"
import sys
with open(sys.argv[1], "r+b") as f:
    for i in range(1048576 // 100):
        f.seek(i * 100)
        f.write(bytes([(i * 7 + i % 4) % 251 + 1]) * 100)
PY

sock=$tmpdir/sock
start_nbdkit -P "$tmpdir/pid" -U "$sock" --filter=blocksize \
  file "$disk" minblock=64k
export uri="nbd+unix:///?socket=$sock"

writer ()
{
  nbdsh -u "$uri" -c "
import random
k = $1
slots = [i for i in range(1048576 // 100) if i % 4 == k]
random.Random(k).shuffle(slots)
for i in slots:
    while h.aio_in_flight() >= 32:
        h.poll(-1)
    h.aio_pwrite(bytes([(i * 7 + k) % 251 + 1]) * 100, i * 100)
while h.aio_in_flight() > 0:
    h.poll(-1)
h.flush()
"
}
pids=()
for k in 0 1 2 3; do
  writer "$k" >"$tmpdir/writer$k.log" 2>&1 &
  pids+=($!)
done
for k in 0 1 2 3; do
  wait "${pids[$k]}" || fail "writer $k failed: $(cat "$tmpdir/writer$k.log")"
done

if [ "$(sha256sum <"$disk")" != "$(sha256sum <"$tmpdir/expected")" ]; then
  cmp "$disk" "$tmpdir/expected" | head -1 >&2
  fail "concurrent unaligned writes were lost or misplaced"
fi
