#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A server that drops the connection in the middle of each answer
# (tests/curl_server.py /drop/disk): every read fails with EIO, never
# with short or stale data, and nbdkit keeps serving; with the
# retry-request filter a server dropping only the first try of each read
# (/flaky/disk) gives exactly the file.  Debian's nbdkit 1.32 fails the
# same reads.
source "${srcdir:-$(dirname "$0")}/functions.sh"
requires_plugin curl
requires_filter retry-request
requires nbdsh --version
requires nbdcopy --version
make_tmpdir
source "$srcdir/curl-functions.sh"
start_curl_server

"$NBDKIT" -U - -r curl "$url/drop/disk" connections=2 --run 'nbdsh -u "$uri" -c "
import errno
assert h.get_size() == 1048576
for off, n in ((0, 65536), (4096, 1), (1048064, 512), (0, 65536)):
    try:
        h.pread(n, off)
        raise AssertionError(\"read at %d succeeded\" % off)
    except nbd.Error as e:
        assert e.errnum == errno.EIO, e
"' > "$tmpdir/out" 2>&1 || fail "drop: $(cat "$tmpdir/out")"
grep -q "transfer closed with 32768 bytes remaining" "$tmpdir/out" ||
  fail "drop: no error for the lost data: $(cat "$tmpdir/out")"

"$NBDKIT" -U - -r --filter=retry-request curl "$url/flaky/disk" \
  retry-request-delay=0.01 \
  --run "nbdcopy \"\$uri\" $tmpdir/out.img" 2>"$tmpdir/err" ||
  fail "flaky with retry-request: $(cat "$tmpdir/err")"
cmp -s "$tmpdir/out.img" "$tmpdir/disk.img" || fail "flaky: data differs"
grep -q "transfer closed" "$tmpdir/err" ||
  fail "flaky: the server did not drop anything"

if /usr/bin/nbdkit curl --dump-plugin >/dev/null 2>&1; then
  if /usr/bin/nbdkit -U - -r curl "$url/drop/disk" \
       --run "nbdcopy \"\$uri\" $tmpdir/out.img" 2>"$tmpdir/err"; then
    fail "Debian nbdkit: read from /drop succeeded"
  fi
  grep -q "Transferred a partial file" "$tmpdir/err" ||
    fail "Debian nbdkit: $(cat "$tmpdir/err")"
fi
echo "$0: OK"
