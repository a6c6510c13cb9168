#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# For each of these filters, the parameters `nbdkit --filter=F --help`
# lists are exactly the ones its man page documents as =item B<key=...>,
# the man page has the standard sections in order, and it passes
# podchecker with no warnings.

source "$srcdir/functions.sh"
requires_plugin null

filters="checkwrite count exportname fua log multi-conn noextents nofilter
         nozero protect rate stats"

make_tmpdir
checked=0
for f in $filters; do
  pod=$abs_top_srcdir/filters/$f/nbdkit-$f-filter.pod
  [ -f "$pod" ] || fail "$pod is missing"
  if ! "$NBDKIT" --filter=$f null --dump-plugin > /dev/null 2>&1; then
    echo "$0: filter $f is not built, skipping it"
    continue
  fi

  # The filter's own section of --help: from "filter: F" to the blank
  # line after it; parameter lines start with KEY=.
  "$NBDKIT" --filter=$f null --help |
    awk -v f="$f" '$1 == "filter:" && $2 == f { on = 1; next }
                   on && /^$/ { exit }
                   on { print }' |
    sed -nE 's/^([a-z][a-z0-9-]*)=.*/\1/p' | sort -u > "$tmpdir/help"
  sed -nE 's/^=item B<([a-z][a-z0-9-]*)=.*/\1/p' "$pod" |
    sort -u > "$tmpdir/pod"
  diff -u "$tmpdir/help" "$tmpdir/pod" > "$tmpdir/diff" || {
    cat "$tmpdir/diff"
    fail "$f: --help and the man page list different parameters"
  }

  grep '^=head1 ' "$pod" | sed 's/^=head1 //' |
    grep -Ex 'NAME|SYNOPSIS|DESCRIPTION|PARAMETERS|EXAMPLES|FILES|SEE ALSO' \
    > "$tmpdir/sections"
  printf '%s\n' NAME SYNOPSIS DESCRIPTION PARAMETERS EXAMPLES FILES \
    'SEE ALSO' | diff -u - "$tmpdir/sections" ||
    fail "$f: the man page lacks standard sections, or has them out of order"

  if command -v podchecker > /dev/null; then
    out=$(podchecker -warnings -warnings "$pod" 2>&1) ||
      fail "$f: podchecker: $out"
    case $out in *WARNING*) fail "$f: podchecker: $out" ;; esac
  fi
  checked=$((checked + 1))
done
[ $checked -gt 0 ] || skip "none of the filters is built"

echo "$0: ok ($checked filters)"
