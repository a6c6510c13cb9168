#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The captive-nbdkit examples from nbdkit-captive(1), run for real:
# - nbdsh -u "$uri" reading from a 1-byte memory disk;
# - nbdinfo "$uri" reporting the size;
# - qemu-img convert copying a random file into the export through $nbd
#   and back out through $uri: checksums match, and the copy is in the
#   served file (file plugin) too;
# - the same over TCP loopback (-i 127.0.0.1 -p PORT);
# and the other way round, the client starting nbdkit itself: libnbd's
# connect_command (nbdkit -s --exit-with-parent on a socketpair) and
# connect_systemd_socket_activation (nbdkit gets LISTEN_FDS from libnbd).
# Each nbdkit exits with the command's status once the command is done,
# and none is left behind by a client that started it.

source "$srcdir/functions.sh"
requires nbdsh --version
requires nbdinfo --version
requires qemu-img --version
requires /usr/bin/python3 --version
requires_plugin memory
requires_plugin file

make_tmpdir
cd "$tmpdir" || fail "cd $tmpdir"

# --- nbdsh ---------------------------------------------------------------
out=$(timeout 60 "$NBDKIT" -U - memory 1 \
        --run 'nbdsh -u "$uri" -c "print(h.pread(1, 0))"') ||
  fail "nbdsh example failed"
# Older libnbd returns a bytearray: "bytearray(b'\x00')".
case $out in
  "b'\x00'"|"bytearray(b'\x00')") ;;
  *) fail "nbdsh example printed '$out', expected one zero byte" ;;
esac
echo "ok: nbdsh"

# --- nbdinfo -------------------------------------------------------------
out=$(timeout 60 "$NBDKIT" -U - memory 1M --run 'nbdinfo --size "$uri"') ||
  fail "nbdinfo example failed"
[ "$out" = 1048576 ] || fail "nbdinfo printed '$out', expected 1048576"
echo "ok: nbdinfo"

# --- qemu-img convert ----------------------------------------------------
head -c $((4 * 1024 * 1024)) /dev/urandom >in.img
sum_in=$(sha256sum <in.img | cut -d' ' -f1)

# Into a memory disk and back out again, in one captive run.
timeout 120 "$NBDKIT" -U - memory 4M --run '
  set -e
  qemu-img convert -n -f raw -O raw in.img "$nbd"
  qemu-img convert -f raw -O raw "$uri" out.img
' || fail "qemu-img convert through captive nbdkit failed"
sum_out=$(sha256sum <out.img | cut -d' ' -f1)
[ "$sum_in" = "$sum_out" ] ||
  fail "qemu-img round trip through the memory plugin changed the data"
echo "ok: qemu-img convert to and from a memory disk"

# Into a file served by the file plugin: the file itself has the data.
truncate -s 4M disk.img
rm -f out.img
timeout 120 "$NBDKIT" -U - file disk.img --run '
  set -e
  qemu-img info -f raw "$uri" | grep -q "virtual size: 4 MiB"
  qemu-img convert -n -f raw -O raw in.img "$uri"
  qemu-img convert -f raw -O raw "$nbd" out.img
' || fail "qemu-img convert through the file plugin failed"
[ "$(sha256sum <disk.img | cut -d' ' -f1)" = "$sum_in" ] ||
  fail "qemu-img wrote through nbdkit but disk.img does not hold the data"
[ "$(sha256sum <out.img | cut -d' ' -f1)" = "$sum_in" ] ||
  fail "qemu-img read back different data from the file plugin"
echo "ok: qemu-img convert to and from the file plugin"

# --- TCP loopback --------------------------------------------------------
port=$(/usr/bin/python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
out=$(timeout 60 "$NBDKIT" -i 127.0.0.1 -p "$port" memory 2M \
        --run 'nbdsh -u "$uri" -c "h.pwrite(b\"tcp\", 0)" \
                              -c "print(h.get_size(), bytes(h.pread(3, 0)))"') ||
  fail "captive nbdsh over TCP failed"
[ "$out" = "2097152 b'tcp'" ] || fail "captive nbdsh over TCP printed '$out'"
echo "ok: TCP loopback"

# --- the client starts nbdkit ---------------------------------------------
# Sizes unique to this run, so that the servers can be told apart from
# any other nbdkit on the machine below.
size1=$(( 3 * 1024 * 1024 + $$ ))
size2=$(( 5 * 1024 * 1024 + $$ ))
export size1 size2
out=$(timeout 60 nbdsh -c '
import os
h.connect_command([os.environ["NBDKIT"], "-s", "--exit-with-parent",
                   "memory", os.environ["size1"]])
h.pwrite(b"cmd", 0)
print(h.get_size(), bytes(h.pread(3, 0)))
') || fail "libnbd connect_command with nbdkit -s failed"
[ "$out" = "$size1 b'cmd'" ] || fail "connect_command printed '$out'"
echo "ok: libnbd connect_command (nbdkit -s)"

out=$(timeout 60 nbdsh -c '
import os
h.connect_systemd_socket_activation([os.environ["NBDKIT"], "memory",
                                     os.environ["size2"]])
print(h.get_size())
') || fail "libnbd connect_systemd_socket_activation failed"
[ "$out" = "$size2" ] || fail "connect_systemd_socket_activation printed '$out'"
echo "ok: libnbd connect_systemd_socket_activation"

# No server started by those clients may outlive them.
pattern="^$NBDKIT (-s --exit-with-parent memory $size1|memory $size2)\$"
for (( i=0; i<50; i++ )); do
  pgrep -f "$pattern" >/dev/null || break
  sleep 0.1
done
if pgrep -f "$pattern" >"$tmpdir/left"; then
  while read -r p; do cleanup_fn kill_pid "$p"; done <"$tmpdir/left"
  fail "nbdkit left running after its client exited: $(cat "$tmpdir/left")"
fi
echo "ok: no server outlives its client"

echo "$0: ok"
