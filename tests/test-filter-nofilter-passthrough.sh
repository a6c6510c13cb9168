#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The nofilter filter changes nothing: the export's flags, size and
# block sizes (nbdinfo --json) and its map are the same with and without
# it, data round-trips through it (checksums), and it takes no
# parameters of its own.

source "$srcdir/functions.sh"
requires nbdinfo --version
requires nbdcopy --version
requires sha256sum --version
requires_plugin memory
requires_filter nofilter

make_tmpdir
export tmpdir

# info [FILTER...]: nbdinfo's view without the socket path, and the map
# of a disk holding some data.
info ()
{
  "$NBDKIT" -U - "$@" memory 4M \
    --run 'nbdcopy "$tmpdir/data" "$uri" &&
           nbdinfo --json "$uri" && nbdinfo --map "$uri" &&
           nbdcopy "$uri" "$tmpdir/out"' |
    grep -v '"uri":' || fail "nbdkit $* failed"
}
head -c 1M /dev/urandom > "$tmpdir/data"
truncate -s 4M "$tmpdir/data"

info > "$tmpdir/plain"
info --filter=nofilter > "$tmpdir/filtered"
cmp "$tmpdir/data" "$tmpdir/out" || fail "data changed through nofilter"
diff -u "$tmpdir/plain" "$tmpdir/filtered" ||
  fail "nofilter changed what the client sees"
grep -q '"can_multi_conn": true' "$tmpdir/filtered" ||
  fail "nbdinfo output is not what this test expects"

# Stacked several times it still changes nothing.
info --filter=nofilter --filter=nofilter --filter=nofilter \
  > "$tmpdir/stacked"
diff -u "$tmpdir/plain" "$tmpdir/stacked" || fail "stacked nofilter"

# No parameters of its own: keys go to the plugin.
rc=0
"$NBDKIT" -U - --filter=nofilter memory 1M nosuchkey=1 --run true \
  2> "$tmpdir/err" || rc=$?
[ $rc -eq 1 ] || fail "an unknown key was accepted"
grep -q "memory.*nosuchkey" "$tmpdir/err" ||
  { cat "$tmpdir/err"; fail "the plugin did not see the unknown key"; }
"$NBDKIT" --filter=nofilter memory --dump-plugin > "$tmpdir/dump" ||
  fail "--dump-plugin failed"
grep -qx 'filter_name=nofilter' "$tmpdir/dump" || fail "no filter_name="

echo "$0: ok"
