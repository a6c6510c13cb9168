#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The split plugin side by side with Debian's nbdkit 1.32 on the same
# files (one ending mid-block, an empty one, a sparse one): the same
# size, data and block status map.
source "${srcdir:-$(dirname "$0")}/functions.sh"
normal_build_only "a comparison with Debian's nbdkit"

debian=/usr/bin/nbdkit
[ -x "$debian" ] || skip "no Debian nbdkit at $debian"
"$debian" split --dump-plugin >/dev/null 2>&1 ||
  skip "Debian's nbdkit has no split plugin"
requires nbdcopy --version
requires nbdinfo --version
requires_plugin split
make_tmpdir
cd "$tmpdir"

head -c 5000 /dev/urandom >f1
: >f2
truncate -s 200000 f3
head -c 3 /dev/urandom | dd of=f3 bs=1 seek=100000 conv=notrunc status=none
head -c 777 /dev/urandom >f4

# Read-only (-r) so that the -r server does not depend on flush or
# trim, which this plugin has and Debian's has not.
run ()
{
  "$1" -U - -r split f1 f2 f3 f4 \
    --run 'nbdcopy "$uri" copy && nbdinfo --size "$uri" && nbdinfo --map "$uri"' \
    >"$2" || fail "$1 split failed"
  md5sum <copy >>"$2"
}
run "$debian" debian.out
run "$NBDKIT" ours.out
cat f1 f2 f3 f4 | md5sum | cmp -s - <(tail -1 ours.out) ||
  fail "our copy is not the files end to end"
diff -u debian.out ours.out || fail "the split plugin differs from Debian's"
