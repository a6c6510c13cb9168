#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# retry=N with an upstream server that starts late.
# - Per-client connections (the default): the proxy is up first, a client
#   connects, and the upstream server starts 1.5 s later; the client's
#   connection is retried until it gets through.
# - shared=true: nbdkit connects while starting, so it writes its pidfile
#   only once the late upstream is there.
# - Without retries, or when every retry fails, the error is reported
#   (and a shared=true nbdkit exits with an error) within the retry time.

source "$srcdir/functions.sh"
source "$srcdir/test-plugin-nbd-helpers.bash"
requires nbdinfo --version
requires_plugin nbd
requires_plugin memory

make_tmpdir
sock=$tmpdir/late.sock

# --- Per-client connections. ------------------------------------------
start_nbdkit -P "$tmpdir/proxy.pid" -U "$tmpdir/proxy.sock" -v \
  nbd socket="$sock" retry=5 2>"$tmpdir/proxy.log"
nbdinfo --size "nbd+unix:///?socket=$tmpdir/proxy.sock" \
  >"$tmpdir/size.out" 2>"$tmpdir/size.err" &
client=$!
sleep 1.5
start_nbdkit -P "$tmpdir/late.pid" -U "$sock" memory 3M
wait "$client" || fail "the client failed: $(cat "$tmpdir/size.err")"
[ "$(cat "$tmpdir/size.out")" = 3145728 ] ||
  fail "the client got size $(cat "$tmpdir/size.out")"
grep -q 'connection attempt 1 of 6 failed: .*retrying in 1 second' \
  "$tmpdir/proxy.log" || fail "no retry was logged"
kill_pid "$(cat "$tmpdir/late.pid")"
kill_pid "$(cat "$tmpdir/proxy.pid")"
rm -f "$sock"

# --- shared=true: the connection is made at startup. ------------------
rm -f "$tmpdir/shared.pid"
"$NBDKIT" -P "$tmpdir/shared.pid" -U "$tmpdir/shared.sock" \
  nbd socket="$sock" shared=true retry=5 &
sleep 1.5
[ -e "$tmpdir/shared.pid" ] &&
  fail "shared=true wrote its pidfile before reaching the upstream server"
start_nbdkit -P "$tmpdir/late.pid" -U "$sock" memory 5M
wait_for_path "$tmpdir/shared.pid"
cleanup_fn kill_pid "$(cat "$tmpdir/shared.pid")"
[ "$(nbdinfo --size "nbd+unix:///?socket=$tmpdir/shared.sock")" = 5242880 ] ||
  fail "shared=true with a late upstream server does not serve it"
kill_pid "$(cat "$tmpdir/late.pid")"
rm -f "$sock"

# --- Failures. ---------------------------------------------------------
# shared=true, retry=0: nbdkit refuses to start, at once.
SECONDS=0
if "$NBDKIT" -f -U "$tmpdir/fail.sock" nbd socket="$sock" shared=true \
     2>"$tmpdir/fail0.err"; then
  fail "shared=true started without an upstream server"
fi
grep -q 'cannot connect to the NBD server: .*connect: No such file' \
  "$tmpdir/fail0.err" || fail "unexpected error: $(cat "$tmpdir/fail0.err")"
[ $SECONDS -lt 10 ] || fail "retry=0 took $SECONDS s to give up"

# shared=true, retry=2: three attempts, then the same error.
if "$NBDKIT" -f -v -U "$tmpdir/fail2.sock" nbd socket="$sock" shared=true \
     retry=2 2>"$tmpdir/fail2.err"; then
  fail "shared=true retry=2 started without an upstream server"
fi
grep -q 'connection attempt 2 of 3 failed' "$tmpdir/fail2.err" ||
  fail "the second attempt was not logged"
grep -q 'cannot connect to the NBD server' "$tmpdir/fail2.err" ||
  fail "the final error was not logged"

# Per-client, retry=1: the client's connection fails; nbdkit stays up.
start_nbdkit -P "$tmpdir/p1.pid" -U "$tmpdir/p1.sock" \
  nbd socket="$sock" retry=1 2>"$tmpdir/p1.err"
if nbdinfo --size "nbd+unix:///?socket=$tmpdir/p1.sock" 2>/dev/null; then
  fail "a client was served without an upstream server"
fi
kill -0 "$(cat "$tmpdir/p1.pid")" || fail "nbdkit exited after a failed open"
start_nbdkit -P "$tmpdir/late.pid" -U "$sock" memory 1M
[ "$(nbdinfo --size "nbd+unix:///?socket=$tmpdir/p1.sock")" = 1048576 ] ||
  fail "a later client was not served once the upstream server was up"

echo "$0: ok"
