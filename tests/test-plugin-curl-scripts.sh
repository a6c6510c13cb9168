#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# header-script= and cookie-script= of the curl plugin against
# tests/curl_server.py: the script's headers and cookie reach the server
# (with $iteration and $url set), *-renew= reruns the script once the
# result is older than that, and a failing script fails the request with
# the script's exit status in the error.
source "${srcdir:-$(dirname "$0")}/functions.sh"
requires_plugin curl
requires nbdsh --version
requires nbdcopy --version
make_tmpdir
source "$srcdir/curl-functions.sh"
start_curl_server

# The cookie only the script knows opens /cookie/disk; the headers carry
# the iteration.  Renewing after 1 s: a read 1.2 s later sees a later
# iteration (more than one under a slow machine).
"$NBDKIT" -U - -r -v -D curl.scripts=1 curl "$url/cookie/disk" \
  header-script='echo "X-Iteration: $iteration"; echo "X-Url: $url"' \
  header-script-renew=1 \
  cookie-script='echo "session=abc123"' \
  --run 'nbdsh -u "$uri" -c "
import json, time
disk = open(\"'"$tmpdir"'/disk.img\", \"rb\").read()
assert h.pread(4096, 0) == disk[:4096]
time.sleep(1.2)
assert h.pread(4096, 65536) == disk[65536:65536 + 4096]
reqs = [json.loads(l) for l in open(\"'"$server_log"'\")]
its = [int(r[\"headers\"].get(\"x-iteration\")) for r in reqs]
assert its[0] == 0 and its[-1] >= 1 and its == sorted(its), its
for r in reqs:
    assert r[\"headers\"][\"x-url\"] == \"'"$url"'/cookie/disk\", r
    assert r[\"headers\"][\"cookie\"] == \"session=abc123\", r
"' 2>"$tmpdir/err" || fail "scripts: $(cat "$tmpdir/err")"
grep -q "header-script: X-Iteration: 0" "$tmpdir/err" ||
  fail "-D curl.scripts=1 did not log the headers: $(cat "$tmpdir/err")"

# A failing script: the client cannot connect, the reason is logged.
if "$NBDKIT" -U - -r curl "$url/disk" header-script='echo X-A: 1; exit 3' \
     --run 'nbdsh -u "$uri" -c "pass"' >"$tmpdir/out" 2>&1; then
  fail "a failing header-script let the client connect"
fi
grep -q "header-script: the script failed (exit status 3)" "$tmpdir/out" ||
  fail "failing script: $(cat "$tmpdir/out")"
# Debian's nbdkit 1.32 sends the same script results.
if /usr/bin/nbdkit curl --dump-plugin >/dev/null 2>&1; then
  : > "$server_log"
  /usr/bin/nbdkit -U - -r curl "$url/cookie/disk" \
    header-script='echo "X-Iteration: $iteration"; echo "X-Url: $url"' \
    cookie-script='echo "session=abc123"' \
    --run "nbdcopy \"\$uri\" $tmpdir/out.img" ||
    fail "Debian nbdkit with scripts failed"
  cmp -s "$tmpdir/out.img" "$tmpdir/disk.img" || fail "Debian: data differs"
  grep -q '"x-iteration": "0", "x-url": "'"$url"'/cookie/disk"' \
    "$server_log" || fail "Debian: $(head -2 "$server_log")"
fi
echo "$0: OK"
