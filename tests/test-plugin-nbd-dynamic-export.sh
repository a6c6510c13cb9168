#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# dynamic-export=true: the client's export name goes upstream.  Upstream
# is nbdkit serving exports "foo" and "bar" (info plugin: each export's
# contents are its own name; exportname filter: the list, descriptions,
# and "foo" as the canonical default export), then nbd-server with two
# exports holding different files.  Through the proxy: the export list
# and its descriptions, each name reaching its own export, the default
# export under its canonical name, the URI's export name replaced by
# the client's, and a missing export refused.  Without dynamic-export,
# every name reaches the configured export and only it is listed.

source "$srcdir/functions.sh"
source "$srcdir/test-plugin-nbd-helpers.bash"
requires nbdsh --version
requires nbdinfo --version
requires_plugin nbd
requires_plugin info
requires_filter exportname

make_tmpdir
export tmpdir
sock=$tmpdir/upstream.sock
start_nbdkit -P "$tmpdir/upstream.pid" -U "$sock" --filter=exportname \
  info exportname=foo exportname=bar exportname-list=explicit \
  exportname-strict=true default-export=foo exportdesc="fixed:an export"

# contents URI: print the whole export.
contents ()
{
  nbdsh -u "$1" -c 'import sys; sys.stdout.write(h.pread(h.get_size(), 0).decode())' ||
    fail "reading $1 failed"
}

# proxy NAME ARGS...: a background nbd proxy on $tmpdir/NAME.sock.
proxy ()
{
  local name=$1
  shift
  start_nbdkit -P "$tmpdir/$name.pid" -U "$tmpdir/$name.sock" nbd "$@"
  psock=$tmpdir/$name.sock
}

proxy dynamic socket="$sock" dynamic-export=true
nbdinfo --list --json "nbd+unix:///?socket=$psock" >"$tmpdir/list.json" ||
  fail "listing exports through the proxy failed"
[ "$(contents "nbd+unix:///foo?socket=$psock")" = foo ] ||
  fail "export foo does not reach foo"
[ "$(contents "nbd+unix:///bar?socket=$psock")" = bar ] ||
  fail "export bar does not reach bar"
# The default export is foo, and the client is told its name.
[ "$(contents "nbd+unix:///?socket=$psock")" = foo ] ||
  fail "the default export is not foo"
nbdinfo --json "nbd+unix:///?socket=$psock" >"$tmpdir/default.json" ||
  fail "nbdinfo on the default export failed"
if nbdinfo --size "nbd+unix:///baz?socket=$psock" 2>/dev/null; then
  fail "export baz, which upstream does not have, was served"
fi
/usr/bin/python3 - "$tmpdir" <<'PY' || fail "wrong export list or default export"
import json, sys
d = sys.argv[1]
lst = json.load(open(d + "/list.json"))
names = [e["export-name"] for e in lst["exports"]]
assert names == ["foo", "bar"], names
for e in lst["exports"]:
    assert e.get("description") == "an export", e
default = json.load(open(d + "/default.json"))
assert default["exports"][0]["export-name"] == "foo", default
PY

# A URI names export foo, but the client's name wins.
proxy uri "nbd+unix:///foo?socket=$sock" dynamic-export=true
[ "$(contents "nbd+unix:///bar?socket=$psock")" = bar ] ||
  fail "dynamic-export=true did not replace the URI's export name"

# Without dynamic-export: every name reaches export=bar, only one listed.
proxy static socket="$sock" export=bar
[ "$(contents "nbd+unix:///foo?socket=$psock")" = bar ] ||
  fail "a fixed export= did not serve name foo"
[ "$(contents "nbd+unix:///anything?socket=$psock")" = bar ] ||
  fail "a fixed export= did not serve name anything"
nbdinfo --list --json "nbd+unix:///?socket=$psock" >"$tmpdir/static.json" ||
  fail "listing without dynamic-export failed"
/usr/bin/python3 - "$tmpdir" <<'PY' || fail "wrong list without dynamic-export"
import json, sys
lst = json.load(open(sys.argv[1] + "/static.json"))
assert len(lst["exports"]) == 1, lst
PY

# nbd-server with two exports.
if ! nbd-server -V >/dev/null 2>&1; then
  echo "$0: nbd-server part: SKIP (nbd-server is not installed)"
  echo "$0: ok"
  exit 0
fi
printf 'first export\n' >"$tmpdir/one.img"
truncate -s 1M "$tmpdir/one.img"
printf 'second export\n' >"$tmpdir/two.img"
truncate -s 2M "$tmpdir/two.img"
cat >"$tmpdir/nbd-server.conf" <<EOF
[generic]
  allowlist = true
  unixsock = $tmpdir/ns.sock
[one]
  exportname = $tmpdir/one.img
[two]
  exportname = $tmpdir/two.img
EOF
nbd-server -C "$tmpdir/nbd-server.conf" -p "$tmpdir/ns.pid" ||
  fail "nbd-server did not start"
wait_for_path "$tmpdir/ns.pid"
cleanup_fn kill_pid "$(cat "$tmpdir/ns.pid")"
wait_for_path "$tmpdir/ns.sock"

proxy nsproxy socket="$tmpdir/ns.sock" dynamic-export=true
nbdinfo --list --json "nbd+unix:///?socket=$psock" >"$tmpdir/ns-list.json" ||
  fail "listing nbd-server's exports through the proxy failed"
[ "$(nbdinfo --size "nbd+unix:///one?socket=$psock")" = 1048576 ] ||
  fail "export one has the wrong size"
[ "$(nbdinfo --size "nbd+unix:///two?socket=$psock")" = 2097152 ] ||
  fail "export two has the wrong size"
nbdsh -u "nbd+unix:///one?socket=$psock" \
  -c 'assert h.pread(13, 0) == b"first export\n"' ||
  fail "export one has the wrong contents"
nbdsh -u "nbd+unix:///two?socket=$psock" \
  -c 'assert h.pread(14, 0) == b"second export\n"' ||
  fail "export two has the wrong contents"
/usr/bin/python3 - "$tmpdir" <<'PY' || fail "wrong export list from nbd-server"
import json, sys
lst = json.load(open(sys.argv[1] + "/ns-list.json"))
names = sorted(e["export-name"] for e in lst["exports"])
assert names == ["one", "two"], names
PY

echo "$0: ok"
