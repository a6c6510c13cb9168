#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd ListPlugins/ListFilters do not block the daemon: while the
# first probe runs, ListExports is answered at once; concurrent callers
# share one probe and get the same lists; later calls come from the
# cache, and Reload probes again.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires /usr/bin/python3 -c 'from gi.repository import Gio'
requires_plugin memory
requires_filter delay
daemon_setup
start_daemon

cat > "$D/calls.py" <<'PY'
import sys
from gi.repository import Gio, GLib
bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
loop = GLib.MainLoop()
calls = sys.argv[1:]
replies = []
def call(method, tag):
    def done(conn, res):
        replies.append((tag, conn.call_finish(res).unpack()[0]))
        if len(replies) == len(calls):
            loop.quit()
    bus.call("org.nbdkit.Daemon1", "/org/nbdkit/Daemon1",
             "org.nbdkit.Daemon1.Manager", method, None, None,
             Gio.DBusCallFlags.NONE, 240000, None, done)
# One connection: the daemon receives the calls in this order.
for i, method in enumerate(calls):
    call(method, "%s-%d" % (method, i))
# A probe loads every module: minutes under the sanitizers on a busy
# machine (meson's limit for the test is 120 s, 360 s with sanitizers).
GLib.timeout_add_seconds(240, loop.quit)
loop.run()
assert len(replies) == len(calls), replies
order = [t for t, _ in replies]
print("reply order:", order)
by = {t: v for t, v in replies}
plugins = [v for t, v in replies if t.startswith("ListPlugins")]
filters = [v for t, v in replies if t.startswith("ListFilters")]
assert all(p == plugins[0] for p in plugins), "ListPlugins differ"
assert all(f == filters[0] for f in filters), "ListFilters differ"
names = [n for n, v, d in plugins[0]]
assert "memory" in names and names == sorted(names), names
assert all(v and d for n, v, d in plugins[0]), plugins[0]
assert "delay" in [n for n, v, d in filters[0]], filters[0]
if "first" in open("/dev/stdin").read():
    # ListExports was answered before any list: nothing waited for the probe.
    assert order[0].startswith("ListExports"), order
import json
json.dump({"plugins": plugins[0], "filters": filters[0]}, open(sys.argv[0] + ".out", "w"))
PY
run_calls () { echo "$1" | /usr/bin/python3 "$D/calls.py" "${@:2}"; }

run_calls first ListPlugins ListFilters ListPlugins ListExports ListPlugins ||
  fail "the first, concurrent calls"
cp "$D/calls.py.out" "$D/first.json"
# From the cache: the same lists.
run_calls cached ListPlugins ListFilters || fail "cached calls"
cmp "$D/first.json" "$D/calls.py.out" || fail "the cached lists differ"
# Reload forgets the cache; the next probe finds the same modules.
mcall Reload || fail Reload
run_calls first ListFilters ListExports ListPlugins || fail "after Reload"
cmp "$D/first.json" "$D/calls.py.out" || fail "the lists after Reload differ"
grep -c 'Cannot list' "$D/daemon.log" && fail "a list failed"
echo PASS
