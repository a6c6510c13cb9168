# SPDX-License-Identifier: BSD-3-Clause
# Shared helpers for the shell tests.  Source it first:
#   source "${srcdir:-$(dirname "$0")}/functions.sh"
#
# requires CMD ARGS...     skip (exit 77) unless CMD ARGS runs successfully
# requires_plugin NAME     skip unless the plugin was built
# cleanup_fn CMD ARGS...   run CMD ARGS at exit (last registered runs first)
# start_nbdkit -P PIDFILE ARGS...
#                          start $NBDKIT in the background and wait (bounded)
#                          until the pidfile appears; registers a kill of it
# start_session_bus DIR    start a private session-type dbus-daemon with
#                          its socket in DIR (killed at exit); sets
#                          SESSION_BUS to its address
# skip REASON              print the reason and exit 77
# fail MESSAGE             print the message and exit 1

set -u
set -o pipefail

: "${srcdir:=$(cd "$(dirname "$0")" && pwd)}"
: "${abs_top_srcdir:=$(cd "$srcdir/.." && pwd)}"
: "${abs_top_builddir:=$abs_top_srcdir/build}"
: "${NBDKIT:=$abs_top_builddir/server/nbdkit}"
export NBDKIT

# libnbd's python module lives with Debian's python3.
export PATH="/usr/bin:$PATH"

_cleanup_cmds=()
_run_cleanup ()
{
  local status=$?
  local i
  for (( i=${#_cleanup_cmds[@]}-1; i>=0; i-- )); do
    eval "${_cleanup_cmds[$i]}" || :
  done
  exit $status
}
trap _run_cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

cleanup_fn ()
{
  local q
  printf -v q '%q ' "$@"
  _cleanup_cmds+=("$q")
}

skip ()
{
  echo "$0: SKIP: $*"
  exit 77
}

fail ()
{
  echo "$0: FAIL: $*" >&2
  exit 1
}

requires ()
{
  if ! "$@" >/dev/null 2>&1; then
    skip "required command failed: $*"
  fi
}

# normal_build_only WHY: tests that check behaviour, documentation or
# symbols rather than memory safety (comparisons with Debian's nbdkit,
# the man pages, exported symbols) run in the normal build only; the
# sanitizer build skips them to keep the suite's time in bounds.
normal_build_only ()
{
  if grep -qa __asan_init "$NBDKIT"; then
    skip "checked in the normal build only ($*)"
  fi
}

requires_plugin ()
{
  if ! "$NBDKIT" "$1" --dump-plugin >/dev/null 2>&1; then
    skip "plugin $1 is not available"
  fi
}

requires_filter ()
{
  if ! "$NBDKIT" --filter="$1" null --dump-plugin >/dev/null 2>&1; then
    skip "filter $1 is not available"
  fi
}

# Kill a process by PID and wait for it (bounded to 10 seconds).
kill_pid ()
{
  local pid=$1 i
  kill "$pid" 2>/dev/null || return 0
  for (( i=0; i<100; i++ )); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || :
}

# start_nbdkit -P PIDFILE [ARGS...]: the pidfile must come first.
start_nbdkit ()
{
  if [ "$1" != "-P" ]; then
    fail "start_nbdkit: first argument must be -P PIDFILE"
  fi
  local pidfile=$2 i pid
  rm -f "$pidfile"
  "$NBDKIT" "$@" || fail "nbdkit $* failed to start (exit status $?)"
  for (( i=0; i<300; i++ )); do
    if [ -s "$pidfile" ]; then
      pid=$(cat "$pidfile")
      cleanup_fn kill_pid "$pid"
      return 0
    fi
    sleep 0.1
  done
  fail "nbdkit did not write $pidfile within 30 seconds"
}

# A private temporary directory removed at exit.
make_tmpdir ()
{
  tmpdir=$(mktemp -d /tmp/nbdkit-test.XXXXXX)
  cleanup_fn rm -rf "$tmpdir"
}

start_session_bus ()
{
  local dir=$1 i
  cat > "$dir/session-bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$dir/session_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
CONF
  dbus-daemon --config-file="$dir/session-bus.conf" --nofork --nopidfile \
    --print-address=3 3>"$dir/session-bus.addr" 2>"$dir/session-bus.log" &
  cleanup_fn kill_pid $!
  for (( i=0; i<100; i++ )); do
    [ -s "$dir/session-bus.addr" ] && break
    sleep 0.05
  done
  [ -s "$dir/session-bus.addr" ] ||
    fail "dbus-daemon did not start: $(cat "$dir/session-bus.log")"
  SESSION_BUS=$(head -1 "$dir/session-bus.addr")
}
