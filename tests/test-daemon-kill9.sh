#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd durability: kill -9 of the daemon at random moments while
# exports are added, updated and removed, KILL9_OPS operations in all
# (default 1000, 60 in the sanitizer build) over many daemon lives.  After every kill the daemon
# starts again, and what it stored matches what it acknowledged: every
# acknowledged change is there, the one change in flight at the kill is
# either wholly there or wholly absent, no definition is half-written
# (no broken or temporary file, no failed export) or duplicated.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires /usr/bin/python3 -c 'from gi.repository import Gio'
requires_plugin memory
daemon_setup

# Each operation starts nbdkit processes: fewer under the sanitizers.
ops=1000
if grep -qa __asan_init "$NBDKIT"; then
  ops=60
fi
/usr/bin/python3 - "$NBDKITD" "$D" "${KILL9_OPS:-$ops}" "${KILL9_SEED:-$RANDOM}" \
    <<'PY' || fail "kill -9 durability (see above)"
import json, os, random, stat, subprocess, sys, threading, time
from gi.repository import Gio, GLib

nbdkitd, d, total, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
random.seed(seed)
print("seed", seed, "operations", total, flush=True)
state = d + "/state"
bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
log = open(d + "/daemon.log", "a")

class Died(Exception):
    pass

def call(method, args=None, path="/org/nbdkit/Daemon1",
         iface="org.nbdkit.Daemon1.Manager", sig=None):
    try:
        return bus.call_sync("org.nbdkit.Daemon1", path, iface, method,
                             GLib.Variant(sig, args) if sig else None,
                             None, Gio.DBusCallFlags.NO_AUTO_START, 30000,
                             None).unpack()
    except GLib.Error as e:
        if "org.nbdkit.Daemon1.Error" in e.message:
            raise AssertionError("unexpected named error: " + e.message)
        raise Died(e.message)

def has_owner():
    return bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                         "org.freedesktop.DBus", "NameHasOwner",
                         GLib.Variant("(s)", ("org.nbdkit.Daemon1",)), None,
                         0, -1, None).unpack()[0]

def start():
    p = subprocess.Popen([nbdkitd, "-v", "--state-dir=" + state,
                          "--runtime-dir=" + d + "/run", "--listen=none"],
                         stdout=log, stderr=log)
    t0 = time.monotonic()
    while not has_owner():
        assert p.poll() is None, "nbdkitd exited with %s at start" % p.returncode
        assert time.monotonic() - t0 < 20, "nbdkitd did not take its name"
        time.sleep(0.01)
    return p

# The model: what the daemon acknowledged.  name -> (description, size)
model = {}

def stored():
    """Every file in the state dir: complete, 0600, one per export."""
    found = {}
    for f in os.listdir(state):
        assert not f.startswith("."), "temporary file left: " + f
        assert not f.endswith(".broken"), "broken definition: " + f
        assert f.endswith(".json"), "unexpected file: " + f
        st = os.stat(state + "/" + f)
        assert stat.S_IMODE(st.st_mode) == 0o600, "mode of " + f
        o = json.load(open(state + "/" + f))
        assert o["v"] == 1 and o["name"] + ".json" == f, (f, o)
        assert o["name"] not in found, "duplicate " + o["name"]
        found[o["name"]] = (o.get("description"), dict(o["params"])["size"])
    return found

def check(pending):
    found = stored()
    listed = call("ListExports")[0]
    names = [n for n, plugin, st, path in listed]
    assert len(names) == len(set(names)), "duplicate exports: %s" % names
    assert sorted(names) == sorted(found), (sorted(names), sorted(found))
    assert all(st != "failed" for n, p, st, path in listed), listed
    if pending:
        name, before, after = pending
        got = found.get(name)
        assert got in (before, after), \
            "%s: %s is neither before (%s) nor after (%s)" % (name, got, before, after)
        if got is None:
            model.pop(name, None)
        else:
            model[name] = got
    for name in set(model) | set(found):
        assert model.get(name) == found.get(name), \
            "%s: acknowledged %s, stored %s" % (name, model.get(name), found.get(name))

ops = lives = 0
killed_in = {"add": 0, "update": 0, "remove": 0}
counter = 0
t_start = time.monotonic()
pending = None
while ops < total:
    # The daemon starts again with what it had stored.
    p = start()
    lives += 1
    check(pending[1:] if pending else None)
    killer = threading.Timer(random.uniform(0.05, 1.5), p.kill)
    killer.start()
    pending = None
    try:
        while ops < total:
            r = random.random()
            if not model or (r < 0.4 and len(model) < 60):
                counter += 1
                name, after = "k%d" % counter, ("d0", "1M")
                pending = ("add", name, None, after)
                call("AddExport", (name, "memory", [], [("size", "1M")],
                                   {"start": GLib.Variant("s", "manual"),
                                    "description": GLib.Variant("s", "d0")}),
                     sig="(ssasa(ss)a{sv})")
            elif r < 0.7:
                name = random.choice(sorted(model))
                desc, size = model[name]
                after = ("d%d" % ops, "%dM" % random.randint(1, 9)
                         if random.random() < 0.2 else size)
                pending = ("update", name, model[name], after)
                changes = {"description": GLib.Variant("s", after[0])}
                if after[1] != size:
                    changes["params"] = GLib.Variant("a(ss)", [("size", after[1])])
                call("Update", (changes,), path="/org/nbdkit/Daemon1/export/" + name,
                     iface="org.nbdkit.Daemon1.Export", sig="(a{sv})")
            else:
                name = random.choice(sorted(model))
                pending = ("remove", name, model[name], None)
                call("RemoveExport", (name, "safe"), sig="(ss)")
            kind, name, before, after = pending
            if after is None:
                del model[name]
            else:
                model[name] = after
            pending = None
            ops += 1
    except Died:
        ops += 1              # the operation in flight counts
        killed_in[pending[0]] += 1
    killer.cancel()
    p.kill()
    p.wait()
p = start()
check(pending[1:] if pending else None)
p.terminate()
assert p.wait() == 0, "nbdkitd exit status %s" % p.returncode
elapsed = time.monotonic() - t_start
print("%d operations, %d daemon lives, killed during %s, %d exports at the end, "
      "%.1f s" % (ops, lives, killed_in, len(model), elapsed))
PY
echo PASS
