#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Protocol conformance and robustness with a raw socket client
# (tests/raw_nbd.py): malformed, out-of-range, oversized, unknown and
# badly timed requests and options get the exact replies
# nbd-protocol.md asks for, a broken connection never affects another,
# and after every case the server still serves a fresh connection.
# The cases live in tests/raw_protocol_cases.py.

source "$srcdir/functions.sh"
# tests/raw_nbd.py is imported from the source tree: keep it clean.
export PYTHONDONTWRITEBYTECODE=1
requires /usr/bin/python3 --version
requires_plugin memory

make_tmpdir

# run_cases STYLE NBDKIT-OPTIONS...: start a server (forking, as a
# daemon would) on a Unix socket and run the cases for STYLE against it.
run_cases ()
{
  local style=$1 sock="$tmpdir/$1.sock" pidfile="$tmpdir/$1.pid" pid
  shift
  start_nbdkit -P "$pidfile" -U "$sock" "$@" memory 128M
  pid=$(cat "$pidfile")
  RAW_NBD_SOCKET="$sock" RAW_NBD_PID="$pid" RAW_NBD_SIZE=$((128 * 1024 * 1024)) \
    timeout 300 /usr/bin/python3 "$srcdir/raw_protocol_cases.py" "$style" ||
    failed+=("$style")
  kill -0 "$pid" 2>/dev/null || failed+=("$style (server died)")
  kill_pid "$pid"
}

failed=()
run_cases newstyle
run_cases oldstyle -o
run_cases readonly -r
[ ${#failed[@]} -eq 0 ] || fail "cases failed (see above): ${failed[*]}"

echo "$0: ok"
