#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A worker that never becomes ready (a plugin hanging at start-up) is
# killed after the start timeout: AddExport answers PluginFailed naming
# the reason before a D-Bus caller's default timeout, nothing is stored,
# no worker is left, and the name can be used again.

source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires_plugin sh
daemon_setup
start_daemon

# A sh plugin whose get_ready hangs (bounded, so nothing outlives the test).
cat > "$D/hang.sh" <<'SH'
#!/bin/sh
case "$1" in
  get_ready) exec sleep 28 ;;
  get_size) echo 1M ;;
  pread) dd if=/dev/zero count=$3 iflag=count_bytes status=none ;;
  *) exit 2 ;;
esac
SH
chmod +x "$D/hang.sh"

start=$(date +%s)
expect_error org.nbdkit.Daemon1.Error.PluginFailed \
  add_export hang sh '@as []' "[('script', '$D/hang.sh')]" '@a{sv} {}' \
  > "$D/out"
took=$(( $(date +%s) - start ))
grep -q "did not become ready within 20 seconds" "$D/out" ||
  fail "the error does not give the reason: $(cat "$D/out")"
[ "$took" -lt 25 ] || fail "AddExport took ${took} s, longer than a D-Bus caller waits"
mcall ListExports | grep -q '"hang"' && fail "the hanging export was stored"
ls "$D/state" | grep -q hang && fail "the hanging export was written to the state dir"
pgrep -f -- "--exit-with-parent.*$D/hang.sh" >/dev/null &&
  fail "a worker of the hanging export is still running"

# The name is free again.
add_export hang memory '@as []' "[('size', '1M')]" '@a{sv} {}' >/dev/null ||
  fail "the name could not be used again"
wait_state hang running || fail "the new export did not run"
:
