#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Plugins built outside the tree against only the public headers, with
# the compiler flags nbdkit.pc gives (-I$includedir): an API v2 plugin
# loaded by path, its -D debug flag, a #! script using it, and an API v1
# plugin whose callbacks take no flags.

source "$srcdir/functions.sh"
requires cc --version
requires nbdsh --version
make_tmpdir

# The installed nbdkit.pc says Cflags: -I${includedir}; the uninstalled
# equivalent is the source include/ plus the generated nbdkit-version.h.
grep -q '^Cflags: -I${includedir}' "$abs_top_builddir/meson-private/nbdkit.pc" ||
  fail "nbdkit.pc does not give -I\${includedir}"
cflags="-I$abs_top_srcdir/include -I$abs_top_builddir"

for p in hello hello-v1; do
  cc -shared -fPIC -Wall -Wextra -Werror -Wno-unused-parameter $cflags \
    "$srcdir/plugins/$p.c" -o "$tmpdir/nbdkit-$p-plugin.so" ||
    fail "building the out-of-tree $p plugin failed"
done
# C++ can include the headers too.
if command -v g++ >/dev/null; then
  printf '#define NBDKIT_API_VERSION 2\n#include <nbdkit-plugin.h>\nint main () { return 0; }\n' \
    > "$tmpdir/cxx.cpp"
  g++ -Wall -Werror $cflags -c "$tmpdir/cxx.cpp" -o "$tmpdir/cxx.o" ||
    fail "the headers do not compile as C++"
fi

plugin="$tmpdir/nbdkit-hello-plugin.so"
"$NBDKIT" -U - "$plugin" size=100k --run '
  nbdsh -u "$uri" -c "
assert h.get_size() == 102400
assert h.pread(10, 0) == b\"hellohello\"
h.pwrite(b\"HELLO\", 5)
assert h.pread(10, 0) == b\"helloHELLO\"
"' || fail "v2 out-of-tree plugin did not serve the right data"

"$NBDKIT" --dump-plugin "$plugin" > "$tmpdir/dump"
grep -qx 'name=hello' "$tmpdir/dump" && grep -qx 'api_version=2' "$tmpdir/dump" &&
  grep -qx 'thread_model=serialize_all_requests' "$tmpdir/dump" ||
  fail "--dump-plugin of the out-of-tree plugin is wrong: $(cat "$tmpdir/dump")"

# -D hello.verbose=1 sets hello_debug_verbose.
"$NBDKIT" -v -D hello.verbose=1 -U - "$plugin" --run true 2>"$tmpdir/err" ||
  fail "-D hello.verbose=1 failed: $(cat "$tmpdir/err")"
grep -q 'verbose debugging is on' "$tmpdir/err" ||
  fail "the debug flag did not reach the plugin"
if "$NBDKIT" -D hello.nosuch=1 -U - "$plugin" --run true 2>"$tmpdir/err"; then
  fail "an unknown debug flag was accepted"
fi
grep -q 'hello_debug_nosuch' "$tmpdir/err" || fail "unclear error: $(cat "$tmpdir/err")"

# A #! script: the kernel runs nbdkit PLUGIN SCRIPT ARGS, and the first
# bare argument of a plugin without a magic key is script=.
printf '#!%s %s\nscript data\n' "$NBDKIT" "$plugin" > "$tmpdir/disk.nbdkit"
chmod +x "$tmpdir/disk.nbdkit"
"$tmpdir/disk.nbdkit" -U - --run '
  nbdsh -u "$uri" -c "assert h.pread(h.get_size(), 0).startswith(b\"#!\")"' ||
  fail "the #! script did not run nbdkit with the script as script="

# API version 1: no flags in callbacks, errno passed on, FUA emulated
# by flush.
"$NBDKIT" -U - "$tmpdir/nbdkit-hello-v1-plugin.so" --run '
  nbdsh -u "$uri" -c "
import errno
h.pwrite(b\"x\" * 512, 0, nbd.CMD_FLAG_FUA)
assert h.pread(512, 0) == b\"x\" * 512
h.zero(512, 0)
assert h.pread(512, 0) == bytes(512)
try:
    h.pwrite(b\"y\" * 512, 65536 - 512)
    assert False, \"write should have failed\"
except nbd.Error as e:
    assert e.errnum == errno.ENOSPC, e
assert h.can_fua() and not h.can_fast_zero()
"' || fail "API v1 plugin misbehaved"

echo "$0: ok"
