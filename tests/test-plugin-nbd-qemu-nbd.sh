#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkit nbd -> qemu-nbd serving a qcow2 file, started by the plugin
# (command= with socket activation), as in the man page example:
#   nbdkit nbd command=qemu-nbd arg=-f arg=qcow2 arg="$PWD/disk.qcow2"
# Writes through nbdkit land in the qcow2 file (checked with qemu-img
# after nbdkit has exited and stopped qemu-nbd); qemu-nbd's flags and
# zero/trim/block status pass through; a background nbdkit (which
# changes directory to /) works with an absolute path; and with
# nbdkit-partition-filter on top, partition 1 of a qcow2 disk is served.
# Also qemu-nbd as a separately started server on a Unix socket.

source "$srcdir/functions.sh"
source "$srcdir/test-plugin-nbd-helpers.bash"
requires qemu-nbd --version
requires qemu-img --version
requires nbdsh --version
requires nbdcopy --version
requires_plugin nbd

make_tmpdir
cd "$tmpdir"
export tmpdir

qemu-img create -q -f qcow2 "$PWD/disk.qcow2" 16M ||
  fail "qemu-img create failed"
head -c 16777216 /dev/urandom >in.raw
# A hole in the middle, so block status has something to show.
dd if=/dev/zero of=in.raw bs=1M seek=4 count=4 conv=notrunc status=none

# The seed's example, captive: copy in, check flags, then zero and trim.
"$NBDKIT" -U - nbd command=qemu-nbd arg=-f arg=qcow2 arg="$PWD/disk.qcow2" \
  --run '
  set -e
  [ "$(nbdinfo --size "$uri")" = 16777216 ]
  nbdcopy "$tmpdir/in.raw" "$uri"
  nbdsh --base-allocation -u "$uri" -c "
assert not h.is_read_only()
assert h.can_flush() and h.can_trim() and h.can_zero()
assert h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h.zero(65536, 0)
h.flush()
assert h.pread(65536, 0) == bytes(65536)
# Block status through the proxy: the zeroed hole at 4 MiB is not data.
seen = []
def cb(ctx, off, ents, err):
    if ctx == nbd.CONTEXT_BASE_ALLOCATION:
        seen.extend(ents)
h.block_status(4 << 20, 4 << 20, cb)
assert seen and seen[1] & nbd.STATE_ZERO, seen
"
' || fail "captive nbdkit nbd command=qemu-nbd failed"
dd if=/dev/zero of=in.raw bs=65536 count=1 conv=notrunc status=none

# nbdkit has exited, so qemu-nbd has closed the image: check it directly.
pgrep -f "qemu-nbd.*$tmpdir/disk.qcow2" >/dev/null &&
  fail "qemu-nbd is still running after nbdkit exited"
qemu-img check -q disk.qcow2 || fail "the qcow2 file is damaged"
qemu-img convert -f qcow2 -O raw disk.qcow2 out.raw ||
  fail "qemu-img convert failed"
cmp in.raw out.raw || fail "the qcow2 file does not hold what was written"

# In the background (nbdkit forks and changes to /) with an absolute path.
start_nbdkit -P "$tmpdir/bg.pid" -U "$tmpdir/bg.sock" \
  nbd command=qemu-nbd arg=-f arg=qcow2 arg="$PWD/disk.qcow2"
nbdcopy "nbd+unix:///?socket=$tmpdir/bg.sock" bg.raw ||
  fail "reading through a background nbdkit failed"
cmp in.raw bg.raw || fail "a background nbdkit read the wrong data"
kill_pid "$(cat bg.pid)"

# qemu-nbd started separately, on a Unix socket, with an export name
# and a description.
qemu-nbd -f qcow2 -t -k "$tmpdir/q.sock" -x disk -D "my qcow2 disk" \
  --pid-file="$tmpdir/q.pid" disk.qcow2 &
wait_for_path "$tmpdir/q.pid"
cleanup_fn kill_pid "$(cat "$tmpdir/q.pid")"
wait_for_path "$tmpdir/q.sock"
"$NBDKIT" -U - nbd socket="$tmpdir/q.sock" export=disk --run '
  nbdinfo --json "$uri" >"$tmpdir/info.json" &&
  nbdcopy "$uri" "$tmpdir/sock.raw"
' || fail "nbdkit nbd socket= to qemu-nbd failed"
cmp in.raw sock.raw || fail "wrong data from qemu-nbd on a socket"
grep -q '"description": "my qcow2 disk"' info.json ||
  fail "the export description did not pass through: $(cat info.json)"
kill_pid "$(cat "$tmpdir/q.pid")"

# nbdkit-partition-filter on top (the qemu-nbd -P replacement).
if ! "$NBDKIT" --filter=partition null --dump-plugin >/dev/null 2>&1; then
  echo "$0: partition filter part: SKIP (the partition filter is not built)"
  echo "$0: ok"
  exit 0
fi
requires sfdisk --version
truncate -s 16M part.raw
printf 'label: dos\nstart=2048, size=8192, type=83\nstart=10240, type=83\n' |
  sfdisk -q part.raw || fail "sfdisk failed"
head -c 4194304 /dev/urandom >p1.raw
dd if=p1.raw of=part.raw bs=512 seek=2048 conv=notrunc status=none
qemu-img convert -f raw -O qcow2 part.raw part.qcow2 ||
  fail "qemu-img convert to qcow2 failed"
"$NBDKIT" -U - --filter=partition nbd \
  command=qemu-nbd arg=-f arg=qcow2 arg="$PWD/part.qcow2" partition=1 \
  --run '
  [ "$(nbdinfo --size "$uri")" = 4194304 ] || { echo "wrong size"; exit 1; }
  nbdcopy "$uri" "$tmpdir/p1.out"
' || fail "partition filter over qemu-nbd failed"
cmp p1.raw p1.out || fail "partition 1 has the wrong contents"

echo "$0: ok"
