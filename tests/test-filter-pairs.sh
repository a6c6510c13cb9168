#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Every ordered pair of the in-tree filters that can run over a RAM disk
# without special input is stacked over the memory plugin; each pair
# must write, flush and read back data (the cow+cache crash of issue 10
# was two modules binding to each other's helpers).  Excluded, because
# they need prepared input or refuse writes by design: checkwrite
# (compares every write with the plugin's data), gzip, xz, tar,
# partition (need a compressed file, an archive or a partition table),
# ext2 (needs an ext2/3/4 filesystem holding the ext2file= file), luks
# (needs a LUKSv1 header and passphrase=), ddrescue (read-only, needs a
# map file), tls-fallback (plaintext clients get a fixed read-only disk).

source "$srcdir/functions.sh"
requires /usr/bin/python3 -c 'import nbd'

excluded=" checkwrite gzip xz tar partition ext2 luks ddrescue tls-fallback "
filters=()
for d in "$abs_top_srcdir"/filters/*/; do
  f=$(basename "$d")
  case "$excluded" in *" $f "*) continue ;; esac
  [ -f "$abs_top_builddir/filters/$f/nbdkit-$f-filter.so" ] ||
    fail "filter $f was not built"
  filters+=("$f")
done
[ ${#filters[@]} -ge 20 ] || fail "only ${#filters[@]} filters found"
# The sanitizer build stacks each two filters once (in alternating
# orders) instead of in both orders: it would take six minutes.
if grep -qa __asan_init "$NBDKIT"; then
  export FILTER_PAIRS_HALF=1
fi
/usr/bin/python3 "$srcdir/test-filter-pairs.py" "${filters[@]}"
