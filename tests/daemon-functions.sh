# SPDX-License-Identifier: BSD-3-Clause
# Helpers for the nbdkitd tests (tests/test-daemon-*.sh).  Source after
# functions.sh:
#   source "$srcdir/functions.sh"; source "$srcdir/daemon-functions.sh"
#
# daemon_setup                 private work dir ($D), private system-type
#                              dbus-daemon ($BUS, exported as
#                              DBUS_SYSTEM_BUS_ADDRESS), bus policy installed
# start_daemon [ARGS...]       start nbdkitd on that bus (state in $D/state,
#                              no shared listener unless --listen is given)
#                              and wait until it owns its name ($DAEMON_PID)
# stop_daemon                  SIGTERM and wait for it
# mcall METHOD SIG ARGS...     busctl call on the Manager
# ecall NAME METHOD SIG ARGS   busctl call on the export NAME
# eprop NAME PROP              print one property of export NAME (busctl -j)
# wait_state NAME STATE [SECS] wait (bounded) until the export's State is STATE
# free_tcp_port                print a free TCP port on 127.0.0.1
# monitor_start FILE MATCH...  busctl monitor (JSON lines in FILE) on the MATCH
#                              rules; returns once it listens ($MONITOR_PID)
# monitor_sync FILE            wait until FILE holds every signal emitted
#                              before this call
# wait_requests_read PID       wait until PID's connected Unix sockets hold
#                              no unread bytes (it has read what was sent)

: "${NBDKITD:=$abs_top_builddir/daemon/nbdkitd}"
export NBDKITD
export NBDKITD_NBDKIT="$NBDKIT"
BUSCTL=(busctl --system --no-pager)

daemon_setup ()
{
  requires which dbus-daemon
  requires which busctl
  [ -x "$NBDKITD" ] || skip "nbdkitd was not built (no libsystemd?)"
  D=$(mktemp -d /tmp/nbdkitd-test.XXXXXX)
  chmod 755 "$D"
  cleanup_fn rm -rf "$D"
  mkdir -p "$D/services" "$D/system.d" "$D/state" "$D/run"
  cat > "$D/system.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$D/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <servicedir>$D/services</servicedir>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"/>
    <allow own="org.freedesktop.PolicyKit1"/>
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
  <includedir>$D/system.d</includedir>
</busconfig>
CONF
  cp "$abs_top_srcdir/dbus/org.nbdkit.Daemon1.conf" "$D/system.d/"
  dbus-daemon --config-file="$D/system.conf" --nofork --nopidfile \
      --print-address=3 3>"$D/bus.addr" 2>"$D/bus.log" &
  BUS_PID=$!
  cleanup_fn kill_pid "$BUS_PID"
  local i
  for (( i=0; i<100; i++ )); do
    [ -s "$D/bus.addr" ] && break
    sleep 0.1
  done
  [ -s "$D/bus.addr" ] || fail "dbus-daemon did not start"
  BUS=$(head -1 "$D/bus.addr")
  export DBUS_SYSTEM_BUS_ADDRESS="$BUS"
}

# Wait (bounded) until NAME has an owner on the bus.
wait_for_name ()
{
  local name=$1 i
  for (( i=0; i<200; i++ )); do
    "${BUSCTL[@]}" status "$name" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

start_daemon ()
{
  local args=("$@")
  local has_listen=0 a
  for a in "${args[@]}"; do
    case $a in --listen*) has_listen=1 ;; esac
  done
  [ $has_listen = 1 ] || args+=(--listen=none)
  ${DAEMON_WRAPPER:-} "$NBDKITD" -v --state-dir="$D/state" --runtime-dir="$D/run" "${args[@]}" \
      >>"$D/daemon.log" 2>&1 &
  DAEMON_PID=$!
  cleanup_fn kill_pid "$DAEMON_PID"
  if ! wait_for_name org.nbdkit.Daemon1; then
    cat "$D/daemon.log" >&2
    fail "nbdkitd did not take its bus name"
  fi
}

