#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The truncate filter: truncate=, round-up= and round-down= give the
# expected sizes; the bytes that exist read back as the file's (checked
# against the file by checksum) and the added tail reads as zeroes and
# a hole; only zeroes may be written to the tail; bad settings stop the
# server with a message naming the parameter.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires nbdcopy --version
requires_plugin file
requires_filter truncate
make_tmpdir
export tmpdir

# A 1000 byte file.
head -c 1000 /dev/urandom >"$tmpdir/disk"

size_with ()
{
  "$NBDKIT" -U - --filter=truncate file "$tmpdir/disk" "$@" \
      --run 'nbdinfo --size "$uri"'
}
check_size ()
{
  local want=$1; shift
  local got
  got=$(size_with "$@") || fail "$*: nbdinfo failed"
  [ "$got" = "$want" ] || fail "$*: size $got, expected $want"
}
check_size 1000
check_size 1024 round-up=512
check_size 1024 round-up=1024
check_size 1000 round-up=8
check_size 512 round-down=512
check_size 992 round-down=32
# The multiple must be a power of 2 (as upstream nbdkit requires).
for bad in round-up=3 round-up=1000 round-down=3 round-down=0; do
  if "$NBDKIT" -U - --filter=truncate file "$tmpdir/disk" "$bad" \
       --run true 2>"$tmpdir/err"; then
    fail "$bad was accepted"
  fi
  grep -q "${bad%%=*}: the multiple must be" "$tmpdir/err" ||
    { cat "$tmpdir/err"; fail "$bad: unclear error"; }
done
check_size 0 round-down=1k
check_size 4096 truncate=4096
check_size 10 truncate=10
check_size 5120 truncate=4097 round-up=1k
check_size 4096 truncate=4097 round-down=1k

# Larger: the file's bytes, then zeroes.  Compare checksums of the whole
# disk against the file padded with zeroes by truncate(1).
cp "$tmpdir/disk" "$tmpdir/padded"
truncate -s 1M "$tmpdir/padded"
"$NBDKIT" -U - --filter=truncate file "$tmpdir/disk" truncate=1M \
    --run 'nbdcopy "$uri" "$tmpdir/out"' || fail "nbdcopy failed"
[ "$(md5sum <"$tmpdir/out")" = "$(md5sum <"$tmpdir/padded")" ] ||
  fail "truncate=1M: the data differs from the padded file"

# Smaller: exactly the first bytes of the file.
head -c 100 "$tmpdir/disk" >"$tmpdir/head"
"$NBDKIT" -U - --filter=truncate file "$tmpdir/disk" truncate=100 \
    --run 'nbdcopy "$uri" "$tmpdir/out"' || fail "nbdcopy failed"
[ "$(md5sum <"$tmpdir/out")" = "$(md5sum <"$tmpdir/head")" ] ||
  fail "truncate=100: the data differs from the start of the file"

# Writes: into the real part (changes the file), zeroes into the tail
# (accepted, file size unchanged), anything else into the tail (ENOSPC,
# and nothing of that request is written).
cp "$tmpdir/disk" "$tmpdir/before"
"$NBDKIT" -U - --filter=truncate file "$tmpdir/disk" round-up=4k \
    --run 'nbdsh -u "$uri" -c "
assert h.get_size() == 4096
h.pwrite(b\"\\x01\" * 10, 0)
h.pwrite(bytes(96), 1000)
h.zero(3000, 1000)
h.trim(100, 3996)
try:
    h.pwrite(b\"\\x02\" * 20, 990)
    raise AssertionError(\"a non-zero write to the tail succeeded\")
except nbd.Error as e:
    assert e.errno == \"ENOSPC\", e.errno
buf = h.pread(4096, 0)
assert buf[:10] == b\"\\x01\" * 10
assert buf[1000:] == bytes(3096)
"' || fail "writes through the filter misbehaved"
[ "$(stat -c %s "$tmpdir/disk")" = 1000 ] ||
  fail "the file changed size"
[ "$(head -c 10 "$tmpdir/disk" | od -An -tx1 | tr -d ' \n')" = \
  "01010101010101010101" ] || fail "the write to the real part is missing"
cmp -s <(tail -c +11 "$tmpdir/disk") <(tail -c +11 "$tmpdir/before") ||
  fail "the refused write changed the file"

# Block status: the tail is a hole that reads as zeroes.
map=$("$NBDKIT" -U - --filter=truncate file "$tmpdir/disk" truncate=64k \
        --run 'nbdinfo --map --json "$uri"') || fail "nbdinfo --map failed"
python3 - "$map" <<'PY' || fail "wrong block status: $map"
import json, sys
ext = json.loads(sys.argv[1])
assert sum(e["length"] for e in ext) == 65536, ext
last = ext[-1]
assert last["offset"] <= 1000 and last["type"] == 3, ext
PY

# Bad settings.
for args in "truncate=abc" "round-up=0" "round-down=x" \
            "round-up=512 round-down=512"; do
  key=${args%%=*}
  # shellcheck disable=SC2086
  "$NBDKIT" -U - --filter=truncate file "$tmpdir/disk" $args --run true \
      2>"$tmpdir/err"
  r=$?
  [ $r = 1 ] || fail "$args: exit status $r, expected 1"
  grep -q "$key" "$tmpdir/err" ||
    fail "$args: the message does not name '$key': $(cat "$tmpdir/err")"
done
