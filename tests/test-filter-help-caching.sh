#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# For the cow, cache, retry and retry-request filters: the parameters
# `nbdkit --filter=F --help` lists are exactly the ones the man page
# documents as =item B<key=...>, the man page has the standard sections
# in order, states the memory the filter uses, and passes podchecker
# with no warnings.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires_plugin null
make_tmpdir

checked=0
for f in cow cache retry retry-request; do
  pod=$abs_top_srcdir/filters/$f/nbdkit-$f-filter.pod
  [ -f "$pod" ] || fail "$pod is missing"
  requires_filter $f

  "$NBDKIT" --filter=$f null --help |
    awk -v f="$f" '$1 == "filter:" && $2 == f { on = 1; next }
                   on && /^$/ { exit }
                   on { print }' |
    sed -nE 's/^([a-z][a-z0-9-]*)=.*/\1/p' | sort -u >"$tmpdir/help"
  sed -nE 's/^=item B<([a-z][a-z0-9-]*)=.*/\1/p' "$pod" | sort -u >"$tmpdir/pod"
  [ -s "$tmpdir/help" ] || fail "$f: --help lists no parameters"
  diff -u "$tmpdir/help" "$tmpdir/pod" >"$tmpdir/diff" ||
    fail "$f: --help and the man page list different parameters:
$(cat "$tmpdir/diff")"

  grep '^=head1 ' "$pod" | sed 's/^=head1 //' |
    grep -Ex 'NAME|SYNOPSIS|DESCRIPTION|PARAMETERS|EXAMPLES|FILES|SEE ALSO' \
    >"$tmpdir/sections"
  printf '%s\n' NAME SYNOPSIS DESCRIPTION PARAMETERS EXAMPLES FILES \
    'SEE ALSO' | diff -u - "$tmpdir/sections" ||
    fail "$f: the man page lacks standard sections, or has them out of order"

  grep -qiE 'memory|bytes per|no state' "$pod" ||
    fail "$f: the man page does not say what memory the filter uses"

  if command -v podchecker >/dev/null; then
    out=$(podchecker -warnings -warnings "$pod" 2>&1) ||
      fail "$f: podchecker: $out"
    case $out in *WARNING*) fail "$f: podchecker: $out" ;; esac
  fi
  checked=$((checked + 1))
done

echo "$0: ok ($checked filters)"
