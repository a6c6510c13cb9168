#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# For every plugin and filter in the tree: each key=... its --help lists
# (not counting sub-parameters written after a comma, as in
# allocator=malloc,mlock=true)
# is documented as =item B<key=...> (or [B<key=>] for a magic key) in its
# man page and vice versa, the man page has the standard sections in
# order, and podchecker is clean.
source "${srcdir:-$(dirname "$0")}/functions.sh"
normal_build_only "a documentation check"
requires_plugin null
make_tmpdir

# help_keys KIND NAME: the keys in that module's own part of --help.
help_keys ()
{
  local kind=$1 name=$2
  if [ "$kind" = plugin ]; then
    "$NBDKIT" "$name" --help
  else
    "$NBDKIT" --filter="$name" null --help
  fi | awk -v k="$kind:" -v n="$name" '
        $1 == k && $2 == n { on = 1; getline; next }
        on && /^$/ { exit }
        on && /^plugin:/ { exit }
        on { print }' |
    { grep -oE '(^|[^,])\b[a-z][a-z0-9-]*=' || true; } |
    sed -E 's/^[^a-z]//' | sort -u
}

checked=0
pods=()
for dir in "$abs_top_srcdir"/plugins/*/ "$abs_top_srcdir"/filters/*/; do
  name=$(basename "$dir")
  case $dir in */plugins/*) kind=plugin ;; *) kind=filter ;; esac
  pod=$dir/nbdkit-$name-$kind.pod
  [ -f "$dir/meson.build" ] || continue
  [ -f "$pod" ] || fail "$kind $name: no man page at $pod"
  if [ "$kind" = plugin ]; then
    "$NBDKIT" "$name" --dump-plugin >/dev/null 2>&1
  else
    "$NBDKIT" --filter="$name" null --dump-plugin >/dev/null 2>&1
  fi || { echo "$0: $kind $name is not built here, skipping it"; continue; }

  help_keys "$kind" "$name" >"$tmpdir/help-keys" ||
    fail "$kind $name: --help failed"
  { grep '^=item' "$pod" | grep -o 'B<[a-z][a-z0-9-]*=' || true; } |
    sed 's/^B<//' | sort -u >"$tmpdir/man-keys"
  diff -u "$tmpdir/help-keys" "$tmpdir/man-keys" >"$tmpdir/diff" ||
    fail "$kind $name: --help and the man page list different keys:
$(cat "$tmpdir/diff")"

  order=$(grep '^=head1 ' "$pod" | sed 's/^=head1 //' |
            grep -xE 'NAME|SYNOPSIS|DESCRIPTION|PARAMETERS|EXAMPLES|FILES|SEE ALSO' |
            tr '\n' ',')
  [ "$order" = "NAME,SYNOPSIS,DESCRIPTION,PARAMETERS,EXAMPLES,FILES,SEE ALSO," ] ||
    fail "$kind $name: man page sections missing or out of order: $order"

  pods+=("$pod")
  checked=$((checked + 1))
done
[ "$checked" -gt 0 ] || fail "nothing was checked"
# One podchecker run for every man page (perl start-up is the cost).
if command -v podchecker >/dev/null; then
  podchecker -warnings -warnings "${pods[@]}" >"$tmpdir/pod" 2>&1 ||
    fail "podchecker failed: $(grep -v 'pod syntax OK' "$tmpdir/pod")"
  if grep -q WARNING "$tmpdir/pod"; then
    fail "podchecker warnings: $(grep WARNING "$tmpdir/pod")"
  fi
fi
echo "$0: ok ($checked plugins and filters)"
