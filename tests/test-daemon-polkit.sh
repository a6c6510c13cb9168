#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd authorization: reading is open to everyone; a non-root user is
# denied changes (AccessDenied), a member of group nbdkit is allowed by the
# example rule (polkit/50-nbdkit.rules), all through a real polkitd on the
# private bus.  Without polkitd every change by non-root is denied.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
requires test -x /usr/lib/polkit-1/polkitd
requires which runuser
[ "$(id -u)" = 0 ] || skip "needs root to run polkitd and switch users"
daemon_setup
getent group nbdkit >/dev/null || groupadd nbdkit
id nbdtest >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin nbdtest
id nbdadm >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin -G nbdkit nbdadm
id -nG nbdadm | grep -qw nbdkit || usermod -aG nbdkit nbdadm

as_user ()
{
  local u=$1; shift
  runuser -u "$u" -- env DBUS_SYSTEM_BUS_ADDRESS="$BUS" "$@"
}
M=/org/nbdkit/Daemon1
A=org.nbdkit.Daemon1.Manager.AddExport

# A denial is AccessDenied, or InteractiveAuthorizationRequired when polkit
# would ask for a password.
expect_denied ()
{
  local out
  if out=$("$@" 2>&1); then fail "not denied: $*"; fi
  case $out in
    *org.freedesktop.DBus.Error.AccessDenied:*|*org.freedesktop.DBus.Error.InteractiveAuthorizationRequired:*)
      echo "ok: denied: ${out#*Error: }" ;;
    *) fail "expected a denial from '$*', got: $out" ;;
  esac
}

start_daemon
add_export root1 memory '@as []' '[("size", "1M")]' "{'start': <'manual'>}" >/dev/null ||
  fail "root is denied"

# No polkitd on the bus: non-root changes are denied, reading works.
expect_error org.freedesktop.DBus.Error.AccessDenied \
  as_user nbdadm gdbus call --system -d org.nbdkit.Daemon1 -o $M -m $A x memory '@as []' '[("size","1M")]' '@a{sv} {}'
as_user nbdtest busctl --system call org.nbdkit.Daemon1 $M org.nbdkit.Daemon1.Manager ListExports >/dev/null ||
  fail "reading denied"

# polkitd with our action and rule (installed for this test, removed after).
actions=/usr/share/polkit-1/actions rules=/etc/polkit-1/rules.d
[ -e $actions/org.nbdkit.daemon1.policy ] && skip "a policy is installed on this machine already"
install -m644 "$abs_top_srcdir/polkit/org.nbdkit.daemon1.policy" $actions/
cleanup_fn rm -f $actions/org.nbdkit.daemon1.policy
mkdir -p $rules
install -m644 "$abs_top_srcdir/polkit/50-nbdkit.rules" $rules/50-nbdkit-test-$$.rules
cleanup_fn rm -f $rules/50-nbdkit-test-$$.rules
/usr/lib/polkit-1/polkitd --no-debug > "$D/polkitd.log" 2>&1 &
cleanup_fn kill_pid $!
wait_for_name org.freedesktop.PolicyKit1 || fail "polkitd did not start"

expect_denied \
  as_user nbdtest gdbus call --system -d org.nbdkit.Daemon1 -o $M -m $A t1 memory '@as []' '[("size","1M")]' '@a{sv} {}'
expect_denied \
  as_user nbdtest gdbus call --system -d org.nbdkit.Daemon1 -o "$(export_path root1)" -m org.nbdkit.Daemon1.Export.Start
as_user nbdadm gdbus call --system -d org.nbdkit.Daemon1 -o $M -m $A a1 memory '@as []' '[("size","1M")]' '@a{sv} {}' ||
  fail "group nbdkit denied"
wait_state a1 running
as_user nbdadm busctl --system call org.nbdkit.Daemon1 $M org.nbdkit.Daemon1.Manager RemoveExport ss a1 hard ||
  fail "group nbdkit cannot remove"
mcall GetExport s t1 >/dev/null 2>&1 && fail "denied export exists"
# Denied callers do not block others: one slow denial, one allowed call.
as_user nbdtest gdbus call --system -d org.nbdkit.Daemon1 -o $M -m $A t2 memory '@as []' '[("size","1M")]' '@a{sv} {}' >/dev/null 2>&1 &
denied=$!
as_user nbdadm gdbus call --system -d org.nbdkit.Daemon1 -o $M -m $A a2 memory '@as []' '[("size","1M")]' "{'start': <'manual'>}" >/dev/null ||
  fail "second allowed call"
wait $denied && fail "t2 was allowed"
echo PASS
