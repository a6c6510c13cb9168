#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The stats filter: nothing is written while nbdkit runs; at exit the
# file holds the total and one line per kind of request used (ops,
# seconds, bytes, rates) with the size/alignment histogram; the
# histogram can be turned off, the file appended to; bad parameters are
# refused naming the parameter.

source "$srcdir/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_filter stats

make_tmpdir
export tmpdir
stats=$tmpdir/stats

cat > "$tmpdir/ops.py" <<'EOF'
h.pwrite(b"a" * 4096, 0)
h.pwrite(b"b" * 4096, 8192)
h.pwrite(b"c" * 512, 0x4200)
assert h.pread(4096, 0) == b"a" * 4096
h.trim(65536, 65536)
h.zero(4096, 131072)
h.flush()
h.flush()
EOF
# The statistics appear only once nbdkit has exited.
"$NBDKIT" -U - --filter=stats memory 1M statsfile="$stats" \
  --run 'nbdsh -u "$uri" -c - < "$tmpdir/ops.py" && test ! -s "$tmpdir/stats"' ||
  fail "client failed, or statistics were written before exit"

# expect REGEX...: each line is in the file, in this order.
expect ()
{
  local re n prev=0
  for re in "$@"; do
    n=$(grep -En -- "^$re\$" "$stats" |
        awk -F: -v prev="$prev" '$1 > prev { print $1; exit }')
    if [ -z "$n" ]; then
      cat "$stats"
      fail "missing or out of order: $re"
    fi
    prev=$n
  done
}
S='[0-9]+\.[0-9]{6} s'
RATE='[0-9.]+ (bytes|KiB|MiB|GiB|TiB)/s'
expect \
  "total: 8 ops, $S, 80\\.50 KiB, $RATE" \
  "read: 1 ops, $S, 4\\.00 KiB, $RATE op, $RATE total" \
  '  Request size and alignment breakdown:' \
  '    12 bits: 100\.0% \(1 reqs, 4\.00 KiB total\)' \
  '         64 bit aligned: 100\.0% \(1\)' \
  "write: 3 ops, $S, 8\\.50 KiB, $RATE op, $RATE total" \
  '  Request size and alignment breakdown:' \
  '    12 bits:  66\.7% \(2 reqs, 8\.00 KiB total\)' \
  '         13 bit aligned: 100\.0% \(2\)' \
  '         14 bit aligned:  50\.0% \(1\)' \
  '     9 bits:  33\.3% \(1 reqs, 512 bytes total\)' \
  '          9 bit aligned: 100\.0% \(1\)' \
  "trim: 1 ops, $S, 64\\.00 KiB, $RATE op, $RATE total" \
  "zero: 1 ops, $S, 4\\.00 KiB, $RATE op, $RATE total" \
  "flush: 2 ops, $S, 0 bytes, 0 bytes/s op, 0 bytes/s total"
# Kinds of request the client never sent are left out.
! grep -Eq '^(extents|cache):' "$stats" ||
  fail "unused operations are listed"

# statsthreshold=0: no histogram.  statsappend=true: a second report.
"$NBDKIT" -U - --filter=stats memory 1M statsfile="$stats" \
  statsthreshold=0 statsappend=true \
  --run 'nbdsh -u "$uri" -c "h.pwrite(b\"x\" * 512, 0)"' ||
  fail "second run failed"
[ "$(grep -c '^total:' "$stats")" -eq 2 ] ||
  fail "statsappend=true did not append"
[ "$(grep -c 'Request size' "$stats")" -eq 4 ] ||
  fail "statsthreshold=0 still printed a histogram"
tail -2 "$stats" | grep -Eq "^write: 1 ops, $S, 512 bytes, " ||
  fail "the appended report is wrong"

# Without statsappend the file is replaced; an idle server reports zero.
"$NBDKIT" -U - --filter=stats memory 1M statsfile="$stats" --run true ||
  fail "idle run failed"
[ "$(cat "$stats")" = "$(grep -E "^total: 0 ops, $S, 0 bytes, 0 bytes/s\$" "$stats")" ] ||
  { cat "$stats"; fail "idle report is wrong"; }

# Bad parameters: exit status 1 and a message naming the parameter.
bad ()
{
  local param=$1 rc=0; shift
  "$NBDKIT" -U - --filter=stats memory 1M "$@" --run true \
    2> "$tmpdir/err" || rc=$?
  [ $rc -eq 1 ] || fail "nbdkit $* exited with status $rc, expected 1"
  grep -q -- "$param" "$tmpdir/err" || {
    cat "$tmpdir/err"
    fail "the error for $* does not name $param"
  }
}
bad statsfile
bad statsthreshold statsfile="$stats" statsthreshold=101
bad statsthreshold statsfile="$stats" statsthreshold=lots
bad statsappend statsfile="$stats" statsappend=perhaps
bad statsfile statsfile="$tmpdir/no/such/dir/stats"

echo "$0: ok"
