#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The exitlast filter: the server keeps running until a first client
# has come and gone, stays up while any client is still connected, and
# exits once the last one leaves -- also when that client asked
# NBD_OPT_INFO before NBD_OPT_GO (nbdinfo does).  All waits are bounded.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires_plugin memory
requires_filter exitlast
make_tmpdir
export tmpdir

# Start a server in the foreground (so its log is kept), wait for its
# pidfile, and set $pid and $uri.
start_server ()
{
  rm -f "$tmpdir/pid" "$tmpdir/sock"
  "$NBDKIT" -f -P "$tmpdir/pid" -U "$tmpdir/sock" "$@" 2>>"$tmpdir/log" &
  pid=$!
  cleanup_fn kill_pid "$pid"
  for (( i=0; i<300; i++ )); do [ -s "$tmpdir/pid" ] && break; sleep 0.1; done
  [ -s "$tmpdir/pid" ] || fail "nbdkit did not start"
  uri="nbd+unix:///?socket=$tmpdir/sock"
}

# Wait up to 20 seconds for the server to exit.
wait_exit ()
{
  for (( i=0; i<200; i++ )); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  fail "$1: the server is still running"
}

is_running ()
{
  kill -0 "$pid" 2>/dev/null
}

# 1. No client yet: the server keeps running.
start_server --filter=exitlast memory 1M
sleep 1
is_running || fail "the server exited before any client connected"

# 2. Two clients; the first leaves while the second holds on: still up.
nbdsh -u "$uri" -c "
import os, time
open(os.environ['tmpdir'] + '/held', 'w').close()
while not os.path.exists(os.environ['tmpdir'] + '/release'):
    time.sleep(0.05)
h.pread(512, 0)
" &
holder=$!
for (( i=0; i<200; i++ )); do [ -e "$tmpdir/held" ] && break; sleep 0.1; done
[ -e "$tmpdir/held" ] || fail "the holding client did not connect"
nbdsh -u "$uri" -c 'h.pwrite(b"1" * 512, 0)' ||
  fail "a second client could not connect"
sleep 1
is_running || fail "the server exited while a client was still connected"

# 3. The last client leaves: the server exits.
touch "$tmpdir/release"
wait "$holder" || fail "the holding client failed"
wait_exit "after the last client left"

# 4. nbdinfo asks NBD_OPT_INFO, then NBD_OPT_GO: it gets its answer, and
# the server exits after it.
start_server --filter=exitlast memory 1M
size=$(nbdinfo --size "$uri") || fail "nbdinfo failed against exitlast"
[ "$size" = 1048576 ] || fail "nbdinfo reported size $size"
wait_exit "after nbdinfo"

# 5. The same with qemu-io as the client.
if qemu-io --version >/dev/null 2>&1; then
  start_server --filter=exitlast memory 1M
  qemu-io -f raw -c 'write -P 7 0 4096' -c 'read -P 7 0 4096' "$uri" \
      >/dev/null || fail "qemu-io failed against exitlast"
  wait_exit "after qemu-io"
fi
