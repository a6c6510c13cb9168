#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitd per-export user and group: the worker runs as that user (every
# uid and gid in /proc/PID/status), serves a file only that user can
# read, and an export whose file only root can read fails at AddExport
# with the worker's error, storing nothing.
source "${srcdir:-$(dirname "$0")}/functions.sh"
source "$srcdir/daemon-functions.sh"
[ "$(id -u)" = 0 ] || skip "switching users needs root"
requires which useradd
requires /usr/bin/python3 -c 'import nbd'
requires_plugin file
daemon_setup
id nbdtest >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin nbdtest
uid=$(id -u nbdtest) gid=$(id -g nbdtest) group=$(id -gn nbdtest)
start_daemon

printf 'only nbdtest reads this' > "$D/owned.img"
truncate -s 1M "$D/owned.img"
chown nbdtest:"$group" "$D/owned.img"
chmod 0600 "$D/owned.img"
add_export u file '@as []' "[(\"file\", \"$D/owned.img\")]" \
    "{'user': <'nbdtest'>, 'group': <'$group'>, 'listeners': <['unix:$D/u.sock']>}" \
    >/dev/null || fail "AddExport u"
wait_state u running
pid=$(eprop u MainPID)
grep -qxP "Uid:\t$uid\t$uid\t$uid\t$uid" /proc/$pid/status ||
  fail "worker uids: $(grep Uid /proc/$pid/status)"
grep -qxP "Gid:\t$gid\t$gid\t$gid\t$gid" /proc/$pid/status ||
  fail "worker gids: $(grep Gid /proc/$pid/status)"
grep -qx "Groups:\s*$gid\s*" /proc/$pid/status ||
  grep -qP "^Groups:\t(\d+ )*$gid( \d+)* ?$" /proc/$pid/status ||
  fail "worker groups: $(grep Groups /proc/$pid/status)"
/usr/bin/python3 -c "
import nbd
h = nbd.NBD()
h.connect_uri('nbd+unix:///u?socket=$D/u.sock')
assert h.pread(23, 0) == b'only nbdtest reads this'
print('served as nbdtest')" || fail "the file was not served"

# A file only root can read: the worker (as nbdtest) cannot open it.
printf 'root only' > "$D/root.img"
chmod 0600 "$D/root.img"
expect_error org.nbdkit.Daemon1.Error.PluginFailed \
    add_export r file '@as []' "[(\"file\", \"$D/root.img\")]" \
    "{'user': <'nbdtest'>, 'listeners': <['unix:$D/r.sock']>}" |
  grep -q 'root.img' || fail "the error does not name the file"
expect_error org.nbdkit.Daemon1.Error.InvalidParameter \
    add_export n memory '@as []' '[("size", "1M")]' \
    "{'user': <'no-such-user-here'>}"
[ "$(ls "$D/state")" = u.json ] || fail "stored: $(ls "$D/state")"
echo PASS
