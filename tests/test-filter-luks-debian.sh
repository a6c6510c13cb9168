#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The luks filter side by side with Debian's nbdkit 1.32 on the same
# cryptsetup LUKSv1 volume (aes-xts-plain64): what Debian's writes we
# read, what ours writes Debian's reads, the whole payload decrypts to
# the same bytes, and the size and flags nbdinfo sees are the same.
source "${srcdir:-$(dirname "$0")}/functions.sh"
normal_build_only "a comparison with Debian's nbdkit"

debian=/usr/bin/nbdkit
[ -x "$debian" ] || skip "no Debian nbdkit at $debian"
"$debian" --filter=luks null --dump-plugin >/dev/null 2>&1 ||
  skip "Debian's nbdkit has no luks filter"
requires cryptsetup --version
requires nbdcopy --version
requires nbdinfo --version
requires_plugin file
requires_filter luks
make_tmpdir
cd "$tmpdir"

printf 'debian and us' >pw
truncate -s 3M disk.img
cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 \
    --key-file pw disk.img || fail "luksFormat failed"
head -c 294912 /dev/urandom >a
head -c 196608 /dev/urandom >b

luks ()
{
  local server=$1; shift
  "$server" -U - file disk.img --filter=luks passphrase=+pw --run "$*"
}
flags='nbdinfo --json "$uri" | python3 -c "
import json, sys
e = json.load(sys.stdin)[\"exports\"][0]
for k in [\"export-size\", \"is_read_only\", \"can_flush\", \"can_fua\",
          \"can_trim\", \"can_zero\", \"can_fast_zero\", \"can_multi_conn\",
          \"block_size_minimum\", \"block_size_preferred\"]:
    print(k, e.get(k))
"'

luks "$debian" 'nbdcopy a "$uri"' || fail "Debian's write failed"
luks "$NBDKIT" 'nbdcopy b "$uri" && nbdcopy "$uri" ours.bin &&' "$flags" \
    >ours.flags || fail "our run failed"
luks "$debian" 'nbdcopy "$uri" debian.bin &&' "$flags" >debian.flags ||
  fail "Debian's read failed"

cmp -n 196608 ours.bin b || fail "we do not read back our own write"
cmp -i 196608 -n 98304 ours.bin a ||
  fail "we do not read what Debian's filter wrote"
cmp ours.bin debian.bin || fail "the payloads decrypt differently"
diff -u debian.flags ours.flags || fail "size or flags differ from Debian's"
