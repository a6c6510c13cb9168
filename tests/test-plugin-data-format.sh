#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The data plugin's data format: every documented form (bytes in three
# bases, le/be words, strings with escapes, @ moves, groups, repeats,
# slices, names, $VAR, comments, <FILE, <(SCRIPT)) gives exactly the
# expected bytes and size, checked by copying the disk out with nbdcopy.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires nbdinfo --version
requires_plugin data
make_tmpdir
export tmpdir

# check EXPECTED DATA [PARAMS...]: the disk made from DATA must be the
# bytes printf EXPECTED prints.
check ()
{
  local expected=$1 data=$2
  shift 2
  rm -f "$tmpdir/actual"
  # shellcheck disable=SC2059
  printf "$expected" >"$tmpdir/expected"
  "$NBDKIT" -U - data "$data" "$@" \
    --run 'nbdcopy "$uri" "$tmpdir/actual"' ||
    fail "data '$data' $*: nbdkit or nbdcopy failed"
  [ -f "$tmpdir/actual" ] || : >"$tmpdir/actual"
  cmp "$tmpdir/actual" "$tmpdir/expected" || {
    od -An -tx1 "$tmpdir/actual" >&2
    fail "data '$data' $*: wrong contents (expected $expected)"
  }
}

# z N: printf format for N zero bytes.
z ()
{
  local i out=
  for (( i = 0; i < $1; i++ )); do out+='\0'; done
  printf '%s' "$out"
}

# Bytes in decimal, octal and hexadecimal.
check '\x01\x02\x03' '1 2 3'
check '\x0f\x1f\xff\x00' '017 0x1F 255 0'
check '\x55\xaa' '0x55 0xAA'

# Words.
check '\x55\xaa\x12\x34' 'le16:0xaa55 be16:0x1234'
check '\x00\x00\x00\x01\x01\x00\x00\x00' 'be32:1 le32:1'
check '\x01\x02\x03\x04\x05\x06\x07\x08' 'be64:0x0102030405060708'
check '\xff\xff\xff\xff\xff\xff\xff\xff' 'le64:18446744073709551615'

# Moving the offset; the size is the furthest offset reached.
check "\\x01$(z 9)" '1 @10'
check "\\x01\\x02\\x03$(z 507)\\x55\\xaa" '1 2 3 @0x1fe 0x55 0xaa'
check "\\x01$(z 3)\\x02" '1 @+3 2'
check '\x01\x09\x03' '1 2 3 @1 9'
check "\\x01\\x02\\x03$(z 5)\\x04" '1 2 3 @^8 4'
check "\\x01$(z 7)" '1 @^4 @^8'
check "$(z 16)\\x01" '@0x10 1'
check "$(z 8)\\x01" '@010 1'
check "\\x00\\x01\\x02\\x03$(z 506)\\x55\\xaa" '0 1 2 3 @^0x200 @-2 le16:0xaa55'

# Strings.
check 'hello' '"hello"'
check 'ab' '"a" "b"'
check 'a\n\t\\"b\a\b\f\r\v' '"a\n\t\\\"b\a\b\f\r\v"'

# Comments.
check 'x\x02' '"x" # a comment
                 2 # another'

# Repeats, groups and slices.
check '\x01\x01\x01' '1*3'
check '\x01\x01\x01' '1 * 3'
check '\x03' '(1 2)*0 3'
check 'aaa' '"a"*3'
check '\x01\x02\x03\x02\x03\x01\x02\x03\x02\x03' '( 1 ( 2 3 )*2 )*2'
check "\\x01$(z 9)\\x01$(z 9)" '( 1 @10 )*2'
check '\x01\x02\x03\x00\x01\x02\x03\x00' '( 1 2 3 @^4 )*2'
check 'el' '"hello"[1:3]'
check 'llo' '"hello"[2:]'
check 'hehe' '"hello"[:2]*2'
check '\x02\x02\x02' '(1 2)[1:2]*3'
check '\x01' '1*2[0:1]'
# A group writes all of its range, zeroes included.
check '\x00\x00\x05\x04' '1 2 3 4 @0 ( @2 5 )'

# Names.
check '\x02\x01\x01' '1 -> \x 2 \x \x'
check '\x01\x02' '1 2 -> \x \x'
check '\x02\x01' '1 -> \x ( 2 -> \x \x ) \x'
check "$(z 4)\\x55\\xaa$(z 4)\\x55\\xaa" \
      '( 0x55 0xAA ) -> \b ( @4 \b ) -> \s \s \s'
check 'abab\x01ab' '"ab" -> \x \x \x 1 \x'

# Variables: parameters first, then the environment.
check '\x07\x08\x07\x08' '$pat*2' pat='7 8'
check '\x01\x01' '1 -> \x $v' v='\x \x'
DATA_TEST_VAR='0x41 0x42' check 'ABAB' '$DATA_TEST_VAR*2'

# Files and scripts.
printf 'ABC' >"$tmpdir/f3"
check 'ABC' "<$tmpdir/f3"
check 'BC' "<$tmpdir/f3[1:]"
check 'ABCABC' "<$tmpdir/f3*2"
check 'ABC' "(<$tmpdir/f3)"
check 'XYZ' '<(printf XYZ)'
check '(a)' '<(printf "(a)")'
check 'ABAB' '<(printf AB)*2'
check '0000000100020003' \
      '<( i=0; while :; do printf "%04d" $i; i=$((i+1)); done )[:16]'
check '\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' \
      '</dev/zero[:4]*4'

# size= cuts the data short or extends it with zeroes.
check '\x01\x02' '1 2 3 4' size=2
check "\\x01$(z 7)" '1' size=8

# Examples from the manual page.
check "$(printf 'Hello%.0s' {1..20})" '( "Hello" )*2000' size=100
"$NBDKIT" -U - data ' ( 0x55 0xAA )*2048 ' \
  --run 'nbdcopy "$uri" "$tmpdir/actual"' || fail "0x55 0xAA pattern failed"
python3 -c 'import sys; sys.stdout.buffer.write(b"\x55\xaa" * 2048)' \
  >"$tmpdir/expected"
cmp "$tmpdir/actual" "$tmpdir/expected" || fail "0x55 0xAA pattern wrong"

# A partition table in a 1M disk.
"$NBDKIT" -U - data '
    @0x1be 0 0 2 0 0x83 0x20 0x20 0 le32:1 le32:0x7ff
    @0x1fe 0x55 0xaa' size=1M \
  --run 'nbdcopy "$uri" "$tmpdir/actual"' || fail "MBR example failed"
python3 -c '
import sys, struct
d = bytearray(1 << 20)
d[0x1be:0x1be + 16] = bytes([0, 0, 2, 0, 0x83, 0x20, 0x20, 0]) + \
    struct.pack("<II", 1, 0x7ff)
d[0x1fe:0x200] = b"\x55\xaa"
sys.stdout.buffer.write(d)' >"$tmpdir/expected"
cmp "$tmpdir/actual" "$tmpdir/expected" || fail "MBR example contents wrong"
