#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A plugin or filter whose registration does not match this server is
# refused with one line naming the file and the reason, never read as
# garbage; plugins built for upstream nbdkit (Debian's binaries) share
# the plugin layout and load; upstream's filters are refused by version.

source "$srcdir/functions.sh"
requires cc --version
make_tmpdir
cflags="-I$abs_top_srcdir/include -I$abs_top_builddir"

# case  expected words in the one-line error
cases=(
  "1|unsupported plugin API version (7;"
  "2|struct size does not match"
  "3|struct size does not match"
  "4|unknown thread model (1094795585)"
  "5|not an nbdkit plugin (no plugin_init symbol)"
  "6|plugin_init returned NULL"
  "7|it has no name"
)
for c in "${cases[@]}"; do
  n=${c%%|*} want=${c#*|}
  so="$tmpdir/nbdkit-bad$n-plugin.so"
  cc -shared -fPIC -DCASE="$n" $cflags "$srcdir/plugins/bad-registration.c" \
    -o "$so" || fail "building case $n"
  if "$NBDKIT" -U - "$so" --run true > "$tmpdir/out" 2>&1; then
    fail "case $n: the server accepted a bad plugin"
  fi
  [ "$(wc -l < "$tmpdir/out")" -eq 1 ] ||
    { cat "$tmpdir/out"; fail "case $n: expected exactly one line of error"; }
  grep -qF "$so" "$tmpdir/out" || fail "case $n: error does not name $so"
  grep -qF -- "$want" "$tmpdir/out" ||
    { cat "$tmpdir/out"; fail "case $n: error does not say '$want'"; }
done

# A filter built for another nbdkit version: a filter of ours with the
# version string patched to another of the same length.
ours="$abs_top_builddir/filters/nofilter/nbdkit-nofilter-filter.so"
version=$("$NBDKIT" --version | awk 'NR==1 {print $2}')
other=$(echo "$version" | tr '0-9' '1-90')
LC_ALL=C sed "s/\x00$version\x00/\x00$other\x00/" "$ours" \
  > "$tmpdir/nbdkit-old-filter.so"
cmp -s "$ours" "$tmpdir/nbdkit-old-filter.so" &&
  fail "could not patch the version string of the nofilter filter"
if "$NBDKIT" -U - --filter="$tmpdir/nbdkit-old-filter.so" memory 1M \
     --run true > "$tmpdir/out" 2>&1; then
  fail "a filter built for nbdkit $other was accepted"
fi
grep -qF "built for nbdkit $other, this server is $version" "$tmpdir/out" ||
  { cat "$tmpdir/out"; fail "wrong error for a filter of another version"; }

# Debian's upstream-built binaries, when installed.
debdir=/usr/lib/x86_64-linux-gnu/nbdkit
if [ -f "$debdir/plugins/nbdkit-memory-plugin.so" ] &&
   command -v nbdsh >/dev/null; then
  "$NBDKIT" -U - "$debdir/plugins/nbdkit-memory-plugin.so" 1M --run '
    nbdsh -u "$uri" -c "
assert h.get_size() == 1048576
h.pwrite(b\"upstream\" * 512, 4096)
h.flush()
assert h.pread(4096, 4096) == b\"upstream\" * 512
"' || fail "Debian's memory plugin binary did not serve correct data"
fi
if [ -f "$debdir/filters/nbdkit-cow-filter.so" ]; then
  if "$NBDKIT" -U - --filter="$debdir/filters/nbdkit-cow-filter.so" \
       memory 1M --run true > "$tmpdir/out" 2>&1; then
    fail "Debian's cow filter binary was accepted"
  fi
  [ "$(wc -l < "$tmpdir/out")" -eq 1 ] && grep -q "cannot load this filter" \
    "$tmpdir/out" || { cat "$tmpdir/out"; fail "unclear refusal of Debian's filter"; }
fi
