#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Messages to the system log, caught on a private /dev/log: the server
# runs in its own mount namespace (unshare -m) where /dev/log is our
# datagram socket (bind-mounted over the real one, or added to an
# overlay of /dev when the machine has none).
# - --log=syslog: a plugin error while serving arrives at severity "err",
#   tagged nbdkit[PID] and naming the plugin and connection; a config
#   error arrives too; neither is printed on stderr;
# - --log=syslog -v: debug messages still go to stderr, never to syslog;
# - default log and forked into the background: errors go to syslog;
# - default log with -f: errors go to stderr, not to syslog.

source "$srcdir/functions.sh"
requires unshare --version
requires nbdinfo --version
requires /usr/bin/python3 --version
requires_plugin memory
requires_plugin file
[ "$(id -u)" -eq 0 ] || skip "needs root for a private mount namespace"
unshare -m true 2>/dev/null || skip "unshare -m does not work here"

make_tmpdir
mkdir "$tmpdir/exports"
logsock="$tmpdir/log.sock"
logfile="$tmpdir/syslog.txt"

# The catcher: one line per datagram received on $logsock.
/usr/bin/python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "ab", buffering=0) as f:
    open(sys.argv[3], "w").close()
    while True:
        f.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
' "$logsock" "$logfile" "$tmpdir/catcher.ready" &
catcher=$!
cleanup_fn kill_pid "$catcher"
for (( i=0; i<100; i++ )); do
  [ -e "$tmpdir/catcher.ready" ] && break
  sleep 0.1
done
[ -e "$tmpdir/catcher.ready" ] || fail "the syslog catcher did not start"

# wait_for_log PATTERN: until PATTERN (extended regexp) is in the log.
wait_for_log ()
{
  local i
  for (( i=0; i<100; i++ )); do
    grep -Eq -- "$1" "$logfile" && return 0
    sleep 0.1
  done
  return 1
}

# Everything that needs the private /dev/log runs in this script, in the
# new mount namespace.  It only runs things; the checks are below.
cat >"$tmpdir/inner.sh" <<'EOF'
set -u
cd "$tmpdir" || exit 1
if [ -e /dev/log ] || [ -L /dev/log ]; then
  mount --bind "$logsock" /dev/log || exit 77
else
  mkdir -p ovl/upper ovl/work
  mount -t overlay overlay \
    -o lowerdir=/dev,upperdir="$tmpdir/ovl/upper",workdir="$tmpdir/ovl/work" \
    /dev || exit 77
  ln -s "$logsock" /dev/log || exit 77
fi
# Is it working?  glibc's syslog(3) writes to /dev/log.
/usr/bin/python3 -c 'import syslog; syslog.syslog(syslog.LOG_ERR, "probe-" + __import__("sys").argv[1])' "$$"
for (( i=0; i<50; i++ )); do
  grep -q "probe-$$" "$logfile" && break
  sleep 0.1
done
grep -q "probe-$$" "$logfile" || exit 77

client='nbdinfo "nbd+unix:///CASE-missing?socket=$unixsocket" >/dev/null 2>&1; exit 0'

# --log=syslog, error while serving.
timeout 60 "$NBDKIT" --log=syslog -U - file dir="$tmpdir/exports" \
  --run "${client/CASE/syslog}" 2>syslog.err
echo $? >syslog.status

# --log=syslog, error while configuring.
timeout 60 "$NBDKIT" --log=syslog -U - memory size=bad-config-size \
  --run 'exit 9' 2>config.err
echo $? >config.status

# --log=syslog -v.
timeout 60 "$NBDKIT" --log=syslog -v -U - file dir="$tmpdir/exports" \
  --run "${client/CASE/verbose}" 2>verbose.err
echo $? >verbose.status

# Default log, -f: stderr.
timeout 60 "$NBDKIT" -f -U - file dir="$tmpdir/exports" \
  --run "${client/CASE/foreground}" 2>foreground.err
echo $? >foreground.status

# Default log, forked into the background: syslog.
timeout 60 "$NBDKIT" -P "$tmpdir/daemon.pid" -U "$tmpdir/daemon.sock" \
  file dir="$tmpdir/exports" 2>daemon.err
echo $? >daemon.status
# The pidfile is written by the background process, maybe after the
# parent has exited.
for (( i=0; i<100; i++ )); do
  [ -s daemon.pid ] && break
  sleep 0.1
