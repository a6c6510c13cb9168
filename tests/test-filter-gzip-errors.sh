#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The gzip filter refuses what gzip -d refuses: a file that is not
# gzip, an empty file, a truncated file and a corrupt one.  The client
# is refused with the reason in the log (never served wrong data), and
# after the file is fixed the next client of the same server is served.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires gzip --version
requires nbdinfo --version
requires nbdcopy --version
requires_plugin file
requires_filter gzip
make_tmpdir
export tmpdir

yes "gzip errors" | head -c 3M >"$tmpdir/data"
head -c 1M /dev/urandom >>"$tmpdir/data"
gzip -c "$tmpdir/data" >"$tmpdir/good.gz"

refused ()
{
  local file=$1 pattern=$2
  "$NBDKIT" -U - --filter=gzip file "$file" \
      --run 'nbdinfo --size "$uri"' >"$tmpdir/out" 2>"$tmpdir/err" &&
    fail "$file was served: $(cat "$tmpdir/out")"
  grep -q "$pattern" "$tmpdir/err" ||
    fail "$file: expected '$pattern' in: $(cat "$tmpdir/err")"
}
refused "$tmpdir/data" "not a gzip file"
: >"$tmpdir/empty"
refused "$tmpdir/empty" "truncated"
head -c 200000 "$tmpdir/good.gz" >"$tmpdir/short.gz"
refused "$tmpdir/short.gz" "truncated"
# Flip a byte in the compressed data: inflate or the CRC32 catches it.
cp "$tmpdir/good.gz" "$tmpdir/bad.gz"
printf '\x55' | dd of="$tmpdir/bad.gz" bs=1 seek=20000 conv=notrunc \
  status=none
gzip -t "$tmpdir/bad.gz" 2>/dev/null && fail "gzip -t should refuse bad.gz"
refused "$tmpdir/bad.gz" "corrupt"

# The failure is not remembered: fix the file, and the next connection
# to the same server decompresses it.
cp "$tmpdir/short.gz" "$tmpdir/fixme.gz"
start_nbdkit -P "$tmpdir/pid" -U "$tmpdir/sock" --filter=gzip \
  file "$tmpdir/fixme.gz"
uri="nbd+unix:///?socket=$tmpdir/sock"
nbdinfo --size "$uri" >/dev/null 2>&1 && fail "the truncated file was served"
cp "$tmpdir/good.gz" "$tmpdir/fixme.gz"
nbdcopy "$uri" "$tmpdir/out" || fail "the fixed file was not served"
cmp "$tmpdir/data" "$tmpdir/out" || fail "the fixed file: wrong data"

# The filter has no parameters: unknown keys go to the plugin, which
# refuses them.
"$NBDKIT" -U - --filter=gzip file "$tmpdir/good.gz" gzip-level=3 \
    --run true 2>"$tmpdir/err"
r=$?
[ $r = 1 ] || fail "an unknown parameter: exit status $r, expected 1"
grep -q "gzip-level" "$tmpdir/err" ||
  fail "the message does not name gzip-level: $(cat "$tmpdir/err")"
