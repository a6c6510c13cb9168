#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# For the offset, truncate, partition, error, delay, exitlast, exitwhen,
# ip and limit filters: every key=... shown by --help is documented as
# "=item B<key=>" in the filter's man page and vice versa, and each man
# page has the standard sections in order and passes podchecker.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires_plugin null
make_tmpdir

for f in offset truncate partition error delay exitlast exitwhen ip limit; do
  requires_filter "$f"
  pod=$abs_top_srcdir/filters/$f/nbdkit-$f-filter.pod
  [ -f "$pod" ] || fail "$f: no man page at $pod"

  # The filter's own part of --help runs from "filter: NAME" to the
  # first empty line.
  "$NBDKIT" --filter="$f" null --help >"$tmpdir/help" ||
    fail "$f: --help failed"
  sed -n "/^filter: $f/,/^\$/p" "$tmpdir/help" |
    grep -o '\b[a-z][a-z0-9-]*=' | sort -u >"$tmpdir/help-keys"
  grep '^=item' "$pod" | grep -o 'B<[a-z][a-z0-9-]*=>' |
    sed 's/^B<//; s/>$//' | sort -u >"$tmpdir/man-keys"
  diff -u "$tmpdir/help-keys" "$tmpdir/man-keys" >"$tmpdir/diff" ||
    fail "$f: --help and the man page list different keys:
$(cat "$tmpdir/diff")"

  # The standard sections, in this order (others may come between).
  order=$(grep '^=head1 ' "$pod" | sed 's/^=head1 //' |
            grep -xE 'NAME|SYNOPSIS|DESCRIPTION|PARAMETERS|EXAMPLES|FILES|SEE ALSO' |
            tr '\n' ',')
  [ "$order" = "NAME,SYNOPSIS,DESCRIPTION,PARAMETERS,EXAMPLES,FILES,SEE ALSO," ] ||
    fail "$f: the man page sections are missing or out of order: $order"

  if command -v podchecker >/dev/null; then
    podchecker -warnings -warnings "$pod" >"$tmpdir/pod" 2>&1 ||
      fail "$f: podchecker failed: $(cat "$tmpdir/pod")"
    if grep -q WARNING "$tmpdir/pod"; then
      fail "$f: podchecker warnings: $(cat "$tmpdir/pod")"
    fi
  fi
done
