#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitctl as non-root users, with a real polkitd on the private bus and
# the shipped action file and example rule: reading is open to everyone,
# a user outside group nbdkit is denied changes (exit 5, one line), a
# member of group nbdkit is allowed.

source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
source "$srcdir/test-daemon-ctl-lib.bash"

ctl_setup
requires_plugin memory
[ "$(id -u)" = 0 ] || skip "needs root to create test users and run polkitd"
[ -x /usr/lib/polkit-1/polkitd ] || skip "polkitd is not installed"
requires which runuser
requires unshare -m true
daemon_setup

getent group nbdkit >/dev/null || groupadd nbdkit
id nbdtest >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin nbdtest
id nbdadm >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin -G nbdkit nbdadm
id -nG nbdadm | grep -qw nbdkit || usermod -aG nbdkit nbdadm
id -nG nbdtest | grep -qw nbdkit && skip "user nbdtest is in group nbdkit"

# polkitd reads fixed directories: give it ours in a private mount
# namespace, leaving the machine's untouched.
mkdir -p "$D/pk/actions" "$D/pk/rules"
cp /usr/share/polkit-1/actions/*.policy "$D/pk/actions/" 2>/dev/null || :
cp "$abs_top_srcdir/polkit/org.nbdkit.daemon1.policy" "$D/pk/actions/" ||
  fail "no polkit/org.nbdkit.daemon1.policy"
cp "$abs_top_srcdir/polkit/50-nbdkit.rules" "$D/pk/rules/" || fail "no rules"
chown -R polkitd:root "$D/pk/rules" 2>/dev/null || :
chmod 700 "$D/pk/rules"
unshare -m --propagation private sh -c "
  mount --bind '$D/pk/actions' /usr/share/polkit-1/actions &&
  mount --bind '$D/pk/rules' /etc/polkit-1/rules.d &&
  exec /usr/lib/polkit-1/polkitd" > "$D/polkitd.log" 2>&1 &
polkitd_pid=$!
cleanup_fn kill_pid "$polkitd_pid"
wait_for_name org.freedesktop.PolicyKit1 ||
  skip "polkitd did not start on the private bus: $(cat "$D/polkitd.log")"

start_daemon

# as USER ARGS...: nbdkitctl as USER on the private bus, no terminal.
as ()
{
  local user=$1
  shift
  runuser -u "$user" -- env DBUS_SYSTEM_BUS_ADDRESS="$BUS" "$CTL" "$@" \
    < /dev/null
}

ctl add-export rootdisk --start=manual memory size=1M

# Reading is open to everyone.
as nbdtest list > "$D/out" || fail "nbdtest cannot list"
grep -q '^rootdisk ' "$D/out" || fail "nbdtest list: $(cat "$D/out")"
as nbdtest --json show-export rootdisk > "$D/out" ||
  fail "nbdtest cannot show-export"

# Changes by a user outside group nbdkit: access denied, exit 5.
expect_exit 5 '^nbdkitctl: access denied' \
  as nbdtest add-export t1 memory size=1M
expect_exit 5 'access denied' as nbdtest --no-ask-password start rootdisk
expect_exit 5 'access denied' as nbdtest remove-export rootdisk
expect_exit 5 'access denied' as nbdtest update-export rootdisk -r
mcall GetExport s t1 >/dev/null 2>&1 && fail "denied add-export created t1"

# A member of group nbdkit may.
as nbdadm add-export a1 --start=manual memory size=1M ||
  fail "nbdadm add-export: $(tail -3 "$D/daemon.log")"
as nbdadm start a1 || fail "nbdadm start"
wait_state a1 running
as nbdadm update-export a1 --description=by-nbdadm || fail "nbdadm update"
as nbdadm stop a1 || fail "nbdadm stop"
as nbdadm remove-export rootdisk || fail "nbdadm remove-export"
as nbdadm remove-export a1 || fail "nbdadm remove-export a1"
ctl --json list > "$D/ctl.json"
json_check "$D/ctl.json" "d == []"

echo "$0: OK"
