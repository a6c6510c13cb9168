#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The environment of a --run command:
# - -U -: $unixsocket is a live socket in a private directory, $port is
#   empty, $exportname is empty, $uri is nbd+unix:...?socket=$unixsocket,
#   $nbd equals $uri, and a client connects with it; after exit the
#   socket and its directory are gone;
# - -U - -e NAME (also a name needing percent-encoding): $exportname is
#   NAME and the client that parses $uri asks for NAME;
# - -i 127.0.0.1 -p PORT: $port is PORT, $unixsocket is empty, $uri is
#   nbd://...:PORT and a client connects with it;
# - --tls off (the default): $tls is unset or empty (as nbdkit-captive(1)
#   documents); with --tls=on / --tls=require and a PSK, $tls is 1 / 2
#   and $uri is nbds+unix (that part is skipped if TLS is unavailable);
# - --run implies -f: the command's parent is the nbdkit we started, and
#   the pidfile names it.

source "$srcdir/functions.sh"
requires nbdsh --version
requires nbdinfo --version
requires /usr/bin/python3 --version
requires_plugin memory

make_tmpdir
cd "$tmpdir" || fail "cd $tmpdir"

# Record the variables, one per line, as the command saw them.
dump='for v in uri nbd port unixsocket exportname; do
        eval "printf \"%s=%s\\n\" $v \"\${$v-<unset>}\""
      done
      printf "tls=%s\n" "${tls-<unset>}"
      [ -z "$unixsocket" ] || [ -S "$unixsocket" ] || echo "unixsocket-not-a-socket"
      [ -z "$unixsocket" ] || stat -c "dirmode=%a" "$(dirname "$unixsocket")"
      nbdsh -u "$uri" -c "print(\"client-export=\" + h.get_export_name())" \
                      -c "print(\"client-size=%d\" % h.get_size())"'

# get NAME FILE: the value recorded for NAME.
get () { sed -n "s/^$1=//p" "$2"; }

# --- -U - ----------------------------------------------------------------
timeout 60 "$NBDKIT" -U - memory 1M --run "$dump" >unix.out ||
  fail "-U -: captive run failed: $(cat unix.out)"