# The monitor also matches a signal that only monitor_sync emits: its
# arrival in FILE proves the monitor listens, and, since the bus keeps
# order, that the daemon's earlier signals are in FILE too.
MONITOR_SYNC=0
monitor_start ()
{
  local file=$1; shift
  local rules=() m
  for m in "$@"; do rules+=(--match="$m"); done
  timeout 120 "${BUSCTL[@]}" monitor --json=short "${rules[@]}" \
      --match="type='signal',interface='org.nbdkit.Test',member='Sync'" \
      > "$file" 2>/dev/null &
  MONITOR_PID=$!
  cleanup_fn kill_pid "$MONITOR_PID"
  monitor_sync "$file" || fail "busctl monitor did not start"
}

monitor_sync ()
{
  local file=$1 i j token
  MONITOR_SYNC=$((MONITOR_SYNC + 1))
  token="sync-$$-$MONITOR_SYNC"
  for (( i=0; i<200; i++ )); do
    "${BUSCTL[@]}" emit /org/nbdkit/Test org.nbdkit.Test Sync s "$token"
    for (( j=0; j<5; j++ )); do
      grep -q "\"$token\"" "$file" && return 0
      sleep 0.01
    done
  done
  return 1
}

wait_requests_read ()
{
  local pid=$1 i
  requires which ss
  for (( i=0; i<200; i++ )); do
    ss -x -p -H 2>/dev/null |
      awk -v p="pid=$pid," '$2 == "ESTAB" && index($0, p) && $3 != 0 { busy=1 }
                           END { exit busy }' && return 0
    sleep 0.05
  done
  fail "process $pid did not read the requests sent to it"
}

stop_daemon ()
{
  kill_pid "$DAEMON_PID"
  wait "$DAEMON_PID" 2>/dev/null || :
}

mcall ()
{
  local method=$1; shift
  "${BUSCTL[@]}" call org.nbdkit.Daemon1 /org/nbdkit/Daemon1 \
      org.nbdkit.Daemon1.Manager "$method" "$@"
}

export_path ()
{
  mcall GetExport s "$1" | awk '{print $2}' | tr -d '"'
}

ecall ()
{
  local name=$1 method=$2; shift 2
  "${BUSCTL[@]}" call org.nbdkit.Daemon1 "$(export_path "$name")" \
      org.nbdkit.Daemon1.Export "$method" "$@"
}

eprop ()
{
  "${BUSCTL[@]}" get-property org.nbdkit.Daemon1 "$(export_path "$1")" \
      org.nbdkit.Daemon1.Export "$2" | cut -d' ' -f2- | sed 's/^"//; s/"$//'
}

wait_state ()
{
  local name=$1 want=$2 secs=${3:-20} i state=""
  for (( i=0; i<secs*20; i++ )); do
    state=$(eprop "$name" State 2>/dev/null)
    [ "$state" = "$want" ] && return 0
    sleep 0.05
  done
  echo "export $name: state '$state', expected '$want'" >&2
  tail -20 "$D/daemon.log" >&2
  return 1
}

free_tcp_port ()
{
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# gcall OBJECT-PATH INTERFACE.METHOD ARGS...: gdbus call (GVariant text
# arguments); prints the reply, or "GDBus.Error:NAME: message" on error.
gcall ()
{
  local path=$1 method=$2; shift 2
  gdbus call --system -d org.nbdkit.Daemon1 -o "$path" -m "$method" "$@"
}

# expect_error ERROR-NAME CMD...: CMD must fail with that D-Bus error.
expect_error ()
{
  local want=$1 out; shift
  if out=$("$@" 2>&1); then
    fail "expected $want, but '$*' succeeded: $out"
  fi
  case $out in
    *"GDBus.Error:$want:"*) echo "ok: $want: ${out#*$want: }" ;;
    *) fail "expected $want from '$*', got: $out" ;;
  esac
}

# add_export NAME PLUGIN FILTERS PARAMS OPTIONS (GVariant text each).
add_export ()
{
  gcall /org/nbdkit/Daemon1 org.nbdkit.Daemon1.Manager.AddExport \
      "$1" "$2" "$3" "$4" "$5"
}

# On failure show what the daemon said.
fail ()
{
  echo "$0: FAIL: $*" >&2
  if [ -n "${D:-}" ] && [ -f "$D/daemon.log" ]; then
    echo "--- daemon log (last 40 lines):" >&2
    tail -40 "$D/daemon.log" >&2
  fi
  exit 1
}
