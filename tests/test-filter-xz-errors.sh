#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# What the xz filter refuses: a file compressed as one big block (the
# message says to recompress with xz --block-size), a block over
# xz-max-block, something that is not xz, a truncated file; a corrupt
# block gives a read error, never wrong data; bad parameters stop the
# server with exit status 1 and a message naming the parameter.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires xz --version
requires nbdinfo --version
requires nbdcopy --version
requires nbdsh --version
requires_plugin file
requires_filter xz
make_tmpdir
export tmpdir

# 4 MiB of text; xz on one thread writes it as a single block.
yes "single block" | head -c 4M >"$tmpdir/data"
xz --keep -0 -T1 "$tmpdir/data" || fail "xz failed"
[ "$(xz --robot --list "$tmpdir/data.xz" |
       awk '$1 == "totals" { print $3 }')" = 1 ] ||
  fail "expected xz to write a single block"

# Refused: the client cannot open the export and the log explains.
refused ()
{
  local file=$1 pattern=$2; shift 2
  "$NBDKIT" -U - --filter=xz file "$file" "$@" \
      --run 'nbdinfo --size "$uri"' >"$tmpdir/out" 2>"$tmpdir/err" &&
    fail "$file $*: the export was served: $(cat "$tmpdir/out")"
  grep -q -- "$pattern" "$tmpdir/err" ||
    fail "$file $*: expected '$pattern' in: $(cat "$tmpdir/err")"
}

# One block larger than xz-max-block: the advice to recompress.
refused "$tmpdir/data.xz" "single block of 4194304 bytes" xz-max-block=1M
refused "$tmpdir/data.xz" "xz --block-size=16777216" xz-max-block=1M
refused "$tmpdir/data.xz" "xz-max-block=4194303" xz-max-block=4194303
# Exactly xz-max-block is allowed, and so is the default (512M).
for args in xz-max-block=4M ""; do
  # shellcheck disable=SC2086
  "$NBDKIT" -U - --filter=xz file "$tmpdir/data.xz" $args \
      --run 'nbdcopy "$uri" "$tmpdir/out"' ||
    fail "'$args': the single-block file should be served"
  cmp "$tmpdir/data" "$tmpdir/out" || fail "'$args': wrong data"
done

# Several blocks, one of them too large.
xz -dc "$tmpdir/data.xz" | xz -0 --block-size=3MiB >"$tmpdir/two.xz"
refused "$tmpdir/two.xz" "block 1 is 3145728 bytes.*xz-max-block=2097152" \
  xz-max-block=2M

# Not xz at all, empty, truncated.
refused "$tmpdir/data" "not an xz file"
: >"$tmpdir/empty"
refused "$tmpdir/empty" "not an xz file"
head -c -100 "$tmpdir/two.xz" >"$tmpdir/short.xz"
refused "$tmpdir/short.xz" "not an xz file"

# A corrupt byte inside the second block's compressed data: reads of
# that block fail (its CRC64 catches it), the first block is still
# served correctly, and the log says the file is corrupt.
yes "corrupt me" | head -c 2M >"$tmpdir/c"
xz --keep -0 --block-size=1MiB "$tmpdir/c" || fail "xz failed"
# xz --list -vv: "block STREAM BLOCK_IN_STREAM BLOCK COMPRESSED_OFFSET
# UNCOMPRESSED_OFFSET TOTAL_SIZE ..."; corrupt the middle of block 2.
pos=$(xz --robot --list -vv "$tmpdir/c.xz" |
        awk '$1 == "block" && $4 == 2 { print $5 + int($7 / 2) }')
[ -n "$pos" ] || fail "xz --list did not show block 2"
printf '\xff' | dd of="$tmpdir/c.xz" bs=1 seek="$pos" conv=notrunc \
  status=none
xz -t "$tmpdir/c.xz" 2>/dev/null && fail "xz -t should find the corruption"
# With one cached block, block 1 is decompressed again after the
# failure, by the decoder that failed.
"$NBDKIT" -U - --filter=xz file "$tmpdir/c.xz" xz-max-depth=1 \
    --run 'nbdsh -u "$uri" -c "
want = open(\"$tmpdir/c\", \"rb\").read()
assert h.pread(1024 * 1024, 0) == want[:1024 * 1024]
for i in range(2):
    try:
        h.pread(4096, 1024 * 1024 + 8192)
    except nbd.Error:
        pass
    else:
        raise SystemExit(\"a corrupt block was read without error\")
    assert h.pread(1024 * 1024, 0) == want[:1024 * 1024]
"' 2>"$tmpdir/err" || fail "corrupt block: $(cat "$tmpdir/err")"
grep -q "block 2 .*corrupt file" "$tmpdir/err" ||
  fail "corrupt block: the log does not say so: $(cat "$tmpdir/err")"

# Configuration errors.
for args in xz-max-block=abc xz-max-block=0 xz-max-depth=0 \
            xz-max-depth=x xz-max-depth=-1; do
  key=${args%%=*}
  "$NBDKIT" -U - --filter=xz file "$tmpdir/data.xz" "$args" --run true \
      2>"$tmpdir/err"
  r=$?
  [ $r = 1 ] || fail "$args: exit status $r, expected 1"
  grep -q "$key" "$tmpdir/err" ||
    fail "$args: the message does not name $key: $(cat "$tmpdir/err")"
done