sock=$(get unixsocket unix.out)
uri=$(get uri unix.out)
[ -n "$sock" ] || fail "-U -: \$unixsocket is empty"
case $sock in /*) ;; *) fail "-U -: \$unixsocket is not absolute: $sock" ;; esac
grep -q unixsocket-not-a-socket unix.out && fail "-U -: $sock is not a socket"
[ "$(get dirmode unix.out)" = 700 ] ||
  fail "-U -: the socket's directory is mode $(get dirmode unix.out), not private (700)"
[ -z "$(get port unix.out)" ] || fail "-U -: \$port is '$(get port unix.out)'"
[ -z "$(get exportname unix.out)" ] || fail "-U -: \$exportname is not empty"
[[ $uri == nbd+unix://* ]] || fail "-U -: \$uri is not nbd+unix: $uri"
[[ $uri == *"?socket=$sock" ]] || fail "-U -: \$uri does not name $sock: $uri"
[ "$(get nbd unix.out)" = "$uri" ] || fail "-U -: \$nbd '$(get nbd unix.out)' != \$uri"
[ "$(get client-size unix.out)" = 1048576 ] || fail "-U -: client could not use \$uri"
[ -z "$(get client-export unix.out)" ] || fail "-U -: client asked for a named export"
[ ! -e "$sock" ] || fail "-U -: $sock still exists after nbdkit exited"
[ ! -e "$(dirname "$sock")" ] ||
  fail "-U -: directory $(dirname "$sock") still exists after nbdkit exited"
echo "ok: -U -: $uri"

# --- -U - -e NAME --------------------------------------------------------
for name in disk1 'a b/c%d'; do
  timeout 60 "$NBDKIT" -U - -e "$name" memory 1M --run "$dump" >export.out ||
    fail "-e '$name': captive run failed: $(cat export.out)"
  [ "$(get exportname export.out)" = "$name" ] ||
    fail "-e '$name': \$exportname is '$(get exportname export.out)'"
  [ "$(get client-export export.out)" = "$name" ] ||
    fail "-e '$name': a client using \$uri ($(get uri export.out)) asked for '$(get client-export export.out)'"
  [ "$(get client-size export.out)" = 1048576 ] || fail "-e '$name': client failed"
  echo "ok: -e '$name': $(get uri export.out)"
done

# --- TCP loopback, -p PORT -----------------------------------------------
port=$(/usr/bin/python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
timeout 60 "$NBDKIT" -i 127.0.0.1 -p "$port" memory 1M --run "$dump" >tcp.out ||
  fail "-p: captive run failed: $(cat tcp.out)"
uri=$(get uri tcp.out)
[ "$(get port tcp.out)" = "$port" ] || fail "-p: \$port is '$(get port tcp.out)'"
[ -z "$(get unixsocket tcp.out)" ] || fail "-p: \$unixsocket is '$(get unixsocket tcp.out)'"
[[ $uri == nbd://*:"$port" ]] || fail "-p: \$uri is $uri"
[ "$(get nbd tcp.out)" = "$uri" ] || fail "-p: \$nbd != \$uri"
[ "$(get client-size tcp.out)" = 1048576 ] || fail "-p: client could not use \$uri"
echo "ok: -p $port: $uri"

# --- $tls ------------------------------------------------------------------
if ! psktool --version >/dev/null 2>&1; then
  echo "psktool (gnutls-bin) missing: TLS values of \$tls not checked"
else
  psktool -u alice -p keys.psk >/dev/null || fail "psktool failed"
  for mode in on:1 require:2; do
    status=0
    timeout 60 "$NBDKIT" --tls="${mode%:*}" --tls-psk=keys.psk -U - memory 1M \
      --run 'printf "tls=%s\nuri=%s\n" "$tls" "$uri"' >tls.out 2>tls.err ||
      status=$?
    if [ "$status" -ne 0 ] && grep -qi 'not implemented\|without TLS\|not compiled' tls.err; then
      echo "TLS is not available in this nbdkit: $(head -n1 tls.err)"
      break
    fi
    [ "$status" -eq 0 ] || fail "--tls=${mode%:*}: captive run failed: $(cat tls.err)"
    [ "$(get tls tls.out)" = "${mode#*:}" ] ||
      fail "--tls=${mode%:*}: \$tls is '$(get tls tls.out)', expected ${mode#*:}"
    [[ $(get uri tls.out) == nbds+unix://* ]] ||
      fail "--tls=${mode%:*}: \$uri is $(get uri tls.out), expected nbds+unix"
    echo "ok: --tls=${mode%:*}: \$tls=${mode#*:}"
  done
fi

# --- --run implies -f ------------------------------------------------------
# As in upstream nbdkit, the process started is the captive supervisor:
# the command and the server are its children, and the pidfile names
# the server.
"$NBDKIT" -P run.pid -U - memory 1M --run '
  echo "$PPID" >cmd.ppid
  for i in $(seq 100); do [ -s run.pid ] && break; sleep 0.1; done
  ps -o ppid= -p "$(cat run.pid)" | tr -d " " >server.ppid' &
pid=$!
cleanup_fn kill_pid "$pid"
status=0
for (( i=0; i<600; i++ )); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
wait "$pid" || status=$?
[ "$status" -eq 0 ] || fail "--run without -f: exit status $status"
[ "$(cat cmd.ppid)" = "$pid" ] ||
  fail "--run without -f: the command ran under $(cat cmd.ppid), not nbdkit ($pid): it forked"
[ "$(cat server.ppid)" = "$pid" ] ||
  fail "--run without -f: the pidfile's server $(cat run.pid) is not a child of nbdkit ($pid)"
echo "ok: --run implies -f"

# Checked last so that a failure here does not hide the checks above.
# nbdkit-captive(1): "If --tls=off this is not set".
tls=$(get tls unix.out)
[ "$tls" = "<unset>" ] || [ -z "$tls" ] ||
  fail "--tls=off: \$tls is '$tls', expected it to be unset"
echo "ok: --tls=off: \$tls unset"

echo "$0: ok"
