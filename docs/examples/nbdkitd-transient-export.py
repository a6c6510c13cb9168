#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A libvirt-style client of nbdkitd (GDBus from python3-gi).

Creates a *transient* export (persist=false) with a secret parameter
passed as a file descriptor and a private unix: listener, waits for
State=running through PropertiesChanged, reads its URIs, serves one
client, and exits: nbdkitd removes the export when this process leaves
the bus.  This is what libvirt does today with a pidfile, a pipe and
pidfd polling, in one call.

Usage: nbdkitd-transient-export.py NAME PLUGIN SECRET-KEY SOCKET [KEY=VALUE...]
The secret's value is read from the environment variable SECRET (so it
is never on a command line).  With WAIT_FOR=PATH the script waits until
PATH exists before it exits (for tests).
"""

import os
import sys
import time

from gi.repository import Gio, GLib

BUS_NAME = "org.nbdkit.Daemon1"
MANAGER = "/org/nbdkit/Daemon1"


def main():
    name, plugin, secret_key, socket_path = sys.argv[1:5]
    params = [tuple(p.split("=", 1)) for p in sys.argv[5:]]
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)

    # The secret travels as a pipe's read end: never argv, never a file.
    rfd, wfd = os.pipe()
    os.write(wfd, os.environ["SECRET"].encode())
    os.close(wfd)
    fds = Gio.UnixFDList.new()
    index = fds.append(rfd)
    os.close(rfd)

    options = {
        "persist": GLib.Variant("b", False),
        "listeners": GLib.Variant("as", ["unix:" + socket_path]),
        "secrets": GLib.Variant("a{sh}", {secret_key: index}),
        "description": GLib.Variant("s", "transient export of pid %d" % os.getpid()),
    }
    args = GLib.Variant("(ssasa(ss)a{sv})", (name, plugin, [], params, options))
    reply, _ = bus.call_with_unix_fd_list_sync(
        BUS_NAME, MANAGER, "org.nbdkit.Daemon1.Manager", "AddExport",
        args, GLib.VariantType("(o)"), Gio.DBusCallFlags.NONE, -1, fds, None)
    path = reply.unpack()[0]
    print("export object:", path, flush=True)

    export = Gio.DBusProxy.new_sync(bus, Gio.DBusProxyFlags.NONE, None,
                                    BUS_NAME, path,
                                    "org.nbdkit.Daemon1.Export", None)
    loop = GLib.MainLoop()

    def on_changed(proxy, changed, invalidated):
        state = changed.unpack().get("State")
        if state:
            print("State:", state, flush=True)
        if state in ("running", "failed"):
            loop.quit()

    export.connect("g-properties-changed", on_changed)
    if export.get_cached_property("State").unpack() != "running":
        GLib.timeout_add_seconds(30, loop.quit)
        loop.run()
    state = export.get_cached_property("State").unpack()
    if state != "running":
        sys.exit("export did not start: %s" %
                 export.get_cached_property("LastError").unpack())

    uris = export.get_cached_property("URIs").unpack()
    print("URIs:", " ".join(uris), flush=True)

    # Serve a client (libnbd's Python binding).
    import nbd
    h = nbd.NBD()
    h.connect_uri(uris[0])
    print("client read:", h.pread(64, 0).rstrip(b"\0").decode(errors="replace"),
          flush=True)
    h.shutdown()

    wait_for = os.environ.get("WAIT_FOR")
    while wait_for and not os.path.exists(wait_for):
        time.sleep(0.05)
    # Leaving the bus removes the transient export.


if __name__ == "__main__":
    main()
