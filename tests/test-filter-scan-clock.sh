#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The scan filter across connections of one server, watching the cache
# requests below it (log filter; delay filter at 50 ms each): the clock
# resuming for the next client, nothing prefetched between clients,
# scan-clock=false restarting at 0, scan-forever starting a second
# pass, and nbdkit stopped while scanning forever exiting cleanly.

source "${srcdir:-$(dirname "$0")}/functions.sh"
requires nbdsh --version
requires_plugin memory
requires_filter scan
requires_filter log
requires_filter delay

make_tmpdir
export tmpdir

# Server 1: the clock kept; server 2: scan-clock=false, scan-forever,
# run in the foreground so that its exit status can be checked.
start_nbdkit -P "$tmpdir/pid1" -U "$tmpdir/sock1" \
  --filter=scan --filter=delay --filter=log memory 16M \
  scan-size=1M delay-cache=50ms logfile="$tmpdir/log1"
"$NBDKIT" -f -P "$tmpdir/pid2" -U "$tmpdir/sock2" \
  --filter=scan --filter=delay --filter=log memory 8M \
  scan-size=1M delay-cache=50ms logfile="$tmpdir/log2" \
  scan-clock=false scan-forever=true 2> "$tmpdir/err2" &
server2=$!
cleanup_fn kill_pid $server2
for (( i = 0; i < 300; i++ )); do
  [ -S "$tmpdir/sock2" ] && break
  sleep 0.1
done
[ -S "$tmpdir/sock2" ] || fail "nbdkit (server 2) did not start: $(cat "$tmpdir/err2")"
export server2

nbdsh -c '
import os, signal, time
tmpdir = os.environ["tmpdir"]
M = 1 << 20

def caches(log):
    # Offsets (in MiB) of the cache requests, in order.
    out = []
    for line in open(log):
        f = line.split()
        if len(f) > 5 and f[3] == "Cache":
            out.append(int(f[5].split("=")[1], 16) // M)
    return out

def wait_for(cond, what, limit=20):
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.02)

# The clock: the second client resumes where the first stopped, and
# nothing is prefetched in between.
log = tmpdir + "/log1"
h = nbd.NBD()
h.connect_uri("nbd+unix:///?socket=" + tmpdir + "/sock1")
wait_for(lambda: len(caches(log)) >= 3, "three prefetches")
h.shutdown()
del h
n = len(caches(log))
time.sleep(0.3)
assert len(caches(log)) == n, "prefetching went on after the disconnect"
h = nbd.NBD()
h.connect_uri("nbd+unix:///?socket=" + tmpdir + "/sock1")
wait_for(lambda: len(caches(log)) > n, "the second client scan")
got = caches(log)
h.shutdown()
assert got[n] == got[n - 1] + 1, got

# scan-clock=false restarts at 0; scan-forever starts a second pass.
log = tmpdir + "/log2"
h = nbd.NBD()
h.connect_uri("nbd+unix:///?socket=" + tmpdir + "/sock2")
wait_for(lambda: len(caches(log)) >= 2, "two prefetches")
h.shutdown()
del h
n = len(caches(log))
h = nbd.NBD()
h.connect_uri("nbd+unix:///?socket=" + tmpdir + "/sock2")
wait_for(lambda: len(caches(log)) > n, "the second client scan")
assert caches(log)[n] == 0, caches(log)
wait_for(lambda: caches(log)[n:].count(0) >= 2, "a second pass")
got = caches(log)[n:]
assert got[:9] == list(range(8)) + [0], got

# Stop nbdkit while the scan is running.
os.kill(int(os.environ["server2"]), signal.SIGTERM)
' || fail "scan checks failed"

rc=0
wait $server2 || rc=$?
[ $rc -eq 0 ] || fail "nbdkit stopped while scanning: exit status $rc: $(cat "$tmpdir/err2")"
! grep -i "sanitizer\|assert" "$tmpdir/err2" || fail "nbdkit crashed at exit"

echo "$0: ok"
