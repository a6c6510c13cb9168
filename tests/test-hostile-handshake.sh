#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Hostile and unlucky clients in the handshake (tests/hostile_handshake.py):
# --handshake-timeout drops a client that trickles its options or says
# nothing, while others are served; 2000 silent clients (above the
# default --max-connections) do not stop a new client from being
# served and the server's threads and fds stay bounded; with
# --max-connections=N, client N+1 is refused with a logged reason.

source "$srcdir/functions.sh"
export PYTHONDONTWRITEBYTECODE=1
requires /usr/bin/python3 --version
requires_plugin memory
make_tmpdir
helper="$srcdir/hostile_handshake.py"

start_nbdkit -P "$tmpdir/t.pid" -U "$tmpdir/t.sock" --handshake-timeout=2 \
  memory 1M
timeout 120 /usr/bin/python3 "$helper" timeout "$tmpdir/t.sock" \
  "$(cat "$tmpdir/t.pid")" || fail "handshake timeout"

start_nbdkit -P "$tmpdir/c.pid" -U "$tmpdir/c.sock" memory 1M
timeout 120 /usr/bin/python3 "$helper" crowd "$tmpdir/c.sock" \
  "$(cat "$tmpdir/c.pid")" 2000 || fail "2000 silent clients"

# Foreground, to read the refusal from its stderr.
"$NBDKIT" -f -P "$tmpdir/l.pid" -U "$tmpdir/l.sock" --max-connections=3 \
  memory 1M 2>"$tmpdir/l.err" &
cleanup_fn kill_pid $!
for (( i=0; i<300; i++ )); do [ -s "$tmpdir/l.pid" ] && break; sleep 0.1; done
[ -s "$tmpdir/l.pid" ] || fail "nbdkit --max-connections=3 did not start"
timeout 120 /usr/bin/python3 "$helper" limit "$tmpdir/l.sock" \
  "$(cat "$tmpdir/l.pid")" 3 || fail "connection limit"
grep -q "refusing a new connection: the limit of 3 connections (--max-connections) is reached" \
  "$tmpdir/l.err" || { cat "$tmpdir/l.err"; fail "the refusal was not logged"; }

# Bad values are refused with the option's name.
"$NBDKIT" --max-connections=0 memory 1M 2>"$tmpdir/err" && fail "--max-connections=0 accepted"
grep -q -- "--max-connections must be at least 1" "$tmpdir/err" || fail "unclear error"
"$NBDKIT" --handshake-timeout=-1 memory 1M 2>"$tmpdir/err" && fail "--handshake-timeout=-1 accepted"
grep -q -- "--handshake-timeout" "$tmpdir/err" || fail "unclear error"
:
