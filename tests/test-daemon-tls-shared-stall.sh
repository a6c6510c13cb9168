#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd's shared listener with STARTTLS: clients that stall in the TLS
# handshake (silent after the ACK, or half a ClientHello) do not hold up
# a PSK client, which is served meanwhile, and are closed after
# --handshake-timeout.  nbdkitctl --tls-allow changes who may see the
# export.  Unreadable TLS credentials stop nbdkitd at
# start-up with exit status 1.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/tls-functions.sh"
source "$srcdir/daemon-functions.sh"
requires_tls
requires which nbdinfo
requires_plugin memory
daemon_setup
mkdir -p "$D/tls"
psktool -u alice -p "$D/tls/keys.psk" >/dev/null 2>&1 || fail "psktool"

# Bad credentials: a clear error naming the option, exit status 1.
bad ()
{
  local out st=0
  out=$("$NBDKITD" --state-dir="$D/bad" --runtime-dir="$D/bad" --listen=none \
        "$@" 2>&1) || st=$?
  [ $st = 1 ] || fail "nbdkitd $*: exit status $st: $out"
  grep -q -- "${1%%=*}" <<<"$out" || fail "nbdkitd $*: error does not name it: $out"
  echo "ok: $out"
}
bad --tls-psk="$D/none.psk"
echo "no keys here" > "$D/empty.psk"
bad --tls-psk="$D/empty.psk"
bad --tls-certificates="$D/tls"

port=$(free_tcp_port)
start_daemon --listen=tcp:127.0.0.1:$port --handshake-timeout=3 \
    --tls-psk="$D/tls/keys.psk"
add_export disk memory '@as []' '[("size", "1M")]' \
    "{'tls': <'require'>, 'tls-allow': <['alice']>}" >/dev/null ||
  fail "AddExport disk"
wait_state disk running

# MODE silent: nothing after the STARTTLS ACK; half: 5 bytes of a TLS
# record header and a little of its body, then nothing.
stall ()
{
  /usr/bin/python3 - "$port" "$1" "$D/$1.log" <<'PY' &
import socket, struct, sys, time
port, mode, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def say(s):
    with open(log, "a") as f: f.write(s + "\n")
s = socket.create_connection(("127.0.0.1", port))
assert len(s.recv(18, socket.MSG_WAITALL)) == 18
s.sendall(struct.pack(">I", 1) + struct.pack(">QII", 0x49484156454F5054, 5, 0))
magic, opt, reply, length = struct.unpack(">QIII", s.recv(20, socket.MSG_WAITALL))
assert opt == 5 and reply == 1, (opt, reply)
if mode == "half":
    s.sendall(b"\x16\x03\x01\x01\x00\x01\x00\x00")
t = time.monotonic()
say("in handshake")
s.settimeout(60)
try:
    while s.recv(4096):
        pass
except OSError:
    pass
say("closed after %.1f s" % (time.monotonic() - t))
PY
  cleanup_fn kill_pid $!
}
wait_log ()
{
  local i
  for (( i=0; i<300; i++ )); do
    grep -q "$2" "$D/$1.log" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "$1: no '$2' in $(cat "$D/$1.log" 2>/dev/null)"
}

stall silent
stall half
wait_log silent "in handshake"
wait_log half "in handshake"
uri="nbds://alice@127.0.0.1:$port/disk?tls-psk-file=$D/tls/keys.psk"
[ "$(nbdinfo --size "$uri")" = 1048576 ] || fail "alice not served"
for m in silent half; do
  grep -q closed "$D/$m.log" && fail "$m closed before alice was served"
done
wait_log silent "closed after"
wait_log half "closed after"
cat "$D/silent.log" "$D/half.log"
grep -q 'picked no export within 3 s' "$D/daemon.log" || fail "no log line"
[ "$(nbdinfo --size "$uri")" = 1048576 ] || fail "alice after the timeouts"

# nbdkitctl --tls-allow: the export is bob's now; alice no longer sees it.
"$abs_top_builddir/ctl/nbdkitctl" --system --no-ask-password \
    update-export disk --tls-allow=bob || fail "nbdkitctl update-export"
[ "$(eprop disk TLSAllow)" = '1 "bob' ] || fail "TLSAllow: $(eprop disk TLSAllow)"
nbdinfo --size "$uri" >/dev/null 2>&1 && fail "alice still served"
echo PASS
