#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Install a configured build into its own prefix and check the installed
# layout: the program finds its plugins and filters by name, the headers
# and nbdkit.pc build an out-of-tree plugin, and the man pages are there.
# Usage: scripts/check-install.sh BUILDDIR (configured with --prefix
# pointing somewhere writable and private).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builddir=${1:?usage: check-install.sh BUILDDIR}
prefix=$(meson introspect "$builddir" --buildoptions |
           python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
case "$prefix" in
  /usr|/usr/local|/) echo "check-install: refusing to install into $prefix" >&2; exit 1 ;;
esac
rm -rf "$prefix"
meson install -C "$builddir" --quiet

fail () { echo "check-install: FAIL: $*" >&2; exit 1; }
nbdkit=$prefix/sbin/nbdkit
[ -x "$nbdkit" ] || fail "no $nbdkit"
plugindir=$("$nbdkit" --dump-config | sed -n 's/^plugindir=//p')
case "$plugindir" in "$prefix"/*) ;; *) fail "plugindir $plugindir is not under $prefix" ;; esac
[ -f "$plugindir/nbdkit-memory-plugin.so" ] || fail "memory plugin not installed in $plugindir"
filterdir=$("$nbdkit" --dump-config | sed -n 's/^filterdir=//p')
[ -f "$filterdir/nbdkit-offset-filter.so" ] || fail "offset filter not installed in $filterdir"

# The installed program finds its plugins and filters by name.
export PATH=/usr/bin:$PATH
"$nbdkit" -U - --filter=offset memory 2M offset=1M --run \
  'nbdsh -u "$uri" -c "assert h.get_size() == 1048576"' ||
  fail "installed nbdkit could not serve memory+offset by name"

# nbdkit.pc and the headers build an out-of-tree plugin.
pcdir=$(dirname "$(find "$prefix" -name nbdkit.pc | head -1)")
[ -n "$pcdir" ] || fail "nbdkit.pc not installed"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cflags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags nbdkit)
pc_plugindir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=plugindir nbdkit)
[ "$pc_plugindir" = "$plugindir" ] || fail "pkg-config plugindir $pc_plugindir != $plugindir"
for h in nbdkit-plugin.h nbdkit-filter.h nbdkit-common.h nbdkit-version.h; do
  [ -f "$prefix/include/$h" ] || fail "$h not installed"
done
cc -shared -fPIC -Wall -Werror -Wno-unused-parameter $cflags \
  "$top/tests/plugins/hello.c" -o "$tmp/nbdkit-hello-plugin.so"
"$nbdkit" -U - "$tmp/nbdkit-hello-plugin.so" --run \
  'nbdsh -u "$uri" -c "assert h.pread(5, 0) == b\"hello\""' ||
  fail "out-of-tree plugin built with pkg-config did not work"

# Man pages.
for m in man1/nbdkit.1 man3/nbdkit-plugin.3 man3/nbdkit-filter.3 \
         man1/nbdkit-memory-plugin.1 man1/nbdkit-offset-filter.1; do
  [ -f "$prefix/share/man/$m" ] || fail "man page $m not installed"
done
echo "check-install: ok ($prefix)"
