#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# For every plugin in the tree: each key=... in `nbdkit PLUGIN --help` is
# documented as an =item B<key=> (or [B<key=>] for the magic key) in its
# man page and vice versa, the standard sections are present in order,
# and podchecker is clean.
source "${srcdir:-$(dirname "$0")}/functions.sh"
make_tmpdir

checked=0
for dir in "$abs_top_srcdir"/plugins/*/; do
  p=$(basename "$dir")
  pod=$dir/nbdkit-$p-plugin.pod
  [ -f "$pod" ] || fail "$p: no man page at $pod"
  if ! "$NBDKIT" "$p" --dump-plugin >/dev/null 2>&1; then
    echo "$0: $p is not built here, skipping it"
    continue
  fi

  "$NBDKIT" "$p" --help >"$tmpdir/help" || fail "$p: --help failed"
  sed -n "/^plugin: $p/,\$p" "$tmpdir/help" | sed 1,2d |
    grep -o '\b[a-z][a-z0-9-]*=' | sort -u >"$tmpdir/help-keys"
  grep '^=item' "$pod" | grep -o 'B<[a-z][a-z0-9-]*=' |
    sed 's/^B<//' | sort -u >"$tmpdir/man-keys"
  diff -u "$tmpdir/help-keys" "$tmpdir/man-keys" >"$tmpdir/diff" ||
    fail "$p: --help and the man page list different keys:
$(cat "$tmpdir/diff")"

  order=$(grep '^=head1 ' "$pod" | sed 's/^=head1 //' |
            grep -xE 'NAME|SYNOPSIS|DESCRIPTION|PARAMETERS|EXAMPLES|FILES|SEE ALSO' |
            tr '\n' ',')
  [ "$order" = "NAME,SYNOPSIS,DESCRIPTION,PARAMETERS,EXAMPLES,FILES,SEE ALSO," ] ||
    fail "$p: the man page sections are missing or out of order: $order"

  if command -v podchecker >/dev/null; then
    podchecker -warnings -warnings "$pod" >"$tmpdir/pod" 2>&1 ||
      fail "$p: podchecker failed: $(cat "$tmpdir/pod")"
    if grep -q WARNING "$tmpdir/pod"; then
      fail "$p: podchecker warnings: $(cat "$tmpdir/pod")"
    fi
  fi
  checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || fail "no plugin was checked"
echo "$0: ok ($checked plugins)"
