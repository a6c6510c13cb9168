#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# -u/--user and -g/--group, run as root with a throw-away user and group
# (removed at exit):
# - -u USER -g GROUP: the serving process's real, effective, saved and
#   filesystem uid/gid (/proc/PID/status) are USER's and GROUP's, with no
#   supplementary group left but GROUP; the Unix socket sits in a
#   root-only directory USER cannot create files in, so it was bound
#   before privileges were dropped; root clients are served;
# - -u USER alone: USER's primary group; numeric -u UID -g GID work too;
# - forking into the background (no -f): the daemon runs as USER;
# - TCP: a privileged port (below ip_unprivileged_port_start) bound as
#   root, then served as USER;
# - unknown user or group names: exit 1 with a message naming them;
# - --selinux-label on a machine without SELinux: exit 1 with a message.

source "$srcdir/functions.sh"
requires nbdinfo --version
requires setpriv --version
requires useradd --help
requires groupadd --help
requires /usr/bin/python3 --version
requires_plugin memory
[ "$(id -u)" -eq 0 ] || skip "must run as root to change user"

make_tmpdir
chmod 0711 "$tmpdir"            # the test user may pass through, not list

user="nbdkit-test-$$"
group="nbdkit-tg-$$"
# retry CMD...: tests running in parallel may hold the passwd lock.
retry ()
{
  local i
  for (( i=0; i<10; i++ )); do
    "$@" && return 0
    sleep 1
  done
  return 1
}
retry useradd -M -s /usr/sbin/nologin "$user" ||
  skip "cannot create the test user $user"
cleanup_fn retry userdel "$user"
retry groupadd "$group" || fail "cannot create the test group $group"
cleanup_fn retry groupdel "$group"
uid=$(id -u "$user")
user_gid=$(id -g "$user")
gid=$(getent group "$group" | cut -d: -f3)
if [ "$uid" -eq 0 ] || [ -z "$gid" ]; then
  fail "bad ids for the test user: $uid/$gid"
fi

private="$tmpdir/private"       # only root can create files here
mkdir -m 0700 "$private"
piddir="$tmpdir/pids"           # the pidfile is written as the new user
mkdir -m 1777 "$piddir"

if setpriv --reuid="$uid" --regid="$gid" --clear-groups \
     touch "$private/probe" 2>/dev/null; then
  fail "the test user can write to $private: the test proves nothing"
fi

# check_ids PID UID GID NAME: all four uids and gids, and the groups.
check_ids ()
{
  local pid=$1 want_uid=$2 want_gid=$3 name=$4 line
  line=$(awk '$1 == "Uid:" {print $2, $3, $4, $5}' "/proc/$pid/status")
  [ "$line" = "$want_uid $want_uid $want_uid $want_uid" ] ||
    fail "$name: uids (real effective saved fs) are '$line', expected $want_uid"
  line=$(awk '$1 == "Gid:" {print $2, $3, $4, $5}' "/proc/$pid/status")
  [ "$line" = "$want_gid $want_gid $want_gid $want_gid" ] ||
    fail "$name: gids (real effective saved fs) are '$line', expected $want_gid"
  line=$(awk '$1 == "Groups:" {$1 = ""; print}' "/proc/$pid/status")
  for g in $line; do
    [ "$g" = "$want_gid" ] ||
      fail "$name: supplementary group $g kept (groups:$line)"
  done
}

# start_fg NAME ARGS...: nbdkit -f in the background; sets $pid.
start_fg ()
{
  local name=$1 pidfile="$piddir/$1.pid" i
  shift
  "$NBDKIT" -f -P "$pidfile" "$@" memory 1M 2>"$tmpdir/$name.err" &
  pid=$!
  cleanup_fn kill_pid "$pid"
  for (( i=0; i<300; i++ )); do
    [ -s "$pidfile" ] && break
    kill -0 "$pid" 2>/dev/null ||
      fail "$name: nbdkit exited during startup: $(cat "$tmpdir/$name.err")"
    sleep 0.1
  done
  [ -s "$pidfile" ] || fail "$name: no pidfile after 30 seconds"
  [ "$(cat "$pidfile")" = "$pid" ] || fail "$name: pidfile is not nbdkit's pid"
}

# --- -u USER -g GROUP, socket in a root-only directory ------------------
sock="$private/nbd.sock"
start_fg user-group -u "$user" -g "$group" -U "$sock"
check_ids "$pid" "$uid" "$gid" "-u $user -g $group"
[ -S "$sock" ] || fail "-u -g: no socket at $sock"
[ "$(stat -c %u "$sock")" = 0 ] ||
  fail "-u -g: $sock is owned by uid $(stat -c %u "$sock"): not bound as root"
