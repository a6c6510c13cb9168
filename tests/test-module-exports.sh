#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Every plugin and filter built in this tree exports only its entry point
# (plugin_init or filter_init) and its -D debug flags (NAME_debug_FLAG):
# modules are loaded RTLD_GLOBAL, so any other exported name could bind
# to a namesake in another module (DESIGN.md "Modules are sealed").

source "$srcdir/functions.sh"
normal_build_only "a symbol check"
requires nm --version

n=0
bad=""
while IFS= read -r so; do
  n=$((n + 1))
  case "$so" in
    */plugins/*) entry=plugin_init ;;
    *) entry=filter_init ;;
  esac
  syms=$(nm -D --defined-only "$so" | awk '{print $3}')
  grep -qx "$entry" <<<"$syms" || bad+="$(basename "$so"): no $entry"$'\n'
  # Sanitizer builds add their own bookkeeping symbols; ignore those.
  extra=$(grep -v -E "^($entry|[a-z0-9_]+_debug_[A-Za-z0-9_]+|__(asan|ubsan|odr_asan|sancov)[A-Za-z0-9_.]*)$" \
            <<<"$syms" || :)
  if [ -n "$extra" ]; then
    bad+="$(basename "$so") exports: $(echo $extra)"$'\n'
  fi
done < <(find "$abs_top_builddir/plugins" "$abs_top_builddir/filters" \
           -name 'nbdkit-*-plugin.so' -o -name 'nbdkit-*-filter.so' | sort)

[ "$n" -ge 40 ] || fail "found only $n modules under $abs_top_builddir"
[ -z "$bad" ] || fail "modules are not sealed:"$'\n'"$bad"
echo "$n modules export only their entry point and debug flags"
