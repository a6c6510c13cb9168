#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# What the cache filter keeps, seen by changing the file underneath
# behind its back (a cached block still reads the old data):
# cache-on-read=false keeps nothing read, true keeps what is read,
# /PATH keeps it only while PATH exists; a cache (prefetch) request
# keeps the range whatever cache-on-read says; and block status shows
# data for dirty blocks over a hole in the file.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin file
requires_filter cache
make_tmpdir
export tmpdir
export TMPDIR=$tmpdir

# The python run by each client: OLD is read (or prefetched), the file
# is changed under the server, and the block is read again.
cat >"$tmpdir/stale.py" <<'PY'
import os
path = os.environ["tmpdir"] + "/disk"
def change_file(off, byte):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(bytes([byte]) * 65536)
def cached_after(op, off):
    """Do OP on the block at OFF, change the file, say if it was kept."""
    op(off)
    change_file(off, 0x99)
    return h.pread(65536, off) != b"\x99" * 65536
read = lambda off: h.pread(65536, off)
prefetch = lambda off: h.cache(65536, off)
switch = os.environ["tmpdir"] + "/switch"
exec(os.environ["checks"])
PY

run ()
{
  local checks=$1; shift
  head -c $(( 4 << 20 )) /dev/urandom >"$tmpdir/disk"
  rm -f "$tmpdir/switch"
  checks=$checks "$NBDKIT" -U - --filter=cache file "$tmpdir/disk" "$@" \
    --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/stale.py"' \
    2>"$tmpdir/log" ||
    fail "$*: $(tail -5 "$tmpdir/log")"
}

run '
assert not cached_after(read, 0), "a read was cached"
assert cached_after(prefetch, 65536), "a cache request did not cache"
' cache-on-read=false

run '
assert cached_after(read, 0), "a read was not cached"
assert cached_after(read, 65536 * 5), "a read was not cached"
' cache-on-read=true

run '
assert not cached_after(read, 0), "a read was cached without the switch"
open(switch, "w").close()
assert cached_after(read, 65536), "a read was not cached with the switch"
os.unlink(switch)
assert not cached_after(read, 65536 * 2), "a read was cached after the switch"
' cache-on-read="$tmpdir/switch"

# Dirty blocks over a hole are data in block status; after the flush
# the file has them and still says so.
truncate -s 0 "$tmpdir/hole"
truncate -s 1M "$tmpdir/hole"
"$NBDKIT" -U - --filter=cache file "$tmpdir/hole" cache=writeback --run '
  nbdsh --base-allocation -u "$uri" -c "
def status(off):
    seen = []
    h.block_status(65536, off, lambda m, o, e, err: seen.extend(e))
    return seen[1]
assert status(0) & nbd.STATE_HOLE, \"the sparse file has no hole\"
h.pwrite(b\"d\" * 100, 65536 + 10)
assert status(65536) & (nbd.STATE_HOLE | nbd.STATE_ZERO) == 0, \
    \"a dirty block is reported as a hole\"
h.flush()
assert status(65536) & nbd.STATE_ZERO == 0
assert h.pread(100, 65546) == b\"d\" * 100
"' || fail "block status of dirty blocks is wrong"

echo "$0: ok"
