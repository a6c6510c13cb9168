#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The exitwhen filter with exit-when-pipe-closed: nbdkit gets the read
# end of a pipe; data written to the pipe does not stop it, closing the
# write end does (bounded wait).
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdinfo --version
requires_plugin memory
requires_filter exitwhen
make_tmpdir
export tmpdir

python3 - <<'PY' || fail "exit-when-pipe-closed misbehaved"
import os, subprocess, sys, time

tmpdir = os.environ["tmpdir"]
sock = tmpdir + "/sock"
r, w = os.pipe()
server = subprocess.Popen(
    [os.environ["NBDKIT"], "-f", "-U", sock, "-P", tmpdir + "/pid",
     "--filter=exitwhen", "memory", "1M",
     "exit-when-pipe-closed=%d" % r, "exit-when-poll=1"],
    pass_fds=[r])
os.close(r)
try:
    for _ in range(300):
        if os.path.exists(tmpdir + "/pid"):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("nbdkit did not start")
    uri = "nbd+unix:///?socket=" + sock
    subprocess.run(["nbdinfo", "--size", uri], check=True,
                   stdout=subprocess.DEVNULL)

    # Data in the pipe is not an event.
    os.write(w, b"hello")
    time.sleep(1.5)
    assert server.poll() is None, "the server exited while the pipe was open"
    subprocess.run(["nbdinfo", "--size", uri], check=True,
                   stdout=subprocess.DEVNULL)

    # Closing the write end is.
    os.close(w)
    server.wait(timeout=20)
    assert server.returncode == 0, server.returncode
finally:
    if server.poll() is None:
        server.kill()
        server.wait()
PY
