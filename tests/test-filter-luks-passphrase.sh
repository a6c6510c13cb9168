#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The luks filter's passphrase= forms (literal, +FILE, -FD) and key
# slots (the second slot's passphrase opens the volume too); a wrong
# passphrase, a LUKSv2 header, a disk without LUKS and a cut disk fail
# the connection with a clear message; configuration errors exit 1.
# Writes through a filter that shifts requests off the 512-byte grid
# (offset=612 above luks) are read back correctly by a second run.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires cryptsetup --version
requires nbdinfo --version
requires nbdcopy --version
requires_plugin file
requires_filter luks
requires_filter offset
make_tmpdir

printf 'first secret' >"$tmpdir/pw"
printf 'second secret\n' >"$tmpdir/pw2"
img=$tmpdir/disk.img
truncate -s 3M "$img"
cryptsetup luksFormat -q --type luks1 --cipher aes-xts-plain64 \
    --key-size 256 --hash sha1 --pbkdf-force-iterations 1000 \
    --key-file "$tmpdir/pw" "$img" || fail "luksFormat failed"
# cryptsetup reads a key file whole; the newline is part of this key
# for it, but nbdkit drops a final newline: give cryptsetup the same.
printf 'second secret' >"$tmpdir/pw2-exact"
cryptsetup luksAddKey -q --pbkdf-force-iterations 1000 \
    --key-file "$tmpdir/pw" "$img" "$tmpdir/pw2-exact" ||
  fail "luksAddKey failed"
want=$(( 3 * 1024 * 1024 - $(cryptsetup luksDump "$img" |
                                awk '/^Payload offset:/ { print $3 * 512 }') ))

size_with ()
{
  "$NBDKIT" -U - file "$img" --filter=luks "$@" --run 'nbdinfo --size "$uri"'
}
[ "$(size_with passphrase='first secret')" = "$want" ] ||
  fail "literal passphrase"
[ "$(size_with passphrase=+"$tmpdir/pw2")" = "$want" ] ||
  fail "passphrase=+FILE of the second key slot (with a final newline)"
[ "$(size_with passphrase=-3 3<"$tmpdir/pw")" = "$want" ] ||
  fail "passphrase=-FD"

# Unaligned requests from a filter above (offset=612: 100 bytes into
# sector 1) go through whole sectors; a second run reads them back.
python3 -c 'import sys; sys.stdout.buffer.write(b"A" * 1024 + b"B" * 512)' \
    >"$tmpdir/ab"
export tmpdir
"$NBDKIT" -U - file "$img" --filter=offset --filter=luks \
    offset=612 passphrase=+"$tmpdir/pw" \
    --run 'nbdcopy "$tmpdir/ab" "$uri"' ||
  fail "writing through offset=612 failed"
"$NBDKIT" -U - file "$img" --filter=luks passphrase=+"$tmpdir/pw2" \
    --run 'nbdcopy "$uri" "$tmpdir/back"' || fail "reading back failed"
cmp -i 612:0 -n 1536 "$tmpdir/back" "$tmpdir/ab" ||
  fail "the unaligned writes were not read back"

# Connections that cannot be served, and why: one server over a
# directory of broken images, one export each.
mkdir "$tmpdir/bad"
cp "$img" "$tmpdir/bad/good.img"
cp "$img" "$tmpdir/bad/v2.img"
printf '\000\002' | dd of="$tmpdir/bad/v2.img" bs=1 seek=6 conv=notrunc \
    status=none
cp "$img" "$tmpdir/bad/cut.img"
truncate -s 1M "$tmpdir/bad/cut.img"
truncate -s 1M "$tmpdir/bad/blank.img"
export tmpdir
"$NBDKIT" -U - file dir="$tmpdir/bad" --filter=luks passphrase=+"$tmpdir/pw" \
    --run '
for e in v2 cut blank; do
  nbdinfo --size "nbd+unix:///$e.img?socket=$unixsocket" && exit 1
done
nbdinfo --size "nbd+unix:///good.img?socket=$unixsocket" >/dev/null
' 2>"$tmpdir/err" || fail "a broken image was served, or the good one not"
for pattern in "LUKS version 2 is not supported" \
               "payload offset .* is not inside the disk" \
               "this disk does not have a LUKS header"; do
  grep -q "$pattern" "$tmpdir/err" ||
    fail "expected '$pattern' in: $(cat "$tmpdir/err")"
done
size_with passphrase=wrong >"$tmpdir/out" 2>"$tmpdir/err" &&
  fail "served with a wrong passphrase: $(cat "$tmpdir/out")"
grep -q "LUKS passphrase is not correct, no key slot could be unlocked" \
    "$tmpdir/err" || fail "wrong passphrase: $(cat "$tmpdir/err")"

# Configuration errors.
for args in "" "passphrase=+$tmpdir/missing" "passphrase=a passphrase=b"; do
  # shellcheck disable=SC2086
  "$NBDKIT" -U - file "$img" --filter=luks $args --run true 2>"$tmpdir/err"
  r=$?
  [ $r = 1 ] || fail "'$args': exit status $r, expected 1"
  grep -q "passphrase" "$tmpdir/err" ||
    fail "'$args': unclear message: $(cat "$tmpdir/err")"
done
