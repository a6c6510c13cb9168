#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The python plugin's documented example shape, a RAM disk written in
# Python: data written with nbdsh and qemu-img reads back intact (odd
# offsets, FUA, flush, zero with and without may_trim, trim, extents of
# the zeroed parts), several connections in parallel with
# THREAD_MODEL_PARALLEL (two callbacks really running at once, the GIL
# released while one blocks), and the script run directly as a #!
# script.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires qemu-img --version
requires_plugin python
make_tmpdir

cat >"$tmpdir/ramdisk.py" <<'PY'
import threading
import nbdkit

API_VERSION = 2
disk = bytearray(8 * 1024 * 1024)
lock = threading.Lock()
# Reads of the last block meet here: only two callbacks running at
# once (the GIL free while one waits) get through.
meet = threading.Barrier(2, timeout=10)

def thread_model():
    return nbdkit.THREAD_MODEL_PARALLEL

def open(readonly):
    return {"readonly": readonly}

def get_size(h):
    return len(disk)

def can_multi_conn(h):
    return True

def can_fua(h):
    return nbdkit.FUA_NATIVE

def pread(h, buf, offset, flags):
    if offset == len(disk) - 512:
        meet.wait()
    with lock:
        buf[:] = disk[offset:offset + len(buf)]

def pwrite(h, buf, offset, flags):
    with lock:
        disk[offset:offset + len(buf)] = buf

def flush(h, flags):
    pass

def trim(h, count, offset, flags):
    zero(h, count, offset, flags)

def zero(h, count, offset, flags):
    with lock:
        disk[offset:offset + count] = bytes(count)

def extents(h, count, offset, flags):
    # One extent per 64K block: zero blocks are holes.
    out = []
    end = min(offset + count, len(disk))
    while offset < end:
        n = min(65536 - offset % 65536, end - offset)
        zero = not any(disk[offset:offset + n])
        t = nbdkit.EXTENT_HOLE | nbdkit.EXTENT_ZERO if zero else 0
        out.append((offset, n, t))
        offset += n
    return out
PY

cat >"$tmpdir/t.py" <<'PY'
import os
M = 1 << 20
size = h.get_size()
assert size == 8 * M, size
assert not h.is_read_only()
assert h.can_flush() and h.can_fua() and h.can_trim() and h.can_zero()
assert h.can_multi_conn()

model = bytearray(size)
def write(buf, off, flags=0):
    h.pwrite(buf, off, flags)
    model[off:off + len(buf)] = buf
def check(off, count):
    got = h.pread(count, off)
    assert got == bytes(model[off:off + count]), "mismatch at %d+%d" % (off, count)

for off in (0, 1, 4095, 65535, 3 * M + 7):
    write(os.urandom(70001), off)
write(os.urandom(2 * M), 5 * M, nbd.CMD_FLAG_FUA)
h.flush()
check(0, size)

h.zero(65536, 65536)
model[65536:131072] = bytes(65536)
h.zero(4096, 3 * M, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA)
model[3 * M:3 * M + 4096] = bytes(4096)
h.trim(M, 7 * M)
model[7 * M:8 * M] = bytes(M)
check(0, size)

seen = []
h.block_status(M, 7 * M, lambda ctx, off, ents, err: seen.extend(ents))
assert seen[0] == M and seen[1] == 3, seen
seen = []
h.block_status(M, 5 * M, lambda ctx, off, ents, err: seen.extend(ents))
assert seen[1] == 0, seen

# Four more connections at once, each writing its own area in many
# requests in flight, then reading everything back.
hs = [nbd.NBD() for i in range(4)]
for i, c in enumerate(hs):
    c.connect_uri(os.environ["uri"])
    for j in range(16):
        buf = bytes([i * 16 + j + 1]) * 4096
        c.aio_pwrite(buf, i * M + j * 4096)
        model[i * M + j * 4096:i * M + (j + 1) * 4096] = buf
for c in hs:
    while c.aio_in_flight() > 0:
        c.poll(1)
for c in hs:
    assert c.pread(4 * M, 0) == bytes(model[0:4 * M])
# Two reads that can only finish together.
bufs = [nbd.Buffer(512), nbd.Buffer(512)]
cookies = [c.aio_pread(b, size - 512) for c, b in zip(hs, bufs)]
for c, cookie in zip(hs, cookies):
    while c.aio_in_flight() > 0:
        c.poll(1)
    assert c.aio_command_completed(cookie)
for c in hs:
    c.shutdown()
check(0, size)
PY

export tmpdir
"$NBDKIT" -U - python "$tmpdir/ramdisk.py" \
  --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "nbdsh checks through the python RAM disk failed"

# qemu-img through the script made a #! script naming this nbdkit and
# run directly: copy an image in and back out, then compare.
{ echo "#!$NBDKIT python"; cat "$tmpdir/ramdisk.py"; } >"$tmpdir/direct"
chmod +x "$tmpdir/direct"
head -c 6M /dev/urandom >"$tmpdir/in"
dd if=/dev/zero of="$tmpdir/in" bs=1M seek=2 count=1 conv=notrunc status=none
truncate -s 8M "$tmpdir/in"
"$tmpdir/direct" -U - --run '
  qemu-img convert -n -f raw -O raw "$tmpdir/in" "$uri" &&
  qemu-img convert -f raw -O raw "$uri" "$tmpdir/out" &&
  qemu-img compare -f raw -F raw "$tmpdir/in" "$uri"
' >/dev/null || fail "qemu-img through the #! python RAM disk failed"
cmp "$tmpdir/in" "$tmpdir/out" || fail "qemu-img read back different data"
echo "$0: ok"
