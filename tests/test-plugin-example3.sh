#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The example3 plugin: each connection gets its own empty writable disk
# of size= (default 100M); what one connection writes the next never
# sees; a bad size stops nbdkit.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin example3
make_tmpdir
export tmpdir

"$NBDKIT" -U - example3 --run 'nbdsh -u "$uri" -c "
assert h.get_size() == 100 * 1024 * 1024, h.get_size()
assert not h.is_read_only()
"' || fail "default size is not 100M"

export TMPDIR=$tmpdir
"$NBDKIT" -U - example3 size=1M --run 'nbdsh -c "
h.connect_uri(\"$uri\")
assert h.get_size() == 1024 * 1024
assert h.pread(4096, 0) == bytes(4096)
h.pwrite(b\"hello\" * 1000, 1024 * 1024 - 5000)
h.flush()
assert h.pread(5000, 1024 * 1024 - 5000) == b\"hello\" * 1000
# A second connection at the same time sees a fresh, empty disk.
h2 = nbd.NBD()
h2.connect_uri(\"$uri\")
assert h2.pread(5000, 1024 * 1024 - 5000) == bytes(5000)
h2.pwrite(b\"x\", 0)
assert h.pread(1, 0) == b\"\\0\"
h2.shutdown()
h.shutdown()
# Reconnecting starts again from zeroes.
h3 = nbd.NBD()
h3.connect_uri(\"$uri\")
assert h3.pread(5000, 1024 * 1024 - 5000) == bytes(5000)
"' || fail "nbdsh checks failed"
# The temporary files were unlinked.
[ -z "$(ls "$tmpdir")" ] || fail "temporary files left behind: $(ls "$tmpdir")"

if "$NBDKIT" example3 size=foo --run true 2>"$tmpdir/err"; then
  fail "size=foo was accepted"
fi
grep -q "foo" "$tmpdir/err" || fail "error does not name the value: $(cat "$tmpdir/err")"
if TMPDIR=$tmpdir/missing "$NBDKIT" example3 --run true 2>"$tmpdir/err"; then
  fail "a missing \$TMPDIR was accepted"
fi
grep -q "$tmpdir/missing" "$tmpdir/err" ||
  fail "error does not name the directory: $(cat "$tmpdir/err")"
