#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Socket activation refuses what cannot work, with exit status 1 and a
# message on stderr, and never hangs (every run is bounded):
# - -i, -p, --run, -s, -U and --vsock together with LISTEN_FDS/LISTEN_PID
#   (the --run command is not run, the -U socket is not created);
# - malformed LISTEN_FDS (not a number, 0, negative, empty) and LISTEN_PID;
# - LISTEN_FDS counting more fds than were passed;
# - an inherited fd that is not a socket, or a socket that is connected
#   rather than listening (what systemd passes with Accept=yes).

source "$srcdir/functions.sh"
requires timeout --version
requires_plugin memory

launcher="$abs_top_builddir/tests/c/listen-launcher"
[ -x "$launcher" ] || skip "$launcher was not built"

make_tmpdir
sock="$tmpdir/activated.sock"

# expect_error NAME PATTERN LAUNCHER-ARGS... -- NBDKIT-ARGS...
# Runs the launcher (fresh socket each time), wants exit 1 within
# $limit seconds and PATTERN (extended regexp) on stderr.  Only the
# first 64K of stderr is kept, in case a broken server floods it.
# Failures are collected so one broken case does not hide the others.
n=0
limit=20
failures=()
expect_error ()
{
  local name=$1 pattern=$2 status
  shift 2
  rm -f "$sock"
  n=$((n+1))
  timeout "$limit" "$launcher" "$@" memory 1M 2>&1 >"$tmpdir/out.$n" |
    head -c 65536 >"$tmpdir/err.$n"
  status=${PIPESTATUS[0]}
  if [ "$status" -eq 124 ]; then
    failures+=("$name: nbdkit did not exit within ${limit}s")
  elif [ "$status" -ne 1 ]; then
    failures+=("$name: exit status $status, expected 1; stderr: $(head -n3 "$tmpdir/err.$n")")
  elif ! grep -Eq -- "$pattern" "$tmpdir/err.$n"; then
    failures+=("$name: stderr does not match '$pattern': $(head -n3 "$tmpdir/err.$n")")
  else
    echo "ok: $name: $(head -n1 "$tmpdir/err.$n")"
    return 0
  fi
  echo "FAILED: ${failures[-1]}"
}

conflict='socket activation|LISTEN_FDS'
expect_error "-i" "$conflict" "unix:$sock" -- "$NBDKIT" -i 127.0.0.1
expect_error "-p" "$conflict" "unix:$sock" -- "$NBDKIT" -p 10810
expect_error "--run" "$conflict" "unix:$sock" -- \
  "$NBDKIT" --run "touch $tmpdir/ran"
[ ! -e "$tmpdir/ran" ] || failures+=("--run command ran under socket activation")
expect_error "-s" "$conflict" "unix:$sock" -- "$NBDKIT" -s
expect_error "-U" "$conflict" "unix:$sock" -- "$NBDKIT" -U "$tmpdir/u.sock"
[ ! -e "$tmpdir/u.sock" ] || failures+=("-U socket created under socket activation")
expect_error "--vsock" "$conflict" "unix:$sock" -- "$NBDKIT" --vsock

expect_error "LISTEN_FDS=abc" "LISTEN_FDS" -F abc "unix:$sock" -- "$NBDKIT"
expect_error "LISTEN_FDS=0" "LISTEN_FDS" -F 0 "unix:$sock" -- "$NBDKIT"
expect_error "LISTEN_FDS=-1" "LISTEN_FDS" -F -1 "unix:$sock" -- "$NBDKIT"
expect_error "LISTEN_FDS=''" "LISTEN_FDS" -F '' "unix:$sock" -- "$NBDKIT"
expect_error "LISTEN_PID=xyz" "LISTEN_PID" -P xyz "unix:$sock" -- "$NBDKIT"

# One socket passed, two announced: fd 4 is closed when the server
# starts.  It must be checked before the server opens fds of its own, or
# one of those (a pipe, a plugin's file) is mistaken for the socket and
# the server waits on it forever.
limit=5
expect_error "LISTEN_FDS=2 with one fd" "fd 4|socket activation" \
  -F 2 "unix:$sock" -- "$NBDKIT"

# fd 3 is a regular file.  A server that takes it anyway spins on
# accept() failing with ENOTSOCK and floods its log instead of stopping.
echo "not a socket" >"$tmpdir/plain"
expect_error "fd 3 is not a socket" "socket" \
  "file:$tmpdir/plain" -- "$NBDKIT"
# A connected socket: accept() on it fails with EINVAL, the same spin.
expect_error "fd 3 is a connected socket" "socket|listen" \
  pair -- "$NBDKIT"

if [ ${#failures[@]} -gt 0 ]; then
  printf '%s\n' "${failures[@]}" >&2
  fail "${#failures[@]} case(s) failed"
fi
echo "$0: ok"
