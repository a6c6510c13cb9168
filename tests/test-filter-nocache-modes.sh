#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The nocache filter: for each cachemode=, whether the client is offered
# NBD_CMD_CACHE (can_cache) and what a cache request turns into below
# the filter (a log filter between it and the plugin): nothing offered,
# a read of the range, or nothing at all; data is never changed.  One
# nbdsh runs nbdkit -s once per mode.  Bad modes are refused.

source "${srcdir:-$(dirname "$0")}/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_filter nocache
requires_filter log

make_tmpdir
export tmpdir

nbdsh -c '
import os

def requests(log):
    # "DATE TIME connection=N Op id=N a=b c=d ...": the requests made.
    out = []
    for line in open(log):
        f = line.split()
        if len(f) > 3 and f[2].startswith("connection=") and f[-1] == "...":
            out.append(" ".join([f[3]] + f[5:7]))
    return out

for mode, can, below in ((None, False, []),
                         ("none", False, []),
                         ("emulate", True, ["Read offset=0x1000 count=0x2000"]),
                         ("nop", True, [])):
    log = "%s/log-%s" % (os.environ["tmpdir"], mode)
    argv = [os.environ["NBDKIT"], "-s", "--exit-with-parent",
            "--filter=nocache", "--filter=log", "memory", "1M",
            "logfile=" + log]
    if mode:
        argv.append("cachemode=" + mode)
    h = nbd.NBD()
    h.connect_command(argv)
    assert h.can_cache() == can, "cachemode=%s: can_cache %s" % (mode, not can)
    if can:
        h.cache(8192, 4096)
    h.shutdown()
    del h
    got = [r for r in requests(log)]
    assert got == below, "cachemode=%s: plugin saw %s, expected %s" % (mode, got, below)

# The data is unaffected by cache requests.
h = nbd.NBD()
h.connect_command([os.environ["NBDKIT"], "-s", "--exit-with-parent",
                   "--filter=nocache", "memory", "1M", "cachemode=nop"])
h.pwrite(b"abc" * 100, 1000)
h.cache(4096, 0)
assert h.pread(300, 1000) == b"abc" * 100
' || fail "cachemode checks failed"

rc=0
"$NBDKIT" -U - --filter=nocache memory 1M cachemode=disable --run true \
  2> "$tmpdir/err" || rc=$?
[ $rc -eq 1 ] || fail "cachemode=disable: exit status $rc, expected 1"
grep -q "cachemode.*disable" "$tmpdir/err" ||
  fail "cachemode=disable: the error does not name the parameter and value"

echo "$0: ok"