[ "$(nbdinfo --size "nbd+unix:///?socket=$sock")" = 1048576 ] ||
  fail "-u -g: the server does not serve"
kill_pid "$pid"
echo "ok: -u $user -g $group: uid $uid gid $gid, socket bound as root"

# --- -u USER alone: the user's primary group ------------------------------
start_fg user-only -u "$user" -U "$private/nbd2.sock"
check_ids "$pid" "$uid" "$user_gid" "-u $user"
[ "$(nbdinfo --size "nbd+unix:///?socket=$private/nbd2.sock")" = 1048576 ] ||
  fail "-u: the server does not serve"
kill_pid "$pid"
echo "ok: -u $user: primary group $user_gid"

# --- numeric ids -----------------------------------------------------------
start_fg numeric -u "$uid" -g "$gid" -U "$private/nbd3.sock"
check_ids "$pid" "$uid" "$gid" "-u $uid -g $gid"
kill_pid "$pid"
echo "ok: -u $uid -g $gid (numeric)"

# --- forking into the background -----------------------------------------
pidfile="$piddir/daemon.pid"
"$NBDKIT" -P "$pidfile" -u "$user" -g "$group" -U "$private/daemon.sock" \
  memory 1M 2>"$tmpdir/daemon.err" ||
  fail "forking with -u: exit status $?: $(cat "$tmpdir/daemon.err")"
for (( i=0; i<300; i++ )); do
  [ -s "$pidfile" ] && break
  sleep 0.1
done
[ -s "$pidfile" ] || fail "forking with -u: no pidfile"
daemon=$(cat "$pidfile")
cleanup_fn kill_pid "$daemon"
check_ids "$daemon" "$uid" "$gid" "forked -u -g"
[ "$(nbdinfo --size "nbd+unix:///?socket=$private/daemon.sock")" = 1048576 ] ||
  fail "forking with -u: the daemon does not serve"
kill_pid "$daemon"
echo "ok: forked daemon runs as $user"

# --- a privileged TCP port ---------------------------------------------------
unpriv=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 1024)
port=$(/usr/bin/python3 -c '
import socket, sys
for p in range(min(int(sys.argv[1]), 1024) - 1, 500, -1):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(p)
    break
' "$unpriv")
if [ -z "$port" ]; then
  echo "no free privileged port below $unpriv: TCP part not checked"
else
  start_fg tcp -u "$user" -g "$group" -i 127.0.0.1 -p "$port"
  check_ids "$pid" "$uid" "$gid" "-u -g -p $port"
  [ "$(nbdinfo --size "nbd://127.0.0.1:$port")" = 1048576 ] ||
    fail "-u -p $port: the server does not serve"
  kill_pid "$pid"
  echo "ok: privileged port $port bound as root, served as $user"
fi

# --- bad names -------------------------------------------------------------
bad_user="nbdkit-nosuch-$$"
for opt in -u -g; do
  status=0
  timeout 60 "$NBDKIT" "$opt" "$bad_user" -U "$tmpdir/bad$opt.sock" \
    memory 1M --run 'exit 9' 2>"$tmpdir/bad.err" || status=$?
  [ "$status" -eq 1 ] || fail "$opt $bad_user: exit status $status, expected 1"
  grep -q -- "$bad_user" "$tmpdir/bad.err" ||
    fail "$opt $bad_user: the message does not name it: $(cat "$tmpdir/bad.err")"
  echo "ok: $opt $bad_user refused: $(tail -n1 "$tmpdir/bad.err")"
done

# --- --selinux-label without SELinux ------------------------------------------
if [ -e /sys/fs/selinux/enforce ]; then
  echo "SELinux is enabled here: --selinux-label failure not checked"
else
  status=0
  timeout 60 "$NBDKIT" --selinux-label=system_u:object_r:svirt_socket_t:s0 \
    -U "$tmpdir/label.sock" memory 1M --run 'exit 9' \
    2>"$tmpdir/label.err" || status=$?
  [ "$status" -eq 1 ] || fail "--selinux-label: exit status $status, expected 1"
  grep -qi 'selinux' "$tmpdir/label.err" ||
    fail "--selinux-label: no message about SELinux: $(cat "$tmpdir/label.err")"
  [ ! -e "$tmpdir/label.sock" ] ||
    fail "--selinux-label: the socket was created without its label"
  echo "ok: --selinux-label refused: $(head -n1 "$tmpdir/label.err")"
fi

echo "$0: ok"
