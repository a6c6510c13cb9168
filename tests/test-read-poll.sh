#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Polling for the next request (nbdkit(1) --poll-max, server/read-poll.c).
# 1. A client sending one request at a time, with a mix of sizes (4 KiB
#    requests come through the read buffer, 1 MiB writes straight into
#    the request's buffer), checked against a model: polling finds
#    requests (the debug line at the end of the connection says how
#    often), and the data is right.
# 2. While that connection then stays idle for two seconds, the server
#    uses almost no CPU: the window closes on long waits.
# 3. --poll-max=0: the same traffic, no polling at all.
# 4. The same over TLS (PSK): the records are read by polling too.
# 5. -s on a pair of pipes (not a socket): requests are served, and the
#    connection does not poll.

source "${srcdir:-$(dirname "$0")}/functions.sh"
requires nbdsh --version
requires /usr/bin/python3 --version
requires_plugin memory
make_tmpdir

[ "$(nproc)" -ge 2 ] ||
  skip "one CPU: nbdkit never polls there (at most CPUs - 1 threads poll)"

# The client, run by nbdsh: QD1 requests checked against a model, then
# an idle pause during which the server's CPU time (utime + stime from
# /proc, in clock ticks) may grow by at most 30 ticks (0.3 s).
cat >"$tmpdir/client.py" <<'EOF'
import os, random, time
h.set_uri_allow_local_file(True)        # tls-psk-file=
h.connect_uri(os.environ["URI"])
if os.environ["URI"].startswith("nbds"):
    assert h.get_tls_negotiated(), "TLS was not negotiated"
pid = int(os.environ["SERVER_PID"])
tick = os.sysconf("SC_CLK_TCK")
def cpu_ticks():
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])

random.seed(11)
size = 16 * 1024 * 1024
model = bytearray(size)
for i in range(3000):
    n = random.choice([512, 4096, 4096, 4096, 65536, 1048576])
    off = random.randrange(0, size - n + 1, 512)
    if random.random() < 0.5:
        data = os.urandom(8) * (n // 8)
        h.pwrite(data, off)
        model[off:off + n] = data
    else:
        assert h.pread(n, off) == model[off:off + n], "read at %d" % off
h.flush()
assert h.pread(size, 0) == model, "whole disk differs from the model"

if os.environ.get("IDLE_CHECK"):
    before = cpu_ticks()
    time.sleep(2)
    used = cpu_ticks() - before
    print("server CPU while the client was idle for 2 s: %d ticks" % used)
    assert used <= 0.3 * tick, "server used %d ticks while idle" % used
EOF

# wait_for_line LOG REGEX: the server logs the line when the connection
# has gone (bounded).
wait_for_line ()
{
  local i
  for (( i=0; i<200; i++ )); do
    grep -Eq "$2" "$1" && return 0
    sleep 0.05
  done
  return 1
}

# run_case NAME URI-PREFIX ARGS...: the client over the Unix socket.
run_case ()
{
  local name=$1 uri=$2
  shift 2
  start_nbdkit -P "$tmpdir/$name.pid" -U "$tmpdir/$name.sock" -v "$@" \
    memory 16M 2>"$tmpdir/$name.log"
  SERVER_PID=$(cat "$tmpdir/$name.pid") \
    URI="$uri/?socket=$tmpdir/$name.sock${uri_query:-}" \
    nbdsh -c "exec(open('$tmpdir/client.py').read())" ||
    fail "$name: the client failed"
  # The polling report comes just before this line.
  wait_for_line "$tmpdir/$name.log" "debug: connection closed" ||
    fail "$name: the connection's end was not logged"
}

# 1 and 2.  A wide window (10 ms), so that a busy test machine's client
# still answers within it.
# check_found NAME: the connection polled and found requests.
check_found ()
{
  local line found
  line=$(grep -Eo "polled for the next request [0-9]+ times, found it [0-9]+ times" \
           "$tmpdir/$1.log") || {
    tail -20 "$tmpdir/$1.log" >&2
    fail "$1: no polling reported"
  }
  echo "$1: $line"
  found=$(awk '{ print $(NF - 1) }' <<<"$line")
  [ "$found" -gt 0 ] || fail "$1: polling never found a request"
}

IDLE_CHECK=1 run_case poll nbd+unix:// --poll-max=10000
check_found poll

# 3.
run_case nopoll nbd+unix:// --poll-max=0
! grep -q "polled for" "$tmpdir/nopoll.log" ||
  fail "nopoll: polled with --poll-max=0"

# 4.
if psktool --version >/dev/null 2>&1; then
  psktool -u alice -p "$tmpdir/keys.psk" >/dev/null || fail "psktool failed"
  uri_query="&tls-psk-file=$tmpdir/keys.psk" \
    run_case tls nbds+unix://alice@ --poll-max=10000 \
    --tls=require --tls-psk="$tmpdir/keys.psk"
  check_found tls
else
  echo "psktool (gnutls-bin) missing: the TLS case is not run"
fi

# 5.  A raw client on two pipes.
/usr/bin/python3 - "$NBDKIT" "$srcdir" "$tmpdir/pipe.log" <<'EOF' ||
import os, random, subprocess, sys
nbdkit, srcdir, log = sys.argv[1:4]
sys.path.insert(0, srcdir)
import raw_nbd

class Pipes:
    """The socket methods raw_nbd.Connection uses, over two pipes."""
    def __init__(self, rfd, wfd):
        self.rfd, self.wfd = rfd, wfd
    def settimeout(self, t):
        pass
    def sendall(self, data):
        while data:
            data = data[os.write(self.wfd, data):]
    def recv(self, n):
        return os.read(self.rfd, n)
    def close(self):
        os.close(self.rfd)
        os.close(self.wfd)

to_server, from_client = os.pipe()
to_client, from_server = os.pipe()
with open(log, "w") as err:
    p = subprocess.Popen([nbdkit, "-s", "-v", "memory", "4M"],
                         stdin=to_server, stdout=from_server, stderr=err)
os.close(to_server)
os.close(from_server)
c = raw_nbd.Connection(Pipes(to_client, from_client))
c.negotiate()
random.seed(3)
model = bytearray(4 << 20)
for i in range(500):
    n = random.choice([512, 4096, 65536])
    off = random.randrange(0, len(model) - n + 1, 512)
    data = os.urandom(n)
    c.write(off, data)          # raises on an error reply
    model[off:off + n] = data
    assert c.read(off, n) == data, "read differs"
c.send_request(raw_nbd.CMD_DISC)
assert c.sock.recv(1) == b"", "data after NBD_CMD_DISC"
c.close()
assert p.wait(timeout=30) == 0, "nbdkit -s exit status %d" % p.returncode
print("pipes: 500 writes and reads served")
EOF
  fail "pipes: see above"
! grep -q "polled for" "$tmpdir/pipe.log" || fail "pipes: polled on a pipe"
echo "OK"
