#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The curl plugin over HTTP against tests/curl_server.py: the data read
# through nbdsh, nbdcopy and qemu-img equals the file, also through a
# redirect, Basic authentication, a cookie (given, or set by a redirect
# with cookiefile=, saved by cookiejar=), over a Unix socket; header= and user-agent= reach
# the server.  Debian's
# nbdkit 1.32, when installed, reads the same bytes from the same server.
source "${srcdir:-$(dirname "$0")}/functions.sh"
requires_plugin curl
requires nbdcopy --version
requires nbdsh --version
make_tmpdir
source "$srcdir/curl-functions.sh"
start_curl_server --unix "$tmpdir/http.sock"

# copy_ok NBDKIT NAME ARGS...: nbdcopy through NBDKIT curl ARGS reads
# exactly disk.img.
copy_ok ()
{
  local nbdkit=$1 name=$2
  shift 2
  rm -f "$tmpdir/out.img"
  "$nbdkit" -U - -r curl "$@" --run "nbdcopy \"\$uri\" $tmpdir/out.img" \
    >"$tmpdir/err" 2>&1 || fail "$name: nbdkit curl $*: $(cat "$tmpdir/err")"
  cmp -s "$tmpdir/out.img" "$tmpdir/disk.img" || fail "$name: data differs"
}

copy_ok "$NBDKIT" redirect "$url/redirect/disk"
copy_ok "$NBDKIT" auth "$url/auth/disk" user=alice password=+<(echo secret)
copy_ok "$NBDKIT" cookie "$url/cookie/disk" cookie='other=1; session=abc123'
copy_ok "$NBDKIT" cookiefile "$url/setcookie/disk" cookiefile= \
  cookiejar="$tmpdir/jar"
grep -q 'session.abc123' "$tmpdir/jar" || fail "cookiejar: $(cat "$tmpdir/jar")"
copy_ok "$NBDKIT" unix-socket-path http://localhost/disk \
  unix-socket-path="$tmpdir/http.sock"
grep -q '"client": "unix"' "$server_log" || fail "nothing came over the Unix socket"

# nbdsh: size, flags, reads at odd offsets and lengths, and the headers
# the server saw for them.
: > "$server_log"
"$NBDKIT" -U - -r curl "$url/disk" header='X-Test: one' header='Accept:' \
  user-agent='nbdkit-test/1' --run 'nbdsh -u "$uri" -c "
import json
disk = open(\"'"$tmpdir"'/disk.img\", \"rb\").read()
assert h.get_size() == len(disk) == 1048576
assert h.can_multi_conn()
assert h.is_read_only()
for off, n in ((0, 1), (1, 511), (4095, 2), (1048575, 1), (300000, 100001),
               (0, 1048576)):
    assert h.pread(n, off) == disk[off:off + n], (off, n)
reqs = [json.loads(l) for l in open(\"'"$server_log"'\")]
ranges = [r[\"headers\"].get(\"range\") for r in reqs if r[\"method\"] == \"GET\"]
assert \"bytes=300000-400000\" in ranges, ranges
assert len(reqs) >= 7, reqs
for r in reqs:
    assert r[\"headers\"].get(\"x-test\") == \"one\", r
    assert r[\"headers\"].get(\"user-agent\") == \"nbdkit-test/1\", r
    assert \"accept\" not in r[\"headers\"], r
"' || fail "nbdsh checks failed"

# qemu-img sees a raw image of the right size.
if qemu-img --version >/dev/null 2>&1; then
  "$NBDKIT" -U - -r curl "$url/disk" \
    --run 'qemu-img info --output=json "$uri"' > "$tmpdir/info" ||
    fail "qemu-img info failed"
  grep -q '"virtual-size": 1048576' "$tmpdir/info" ||
    fail "qemu-img info: $(cat "$tmpdir/info")"
fi

# Debian's nbdkit 1.32 on the same server reads the same bytes.
if /usr/bin/nbdkit curl --dump-plugin >/dev/null 2>&1; then
  copy_ok /usr/bin/nbdkit debian-plain "$url/disk"
  copy_ok /usr/bin/nbdkit debian-auth "$url/auth/disk" user=alice \
    password=secret
fi
echo "$0: OK"
