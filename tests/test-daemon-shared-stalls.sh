#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd's shared listener never waits for one client: a silent client,
# a client trickling an option a byte at a time and a client that sends
# options but never reads the replies are all connected while nbdinfo is
# served; --handshake-timeout closes the silent and the trickling ones;
# past 256 clients in the option phase the oldest is closed.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires which nbdinfo
requires_plugin memory
daemon_setup
port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port --handshake-timeout=60
uri="nbd://127.0.0.1:$port/disk"
desc=$(printf 'd%.0s' $(seq 4000))
add_export disk memory '@as []' '[("size", "1M")]' \
    "{'description': <'$desc'>}" >/dev/null || fail "AddExport disk"
wait_state disk running

# stall MODE COUNT: COUNT clients of one kind; each line of $D/MODE.log
# says what happened ("greeted", "closed after S s").
stall ()
{
  /usr/bin/python3 - "$port" "$1" "$2" "$D/$1.log" <<'PY' &
import os, socket, struct, sys, time
port, mode, count, log = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        assert c, "EOF"
        b += c
    return b
def say(s):
    with open(log, "a") as f: f.write(s + "\n")
IHAVEOPT = 0x49484156454F5054
socks = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    assert len(s.recv(18, socket.MSG_WAITALL)) == 18
    socks.append((s, time.monotonic()))
say("greeted %d" % count)
if mode == "nonreader":
    s = socks[0][0]
    s.sendall(struct.pack(">I", 1))
    # NBD_OPT_LIST again and again; never read the 4 KiB replies.
    lst = struct.pack(">QII", IHAVEOPT, 3, 0)
    s.setblocking(False)
    sent = 0
    try:
        for i in range(5000):
            s.send(lst); sent += 1
    except BlockingIOError:
        pass
    say("sent %d options" % sent)
    s.setblocking(True)
    while not os.path.exists(log + ".drain"):
        time.sleep(0.1)
    # Every option gets its replies: the daemon kept them for us.
    s.settimeout(30)
    acks = servers = 0
    while acks < sent:
        magic, option, reply, length = struct.unpack(">QIII", recv_exact(s, 20))
        assert magic == 0x3e889045565a9 and option == 3, (magic, option)
        recv_exact(s, length)
        if reply == 1: acks += 1
        else: servers += 1
    say("drained %d acks %d exports" % (acks, servers))
    time.sleep(1000)
opt = struct.pack(">I", 1) + struct.pack(">QII", IHAVEOPT, 7, 8) + b"\0\0\0\4disk"
pos = 0
while socks:
    for s, t in list(socks):
        if mode == "trickle" and pos < len(opt) - 1:
            try: s.send(opt[pos:pos + 1])
            except OSError: pass
        s.settimeout(0.01)
        try:
            eof = s.recv(1) == b""
        except socket.timeout:
            eof = False
        except OSError:
            eof = True
        if eof:
            say("closed after %.1f s" % (time.monotonic() - t))
            socks.remove((s, t))
    pos += 1
    time.sleep(0.3)
PY
  cleanup_fn kill_pid $!
  eval "${1}_pid=$!"
}
wait_log ()
{
  local i
  for (( i=0; i<400; i++ )); do
    grep -q "$2" "$D/$1.log" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "$1: no '$2' in $(cat "$D/$1.log" 2>/dev/null)"
}

stall silent 1
stall trickle 1
stall nonreader 1
wait_log silent greeted
wait_log trickle greeted
wait_log nonreader "sent"
cat "$D/nonreader.log"

# Clients are served meanwhile, each in well under the 60 s the stalled
# ones may take.
start=$SECONDS
for i in 1 2 3 4 5; do
  [ "$(nbdinfo --size "$uri")" = 1048576 ] || fail "nbdinfo $i"
  nbdinfo --list "nbd://127.0.0.1:$port" > "$D/list" || fail "nbdinfo --list $i"
  grep -q 'export="disk"' "$D/list" || fail "nbdinfo --list $i: $(cat "$D/list")"
done
(( SECONDS - start < 25 )) || fail "clients waited for the stalled ones"
for m in silent trickle nonreader; do
  grep -q closed "$D/$m.log" && fail "$m client closed early: $(cat "$D/$m.log")"
done
"${BUSCTL[@]}" get-property org.nbdkit.Daemon1 /org/nbdkit/Daemon1 \
    org.nbdkit.Daemon1.Manager ExportCount | grep -qx 'u 1' ||
  fail "the bus is not served"
# The client that did not read gets every reply once it reads.
echo "served in $((SECONDS - start)) s"; touch "$D/nonreader.log.drain"
n=$(sed -n 's/^sent \([0-9]*\) options/\1/p' "$D/nonreader.log")
wait_log nonreader "drained $n acks $n exports"

# --handshake-timeout: the silent and the trickling client are closed.
stop_daemon
kill_pid "$silent_pid"; kill_pid "$trickle_pid"; kill_pid "$nonreader_pid"
rm -f "$D"/*.log
start_daemon --listen=tcp:127.0.0.1:$port --handshake-timeout=2
stall silent 1
stall trickle 1
wait_log silent "closed after"
wait_log trickle "closed after"
cat "$D/silent.log" "$D/trickle.log"
grep -q 'picked no export within 2 s' "$D/daemon.log" || fail "no log line"
[ "$(nbdinfo --size "$uri")" = 1048576 ] || fail "nbdinfo after the timeouts"

# The cap: 260 silent clients; the oldest 4 are closed, nbdinfo is served.
stop_daemon
kill_pid "$silent_pid"; kill_pid "$trickle_pid"
rm -f "$D"/*.log
start_daemon --listen=tcp:127.0.0.1:$port --handshake-timeout=60
stall silent 260
wait_log silent "greeted 260"
for (( i=0; i<100; i++ )); do
  [ "$(grep -c closed "$D/silent.log")" -ge 4 ] && break
  sleep 0.1
done
[ "$(grep -c closed "$D/silent.log")" -ge 4 ] || fail "the oldest were not closed"
grep -q 'clients in the option phase, closing the oldest' "$D/daemon.log" ||
  fail "no log line for the cap"
[ "$(nbdinfo --size "$uri")" = 1048576 ] || fail "nbdinfo past the cap"
echo PASS
