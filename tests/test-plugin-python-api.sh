#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The python plugin's API beyond one script with every callback: an
# API_VERSION 1 script (no flags, pread returns the data, zero gets
# may_trim), a script with only the required callbacks (a read-only disk
# with no other capability), and nbdkit.disconnect and nbdkit.shutdown
# with nbdkit in the background (forked after Python started).
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin python
make_tmpdir

# API_VERSION 1: no flags, pread returns the data, zero gets may_trim.
cat >"$tmpdir/v1.py" <<'PY'
import nbdkit
disk = bytearray(65536)
def open(readonly): return None
def get_size(h): return len(disk)
def pread(h, count, offset): return disk[offset:offset + count]
def pwrite(h, buf, offset): disk[offset:offset + len(buf)] = buf
def flush(h): nbdkit.debug("v1 flush")
def zero(h, count, offset, may_trim):
    assert may_trim is True or may_trim is False
    disk[offset:offset + count] = bytes(count)
PY
"$NBDKIT" -U - python "$tmpdir/v1.py" --run 'nbdsh -u "$uri" -c "
h.pwrite(b\"v1\" * 100, 10, nbd.CMD_FLAG_FUA)
assert h.pread(200, 10) == b\"v1\" * 100
h.zero(100, 10)
h.flush()
assert h.pread(210, 0) == bytes(110) + b\"v1\" * 50
assert h.can_fua() and not h.can_trim()
"' || fail "the API_VERSION 1 script failed"

# Only the required callbacks: a read-only disk that can do nothing
# else, all data.
cat >"$tmpdir/min.py" <<'PY'
API_VERSION = 2
def open(readonly): return None
def get_size(h): return 4096
def pread(h, buf, offset, flags): buf[:] = b"m" * len(buf)
PY
"$NBDKIT" -U - python "$tmpdir/min.py" --run 'nbdsh --base-allocation -u "$uri" -c "
import errno
assert h.is_read_only()
assert not any((h.can_flush(), h.can_trim(), h.can_zero(), h.can_fua(),
                h.can_cache(), h.can_multi_conn(), h.is_rotational()))
assert h.pread(3, 100) == b\"mmm\"
try:
    h.pwrite(b\"x\", 0)
    assert False
except nbd.Error as e:
    assert e.errnum == errno.EPERM, e
ents = []
h.block_status(4096, 0, lambda ctx, off, e, err: ents.extend(e))
assert ents == [4096, 0], ents
"' || fail "the script with only the required callbacks failed"
# nbdkit.disconnect and nbdkit.shutdown, with nbdkit in the background
# (forked after the interpreter started).
cat >"$tmpdir/stop.py" <<'PY'
import nbdkit
API_VERSION = 2
def open(readonly): return None
def get_size(h): return 4096
def pread(h, buf, offset, flags):
    if offset == 512:
        nbdkit.disconnect(True)
    elif offset == 1024:
        nbdkit.shutdown()
    buf[:] = bytes(len(buf))
PY
start_nbdkit -P "$tmpdir/stop.pid" -U "$tmpdir/stop.sock" python "$tmpdir/stop.py"
pid=$(cat "$tmpdir/stop.pid")
nbdsh -u "nbd+unix:///?socket=$tmpdir/stop.sock" -c "
h.pread(512, 0)
try:
    h.pread(512, 512)
    h.pread(512, 0)
    assert False, 'still connected after nbdkit.disconnect'
except nbd.Error:
    pass
c = nbd.NBD()
c.connect_uri('nbd+unix:///?socket=$tmpdir/stop.sock')
c.pread(512, 1024)
" || fail "nbdkit.disconnect checks failed"
for (( i=0; i<100; i++ )); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
! kill -0 "$pid" 2>/dev/null || fail "nbdkit.shutdown() did not stop nbdkit"
echo "$0: ok"
