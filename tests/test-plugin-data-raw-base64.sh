#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The data plugin's raw= and base64= parameters serve exactly the bytes
# given (base64 with and without padding and whitespace), and size=
# truncates or extends them with zeroes.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires nbdinfo --version
requires_plugin data
make_tmpdir
export tmpdir

# check EXPECTED PARAMS...: the disk must be the bytes printf EXPECTED
# prints.
check ()
{
  local expected=$1
  shift
  rm -f "$tmpdir/actual"
  # shellcheck disable=SC2059
  printf "$expected" >"$tmpdir/expected"
  "$NBDKIT" -U - data "$@" --run 'nbdcopy "$uri" "$tmpdir/actual"' ||
    fail "data $*: nbdkit or nbdcopy failed"
  [ -f "$tmpdir/actual" ] || : >"$tmpdir/actual"
  cmp "$tmpdir/actual" "$tmpdir/expected" || {
    od -An -tx1 "$tmpdir/actual" >&2
    fail "data $*: wrong contents (expected $expected)"
  }
}

check 'Hello, world!' raw='Hello, world!'
check 'hello\0\0\0' raw=hello size=8
check 'hel' raw=hello size=3
check '\x01\x02 \xff' raw="$(printf '\x01\x02 \xff')"

check 'hello' base64=aGVsbG8=
check 'hello' base64='aGVs bG8='
check 'hel' base64=aGVsbG8= size=3
check '123\0\0' base64=MTIz size=5
check '\x00\x01\x02\xfd\xfe\xff' base64=AAEC/f7/
check '\xfb\xff' base64=+/8=

# The size and the bytes of a large sparse disk made from a few bytes.
size=$("$NBDKIT" -U - data base64=MTIz size=1M --run 'nbdinfo --size "$uri"') ||
  fail "base64=MTIz size=1M failed"
[ "$size" = 1048576 ] || fail "base64=MTIz size=1M: size $size"
"$NBDKIT" -U - data base64=MTIz size=1M \
  --run 'nbdcopy "$uri" "$tmpdir/actual"' || fail "nbdcopy failed"
{ printf '123'; head -c $(( 1048576 - 3 )) /dev/zero; } >"$tmpdir/expected"
cmp "$tmpdir/actual" "$tmpdir/expected" || fail "base64 size=1M: wrong contents"

# The plugin says it supports base64.
"$NBDKIT" data --dump-plugin | grep -qx 'data_base64=yes' ||
  fail "--dump-plugin does not print data_base64=yes"

# qemu-img reads the same bytes.
if qemu-img --version >/dev/null 2>&1; then
  rm -f "$tmpdir/actual"
  "$NBDKIT" -U - data base64=MTIz size=1M \
    --run 'qemu-img convert -f raw -O raw "$uri" "$tmpdir/actual"' ||
    fail "qemu-img convert failed"
  cmp "$tmpdir/actual" "$tmpdir/expected" ||
    fail "qemu-img read different bytes"
else
  echo "$0: qemu-img not found, skipping that part"
fi
