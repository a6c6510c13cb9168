#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cacheextents filter: qemu-img map and nbdinfo --map through it
# print exactly what they print without it; one-extent-at-a-time
# requests are answered from the kept answer (the log filter below sees
# one request where the client sent many); and after a write, zero or
# trim, on this connection or another, the map shows the change.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires qemu-img --version
requires nbdinfo --version
requires nbdsh --version
requires_plugin file
requires_filter cacheextents
requires_filter log
make_tmpdir
export tmpdir

disk=$tmpdir/disk.img
truncate -s 64M "$disk"
for mb in 1 5 9 20 33 60; do
  dd if=/dev/urandom of="$disk" bs=1M seek="$mb" count=1 conv=notrunc \
    status=none
done

map ()
{
  local out=$1; shift
  "$NBDKIT" -U - "$@" file "$disk" \
      --run 'qemu-img map -f raw --output=json "$nbd" &&
             nbdinfo --map "$uri"' >"$out" ||
    fail "map $*: failed"
}
map "$tmpdir/plain"
map "$tmpdir/cached" --filter=cacheextents
cmp "$tmpdir/plain" "$tmpdir/cached" ||
  fail "the map through cacheextents differs: $(diff "$tmpdir/plain" "$tmpdir/cached")"
grep -q '"data": true' "$tmpdir/plain" || fail "the map shows no data"

sock=$tmpdir/sock
export uri="nbd+unix:///?socket=$sock"
start_nbdkit -P "$tmpdir/pid" -U "$sock" --filter=cacheextents --filter=log \
  file "$disk" logfile="$tmpdir/log"
plugin_extents ()
{
  grep -c ' Extents id=.*count=' "$tmpdir/log"
}

# Like qemu: ask about the rest of the disk, one extent at a time.
nbdsh --base-allocation -u "$uri" -c "
M = 1 << 20
size = h.get_size()
off = 0
n = 0
while off < size:
    got = []
    h.block_status(size - off, off,
                   lambda ctx, o, es, err: got.extend(es),
                   nbd.CMD_FLAG_REQ_ONE)
    assert len(got) == 2, got
    off += got[0]
    n += 1
assert n == 13, n
" || fail "block status requests failed"
n=$(plugin_extents)
[ "$n" = 1 ] || fail "13 one-extent requests reached the plugin $n times"

nbdsh --base-allocation -u "$uri" -c "
import os
M = 1 << 20
def first(handle, off):
    got = []
    handle.block_status(65536, off, lambda ctx, o, es, err: got.extend(es),
                        nbd.CMD_FLAG_REQ_ONE)
    return got[1]
HOLE = nbd.STATE_HOLE | nbd.STATE_ZERO
assert first(h, 3 * M) == HOLE
# A write into the hole, on this connection.
h.pwrite(b'x' * 4096, 3 * M)
assert first(h, 3 * M) == 0, 'the write is not in the map'
# A trim of data, on another connection.
h2 = nbd.NBD()
h2.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
h2.connect_uri(os.environ['uri'])
assert first(h, 20 * M) == 0
assert first(h2, 20 * M) == 0
h2.trim(M, 20 * M)
h2.flush()
assert first(h, 20 * M) & nbd.STATE_HOLE, 'the trim is not in the map'
# Zeroing (with trim allowed) a data range, on this connection.
h.zero(M, 33 * M)
assert first(h, 33 * M) & nbd.STATE_ZERO, 'the zero is not in the map'
h2.shutdown()
" || fail "the kept answer hid a change"

# The map through the filter still matches the file.
kill_pid "$(cat "$tmpdir/pid")"
map "$tmpdir/plain2"
map "$tmpdir/cached2" --filter=cacheextents
cmp "$tmpdir/plain2" "$tmpdir/cached2" ||
  fail "after the changes the map differs: $(diff "$tmpdir/plain2" "$tmpdir/cached2")"
cmp -s "$tmpdir/plain" "$tmpdir/plain2" && fail "the changes did not change the map"
true
