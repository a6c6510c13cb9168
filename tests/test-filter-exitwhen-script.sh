#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The exitwhen filter with exit-when-script: a script exiting 0 keeps
# the server running, one exiting with another status is logged and
# ignored, and one exiting 88 makes the server exit (bounded wait).
# Also several events at once: the first to happen wins.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdinfo --version
requires_plugin memory
requires_filter exitwhen
make_tmpdir
export tmpdir

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

wait_exit ()
{
  for (( i=0; i<200; i++ )); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  fail "$1: the server is still running after 20 seconds"
}

# The script counts its runs, fails while $tmpdir/broken exists and
# reports the event once $tmpdir/stop exists.
cat >"$tmpdir/check.sh" <<'SH'
#!/bin/sh
echo run >>"$tmpdir/runs"
test -e "$tmpdir/broken" && exit 3
test -e "$tmpdir/stop" && exit 88
exit 0
SH
chmod +x "$tmpdir/check.sh"

touch "$tmpdir/broken"
start_server --filter=exitwhen memory 1M \
    exit-when-script="$tmpdir/check.sh" exit-when-poll=1
nbdinfo --size "$uri" >/dev/null || fail "the server does not serve"
# Wait until the script has run a few times (connections and polls).
for (( i=0; i<100; i++ )); do
  [ "$(wc -l <"$tmpdir/runs" 2>/dev/null || echo 0)" -ge 3 ] && break
  sleep 0.1
done
[ "$(wc -l <"$tmpdir/runs")" -ge 3 ] || fail "the script is not being run"
grep -q "exit-when-script: .*failed with status 3 (ignored)" "$tmpdir/log" ||
  fail "the failing script was not logged: $(cat "$tmpdir/log")"
kill -0 "$pid" || fail "a failing script stopped the server"
rm "$tmpdir/broken"
nbdinfo --size "$uri" >/dev/null || fail "the server stopped serving"
kill -0 "$pid" || fail "a script exiting 0 stopped the server"

touch "$tmpdir/stop"
wait_exit "after the script exited 88"
rm -f "$tmpdir/stop"

# Several events: the file event happens, the script never does.
start_server --filter=exitwhen memory 1M \
    exit-when-script="$tmpdir/check.sh" \
    exit-when-file-created="$tmpdir/other" exit-when-poll=1
nbdinfo --size "$uri" >/dev/null || fail "the server does not serve"
touch "$tmpdir/other"
wait_exit "after one of several events"
