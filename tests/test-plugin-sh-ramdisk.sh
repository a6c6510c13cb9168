#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The sh plugin serving a disk kept in a file in $tmpdir: data written
# with nbdsh and qemu-img reads back intact (unaligned writes, zero with
# and without may_trim, trim, FUA, flush, extents of the holes), with
# the script given as a file, on standard input (-) and as a #! script
# run directly.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires qemu-img --version
requires dd --version
requires fallocate --version
requires_plugin sh
make_tmpdir
export tmpdir

# The disk lives in the plugin's own $tmpdir; "tmpdir" in this test's
# environment must not leak into it.
cat >"$tmpdir/ramdisk.sh" <<'SH'
#!/usr/bin/env bash
f=$tmpdir/disk
case "$1" in
  get_ready) truncate -s 8M "$f" ;;
  thread_model) echo parallel ;;
  get_size) stat -c %s "$f" ;;
  can_write|can_flush|can_trim|can_zero|can_extents|can_multi_conn) exit 0 ;;
  can_fua) echo native ;;
  pread) dd if="$f" skip=$4 count=$3 iflag=skip_bytes,count_bytes \
            status=none ;;
  pwrite) dd of="$f" seek=$4 conv=notrunc oflag=seek_bytes status=none ;;
  flush) sync "$f" ;;
  trim) fallocate -p -o $4 -l $3 "$f" ;;
  zero) case ",$5," in
          *,may_trim,*) fallocate -p -o $4 -l $3 "$f" ;;
          *) fallocate -z -o $4 -l $3 "$f" ;;
        esac ;;
  extents)
    # One extent: the whole request, data or hole by its contents.
    if cmp -s -n $3 <(dd if="$f" skip=$4 count=$3 \
                         iflag=skip_bytes,count_bytes status=none) \
                 /dev/zero
    then echo "$4 $3 hole,zero"
    else echo "$4 $3"
    fi ;;
  *) exit 2 ;;
esac
SH
chmod +x "$tmpdir/ramdisk.sh"

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
check(0, size)
# A write the size of a large request, through pipes of 64K.
write(os.urandom(4 * M), 2 * M, nbd.CMD_FLAG_FUA)
h.flush()
check(0, size)

h.zero(65536, 65536)
model[65536:131072] = bytes(65536)
h.zero(4096, 3 * M, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA)
model[3 * M:3 * M + 4096] = bytes(4096)
h.trim(M, 7 * M)
model[7 * M:8 * M] = bytes(M)
check(0, size)

# Extents: a trimmed megabyte reads as a hole.
seen = []
h.block_status(M, 7 * M, lambda ctx, off, ents, err: seen.extend(ents))
assert seen[0] == M and seen[1] & 3 == 3, seen
h.block_status(M, 2 * M, lambda ctx, off, ents, err: seen.extend(ents))
assert seen[3] == 0, seen
PY

# The script as a file.
"$NBDKIT" -U - sh "$tmpdir/ramdisk.sh" \
  --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/t.py"' ||
  fail "nbdsh checks through the sh plugin failed"

# qemu-img: copy an image in and back out, then compare.
head -c 6M /dev/urandom >"$tmpdir/in"
dd if=/dev/zero of="$tmpdir/in" bs=1M seek=2 count=1 conv=notrunc status=none
truncate -s 8M "$tmpdir/in"
"$NBDKIT" -U - sh "$tmpdir/ramdisk.sh" --run '
  qemu-img convert -n -f raw -O raw "$tmpdir/in" "$uri" &&
  qemu-img convert -f raw -O raw "$uri" "$tmpdir/out" &&
  qemu-img compare -f raw -F raw "$tmpdir/in" "$uri"
' >/dev/null || fail "qemu-img through the sh plugin failed"
cmp "$tmpdir/in" "$tmpdir/out" || fail "qemu-img read back different data"

# The script on standard input (-): no #! needed, /bin/sh runs it.
size=$("$NBDKIT" -U - sh - --run 'nbdinfo --size "$uri"' <<'SH'
case "$1" in
  get_size) echo 3M ;;
  pread) head -c $3 /dev/zero ;;
  *) exit 2 ;;
esac
SH
) || fail "script on stdin failed"
[ "$size" = 3145728 ] || fail "script on stdin: size $size, expected 3145728"

# script=- with -s: stdin belongs to the client.
if "$NBDKIT" -s sh - </dev/null 2>"$tmpdir/err"; then
  fail "script=- with -s was accepted"
fi
grep -q 'standard input' "$tmpdir/err" || fail "no clear -s error: $(cat "$tmpdir/err")"

# A #! script naming this nbdkit, run directly with nbdkit options (the
# plugin runs it with /bin/sh rather than starting nbdkit again).
cat >"$tmpdir/direct" <<SH
#!$NBDKIT sh
SH
cat >>"$tmpdir/direct" <<'SH'
case "$1" in
  get_size) echo 1M ;;
  pread) head -c $3 /dev/zero | tr '\0' 'x' ;;
  *) exit 2 ;;
esac
SH
chmod +x "$tmpdir/direct"
out=$("$tmpdir/direct" -U - --run 'nbdsh -u "$uri" -c "print(h.pread(4, 10).decode())"') ||
  fail "the #! script run directly failed"
[ "$out" = xxxx ] || fail "the #! script read back '$out', expected xxxx"
echo "$0: ok"