done
if [ -s daemon.pid ]; then
  nbdinfo "nbd+unix:///daemon-missing?socket=$tmpdir/daemon.sock" \
    >/dev/null 2>&1
  for (( i=0; i<100; i++ )); do
    grep -q daemon-missing "$logfile" && break
    sleep 0.1
  done
  pid=$(cat daemon.pid)
  kill "$pid"
  for (( i=0; i<100; i++ )); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
fi
exit 0
EOF

status=0
export tmpdir logsock logfile
timeout 300 unshare -m bash "$tmpdir/inner.sh" || status=$?
# The daemon may outlive a failed inner script: end it by its pid.
[ -s "$tmpdir/daemon.pid" ] && cleanup_fn kill_pid "$(cat "$tmpdir/daemon.pid")"
[ "$status" -ne 77 ] || skip "cannot put a private socket on /dev/log here"
[ "$status" -eq 0 ] || fail "the namespace script failed with status $status"

# severity LINE-PATTERN: the syslog severity (priority mod 8) of the
# first matching line.
severity ()
{
  local pri
  pri=$(grep -E -m1 -- "$1" "$logfile" | sed -n 's/^<\([0-9]*\)>.*/\1/p')
  [ -n "$pri" ] && echo $((pri % 8))
}

# --- --log=syslog, serving ---------------------------------------------
[ "$(cat "$tmpdir/syslog.status")" -eq 0 ] || fail "--log=syslog: captive run failed"
wait_for_log 'syslog-missing' ||
  fail "--log=syslog: the serving error did not reach syslog: $(cat "$logfile")"
wait_for_log 'nbdkit\[[0-9]+\]: file\[[0-9]+\]: .*syslog-missing' ||
  fail "--log=syslog: message lacks the nbdkit[PID] tag or plugin[connection]: $(grep syslog-missing "$logfile")"
[ "$(severity syslog-missing)" = 3 ] ||
  fail "--log=syslog: severity $(severity syslog-missing), expected 3 (err)"
grep -q 'syslog-missing' "$tmpdir/syslog.err" &&
  fail "--log=syslog: the error was printed on stderr too"
echo "ok: --log=syslog: serving error in syslog"

# --- --log=syslog, configuring ------------------------------------------
[ "$(cat "$tmpdir/config.status")" -eq 1 ] ||
  fail "--log=syslog: bad config gave exit status $(cat "$tmpdir/config.status")"
wait_for_log 'memory: .*bad-config-size' ||
  fail "--log=syslog: the config error did not reach syslog: $(cat "$logfile")"
grep -q 'bad-config-size' "$tmpdir/config.err" &&
  fail "--log=syslog: the config error was printed on stderr too"
echo "ok: --log=syslog: config error in syslog"

# --- --log=syslog -v ------------------------------------------------------
wait_for_log 'verbose-missing' ||
  fail "--log=syslog -v: the error did not reach syslog"
grep -q 'debug: ' "$tmpdir/verbose.err" ||
  fail "--log=syslog -v: no debug messages on stderr"
grep -Eiq 'debug|config key' "$logfile" &&
  fail "--log=syslog -v: debug messages in syslog: $(grep -Ei 'debug|config key' "$logfile" | head -3)"
echo "ok: --log=syslog -v: debug on stderr only"

# --- default, -f -------------------------------------------------------
grep -Eq 'file\[[0-9]+\]: error: .*foreground-missing' "$tmpdir/foreground.err" ||
  fail "default -f: error not on stderr: $(cat "$tmpdir/foreground.err")"
grep -q 'foreground-missing' "$logfile" &&
  fail "default -f: error went to syslog"
echo "ok: default with -f: stderr"

# --- default, forked ---------------------------------------------------
[ "$(cat "$tmpdir/daemon.status")" -eq 0 ] ||
  fail "default forked: nbdkit exited with $(cat "$tmpdir/daemon.status"): $(cat "$tmpdir/daemon.err")"
[ -s "$tmpdir/daemon.pid" ] || fail "default forked: no pidfile"
wait_for_log 'nbdkit\[[0-9]+\]: file\[[0-9]+\]: .*daemon-missing' ||
  fail "default forked: the error did not reach syslog: $(cat "$logfile")"
grep -q 'daemon-missing' "$tmpdir/daemon.err" &&
  fail "default forked: the error was printed on stderr"
echo "ok: default after forking: syslog"

echo "$0: ok"
