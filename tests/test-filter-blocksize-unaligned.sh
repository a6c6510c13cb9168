#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The blocksize filter with minblock=4k maxdata=16k maxlen=64k over a
# file whose size is not a multiple of 4k.  Clients (qemu-io, then
# nbdsh) send unaligned and oversized reads, writes, zeroes, trims,
# prefetches and block status requests; a model of the disk predicts
# every byte, and the file underneath is compared with it by checksum.
# The log filter below shows that the file plugin only ever saw aligned
# requests within the limits.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires qemu-io --version
requires nbdsh --version
requires nbdinfo --version
requires sha256sum --version
requires_plugin file
requires_filter blocksize
requires_filter log
make_tmpdir
export tmpdir

disk=$tmpdir/disk.img
size=$(( 1024 * 1024 + 1000 ))
head -c "$size" /dev/urandom >"$disk"
cp "$disk" "$tmpdir/model"
export disk

sock=$tmpdir/sock
uri="nbd+unix:///?socket=$sock"
start_nbdkit -P "$tmpdir/pid" -U "$sock" \
  --filter=blocksize --filter=log file "$disk" \
  minblock=4k maxdata=16k maxlen=64k logfile="$tmpdir/log"

# The size is rounded down to minblock; any alignment is accepted.
nbdinfo "$uri" >"$tmpdir/info" || fail "nbdinfo failed"
grep -q "export-size: 1048576\b" "$tmpdir/info" ||
  fail "size not rounded down to 4k: $(grep size "$tmpdir/info")"
grep -q "block_size_minimum: 1$" "$tmpdir/info" ||
  fail "the minimum block size advertised should be 1"
grep -q "block_size_preferred: 4096$" "$tmpdir/info" ||
  fail "the preferred block size advertised should be 4096"

# Apply the same changes to the model (python) as qemu-io makes.
model ()
{
  python3 - "$tmpdir/model" "$@" <<'PY'
import sys
path, op, off, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(path, "r+b") as f:
    f.seek(off)
    f.write((bytes([int(sys.argv[5], 0)]) if op == "write" else b"\0") * n)
PY
}
qio ()
{
  qemu-io -f raw "$uri" -c "$*" >"$tmpdir/qio" 2>&1 ||
    fail "qemu-io $*: $(cat "$tmpdir/qio")"
  if grep -qi "error\|fail" "$tmpdir/qio"; then
    fail "qemu-io $*: $(cat "$tmpdir/qio")"
  fi
}
# Inside one block, across two, across many (larger than maxdata), at
# the very start and end, and zeroes with unaligned edges.
for w in "1 1 0x41" "4095 2 0x42" "5000 9000 0x43" "70001 50000 0x44" \
         "0 3 0x45" "1048570 6 0x46" "200000 1 0x47"; do
  read -r off n pat <<<"$w"
  qio "write -P $pat $off $n"
  model write "$off" "$n" "$pat"
done
for z in "300001 70000" "4097 3" "1048575 1"; do
  read -r off n <<<"$z"
  qio "write -z $off $n"
  model zero "$off" "$n"
done
qio "read -P 0x44 70001 50000"
qio "read -P 0x45 0 3"

# nbdsh: reads of every alignment against the model, a trim with
# unaligned edges (the file plugin punches the whole blocks inside:
# they read back as zeroes, the edges keep their data), prefetch and
# block status.
nbdsh --base-allocation -u "$uri" -c "
import random
model = bytearray(open(\"$tmpdir/model\", \"rb\").read())
size = h.get_size()
r = random.Random(5)
for i in range(300):
    off = r.randint(0, size - 1)
    n = min(r.randint(1, 100000), size - off)
    assert h.pread(n, off) == model[off:off+n], (\"read\", off, n)
assert h.pread(size, 0) == model[:size]
h.trim(20000, 500001)
model[ 503808:516096] = bytes(516096 - 503808)
h.cache(12345, 99)
h.flush()
assert h.pread(size, 0) == model[:size]
seen = []
h.block_status(100000, 10, lambda ctx, off, es, err: seen.extend(es))
# At most maxlen per answer, ending on a block boundary.
assert 0 < sum(seen[0::2]) <= 65536 and (10 + sum(seen[0::2])) % 4096 == 0, seen
open(\"$tmpdir/model\", \"wb\").write(model)
" || fail "nbdsh checks failed"

kill_pid "$(cat "$tmpdir/pid")"

# The file underneath is exactly the model, including the 1000 bytes
# past the served size that nobody could reach.
[ "$(sha256sum <"$disk")" = "$(sha256sum <"$tmpdir/model")" ] ||
  fail "the file underneath differs from the model"

# Only aligned requests within the limits reached the plugin.
python3 - "$tmpdir/log" <<'PY' || fail "the plugin saw a request it should not"
import re, sys
limits = {"Read": 16384, "Write": 16384, "Zero": 65536, "Trim": 65536,
          "Cache": 65536, "Extents": 65536}
seen = set()
for line in open(sys.argv[1]):
    m = re.search(r" (\w+) id=\d+ offset=(0x[0-9a-f]+) count=(0x[0-9a-f]+)", line)
    if not m:
        continue
    op, off, n = m.group(1), int(m.group(2), 16), int(m.group(3), 16)
    seen.add(op)
    assert off % 4096 == 0 and n % 4096 == 0, line
    assert n <= limits[op], line
for op in limits:
    assert op in seen, "no %s request reached the plugin" % op
PY
