#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# What is written is what is read back: random data copied in and out of
# memory and file exports with nbdcopy and qemu-img (sha256 compared);
# FUA writes, flush, trim and zero (plain, NO_HOLE, FAST_ZERO) read back
# correctly; qemu-io pattern writes verify.

source "$srcdir/functions.sh"
requires nbdsh --version
requires nbdcopy --version
requires sha256sum --version
requires_plugin memory

make_tmpdir
src="$tmpdir/src.img"
out="$tmpdir/out.img"
size=$((8 * 1024 * 1024))
head -c "$size" /dev/urandom >"$src"
# Leave some zero holes in the source so sparse copying paths are used.
dd if=/dev/zero of="$src" bs=65536 seek=20 count=16 conv=notrunc status=none
dd if=/dev/zero of="$src" bs=65536 seek=100 count=3 conv=notrunc status=none
want=$(sha256sum <"$src" | cut -d' ' -f1)

check_out ()
{
  local got
  got=$(sha256sum <"$out" | cut -d' ' -f1)
  [ "$got" = "$want" ] || fail "$1: sha256 $got differs from source $want"
  echo "ok: $1"
}

# --- nbdcopy in and out of memory, single and multiple connections ---
for conns in 1 4; do
  rm -f "$out"
  "$NBDKIT" -U - memory "$size" --run '
    nbdcopy --connections='"$conns"' "'"$src"'" "$uri" &&
    nbdcopy --connections='"$conns"' "$uri" "'"$out"'"
  ' || fail "nbdcopy memory (connections=$conns) failed"
  check_out "nbdcopy memory connections=$conns"
done

# --- qemu-img convert in and out of memory ---
if qemu-img --version >/dev/null 2>&1; then
  rm -f "$out"
  "$NBDKIT" -U - memory "$size" --run '
    qemu-img convert -n -f raw -O raw "'"$src"'" "$uri" &&
    qemu-img convert -f raw -O raw "$uri" "'"$out"'"
  ' || fail "qemu-img convert memory failed"
  check_out "qemu-img convert memory"
else
  echo "$0: qemu-img not installed, skipping that part"
fi

# --- file plugin: the backing file itself ends up identical ---
if "$NBDKIT" file --dump-plugin >/dev/null 2>&1; then
  disk="$tmpdir/disk.img"
  truncate -s "$size" "$disk"
  rm -f "$out"
  "$NBDKIT" -U - file "$disk" --run '
    nbdcopy "'"$src"'" "$uri" && nbdcopy "$uri" "'"$out"'"
  ' || fail "nbdcopy file failed"
  check_out "nbdcopy file (read back)"
  cp "$disk" "$out"
  check_out "nbdcopy file (backing file)"
  if qemu-img --version >/dev/null 2>&1; then
    truncate -s 0 "$disk"; truncate -s "$size" "$disk"
    "$NBDKIT" -U - file "$disk" --run '
      qemu-img convert -n -f raw -O raw "'"$src"'" "$uri"
    ' || fail "qemu-img convert to file export failed"
    cp "$disk" "$out"
    check_out "qemu-img convert file (backing file)"
  fi
else
  echo "$0: file plugin not available, skipping that part"
fi

# --- individual commands through nbdsh ---
"$NBDKIT" -U - memory 4M --run '
  nbdsh -u "$uri" -c "
import os, errno
K = 1024
SIZE = 4 * K * K
shadow = bytearray(SIZE)

def write(off, data, flags=0):
    h.pwrite(data, off, flags)
    shadow[off:off + len(data)] = data

def zero(off, n, flags=0):
    h.zero(n, off, flags)
    shadow[off:off + n] = bytes(n)

def verify(what):
    assert h.pread(SIZE, 0) == bytes(shadow), \"contents wrong after \" + what

assert h.can_fua() and h.can_flush() and h.can_trim() and h.can_zero()

# Plain, FUA and unaligned writes, including single bytes and the last byte.
write(0, os.urandom(1024 * K))
write(1024 * K, os.urandom(512 * K), nbd.CMD_FLAG_FUA)
write(12345, os.urandom(77777))
write(SIZE - 1, b\"\\xfe\")
write(3 * K * K + 1, b\"\\x01\")
verify(\"writes\")
h.flush()
verify(\"flush\")

# Zeroing, plain and with NO_HOLE, FUA, unaligned.
zero(4096, 65536)
zero(200 * K + 3, 10000, nbd.CMD_FLAG_NO_HOLE)
zero(300 * K, 4096, nbd.CMD_FLAG_FUA)
verify(\"zero\")

# FAST_ZERO either succeeds and zeroes, or fails fast with ENOTSUP and
# leaves the data alone.
if h.can_fast_zero():
    write(600 * K, os.urandom(65536))
    try:
        zero(600 * K, 65536, nbd.CMD_FLAG_FAST_ZERO)
    except nbd.Error as e:
        assert e.errnum == errno.ENOTSUP, e
    verify(\"fast zero\")

# Trim: afterwards the range is unspecified until rewritten, but it must
# not disturb neighbouring bytes; rewriting it must work.
before = h.pread(4096, 1024 * K - 4096)
after = h.pread(4096, 1536 * K)
h.trim(512 * K, 1024 * K)
assert h.pread(4096, 1024 * K - 4096) == before
assert h.pread(4096, 1536 * K) == after
write(1024 * K, os.urandom(512 * K))
assert h.pread(512 * K, 1024 * K) == bytes(shadow[1024 * K:1536 * K])
h.trim(65536, 2 * K * K, nbd.CMD_FLAG_FUA)
write(2 * K * K, b\"\\x00\" * 65536)
verify(\"trim then rewrite\")

# One maximum-size request each way (32M is the portable maximum, the
# export is smaller so use the whole export).
big = os.urandom(SIZE)
write(0, big)
verify(\"whole-export write\")
"
' || fail "nbdsh data integrity checks failed"

# --- qemu-io ---
if qemu-io --version >/dev/null 2>&1; then
  "$NBDKIT" -U - memory 1M --run '
    qemu-io -f raw "$uri" \
      -c "write -P 0xab 0 64k" -c "read -P 0xab 0 64k" \
      -c "write -P 0xcd 100000 3000" -c "read -P 0xcd 100000 3000" \
      -c "write -z 8k 4k" -c "read -P 0 8k 4k" -c "read -P 0xab 0 8k" \
      -c "write -z -u 16k 16k" -c "read -P 0 16k 16k" \
      -c "write -f -P 0x11 512k 64k" -c "read -P 0x11 512k 64k" \
      -c "flush" -c "discard 512k 64k" -c "read -P 0 1040000 8576"
  ' >"$tmpdir/qemu-io.out" 2>&1 || fail "qemu-io failed: $(cat "$tmpdir/qemu-io.out")"
  if grep -qi 'fail\|error\|mismatch' "$tmpdir/qemu-io.out"; then
    fail "qemu-io reported a problem: $(cat "$tmpdir/qemu-io.out")"
  fi
  echo "ok: qemu-io"
else
  echo "$0: qemu-io not installed, skipping that part"
fi

echo "$0: ok"
