#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The count filter: with -v, each connection's bytes read, written,
# zeroed and trimmed are reported when it closes, and the totals over
# all connections when nbdkit exits; failed requests do not count; the
# data passes through unchanged.

source "$srcdir/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_filter count
requires_filter protect

make_tmpdir
export tmpdir

cat > "$tmpdir/first.py" <<'EOF'
h.pwrite(b"a" * 512, 4096)
assert h.pread(1024, 4096) == b"a" * 512 + bytes(512)
h.zero(8192, 65536)
h.trim(4096, 131072)
EOF
cat > "$tmpdir/second.py" <<'EOF'
import errno
h.pwrite(b"b" * 1000, 0)
assert h.pread(100, 0) == b"b" * 100
try:
    h.pwrite(b"c", 0x80000)          # protected: fails, not counted
    raise AssertionError("protected write succeeded")
except nbd.Error as e:
    assert e.errnum == errno.EPERM
EOF
"$NBDKIT" -v -U - --filter=count --filter=protect memory 1M \
  protect=0x80000- \
  --run 'nbdsh -u "$uri" -c - < "$tmpdir/first.py" &&
         nbdsh -u "$uri" -c - < "$tmpdir/second.py"' \
  2> "$tmpdir/stderr" || { cat "$tmpdir/stderr"; fail "client failed"; }

grep ' debug: \(connection\|total\) bytes:' "$tmpdir/stderr" |
  sed 's/.* debug: //' > "$tmpdir/counts"
cat > "$tmpdir/expected" <<'EOF'
connection bytes: read 1024, written 512, zeroed 8192, trimmed 4096
connection bytes: read 100, written 1000, zeroed 0, trimmed 0
total bytes: read 1124, written 1512, zeroed 8192, trimmed 4096
EOF
diff -u "$tmpdir/expected" "$tmpdir/counts" ||
  fail "the counts are wrong"

# Without -v nothing is printed.
"$NBDKIT" -U - --filter=count memory 1M \
  --run 'nbdsh -u "$uri" -c "h.pwrite(b\"x\" * 512, 0)"' \
  2> "$tmpdir/stderr" || fail "client failed"
! grep -q 'bytes:' "$tmpdir/stderr" || fail "counts printed without -v"

echo "$0: ok"
