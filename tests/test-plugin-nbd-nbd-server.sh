#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkit nbd -> nbd-server, with a generated config: two exports, one
# writable and one read-only, on a Unix socket and on TCP loopback.
# Through the proxy: sizes, contents (checksums against the files),
# writes (with FUA) landing in the file, the read-only, flush and FUA
# flags passing through for each export, and a write to the read-only
# export refused with EPERM.

source "$srcdir/functions.sh"
source "$srcdir/test-plugin-nbd-helpers.bash"
requires nbd-server -V
requires nbdsh --version
requires nbdcopy --version
requires nbdinfo --version
requires_plugin nbd

make_tmpdir
export tmpdir
head -c 8388608 /dev/urandom >"$tmpdir/disk.img"
head -c 3145728 /dev/urandom >"$tmpdir/ro.img"
cp "$tmpdir/disk.img" "$tmpdir/disk.orig"
port=$(free_port)
sock=$tmpdir/nbd-server.sock

# nbd-server listens either on a Unix socket or on TCP: run one of each
# over the same two export files.
start_nbd_server ()
{
  local name=$1 listen=$2
  cat >"$tmpdir/$name.conf" <<EOF
[generic]
  allowlist = true
$listen
[disk]
  exportname = $tmpdir/disk.img
  flush = true
  fua = true
[ro]
  exportname = $tmpdir/ro.img
  readonly = true
EOF
  nbd-server -C "$tmpdir/$name.conf" -p "$tmpdir/$name.pid" \
    >"$tmpdir/$name.log" 2>&1 ||
    fail "nbd-server did not start: $(cat "$tmpdir/$name.log")"
  wait_for_path "$tmpdir/$name.pid"
  cleanup_fn kill_pid "$(cat "$tmpdir/$name.pid")"
}
start_nbd_server unix "  unixsock = $sock"
wait_for_path "$sock"
start_nbd_server tcp "  listenaddr = 127.0.0.1
  port = $port"

# The writable export over the Unix socket: read it all, then write.
head -c 1048576 /dev/urandom >"$tmpdir/patch"
"$NBDKIT" -U - nbd socket="$sock" export=disk --run '
  set -e
  [ "$(nbdinfo --size "$uri")" = 8388608 ]
  nbdcopy "$uri" "$tmpdir/read.img"
  nbdsh -u "$uri" -c "
import os
assert not h.is_read_only()
assert h.can_flush() and h.can_fua()
patch = open(os.environ[\"tmpdir\"] + \"/patch\", \"rb\").read()
h.pwrite(patch, 2 << 20, nbd.CMD_FLAG_FUA)
h.flush()
assert h.pread(len(patch), 2 << 20) == patch
"
' || fail "proxying the writable nbd-server export failed"
cmp "$tmpdir/disk.orig" "$tmpdir/read.img" ||
  fail "data read through the proxy differs from the export file"
dd if="$tmpdir/patch" of="$tmpdir/disk.orig" bs=1M seek=2 conv=notrunc \
  status=none
cmp "$tmpdir/disk.orig" "$tmpdir/disk.img" ||
  fail "the write through the proxy did not land in the export file"
[ "$(sha256sum <"$tmpdir/disk.orig")" = "$(sha256sum <"$tmpdir/disk.img")" ] ||
  fail "checksums differ"

# The read-only export over TCP.
"$NBDKIT" -U - nbd hostname=127.0.0.1 port="$port" export=ro --run '
  set -e
  [ "$(nbdinfo --size "$uri")" = 3145728 ]
  nbdcopy "$uri" "$tmpdir/ro.read"
  nbdsh -u "$uri" -c "
assert h.is_read_only()
assert not h.can_flush() and not h.can_fua()
h.set_strict_mode(0)       # let the write reach nbdkit
try:
    h.pwrite(b\"x\" * 512, 0)
    assert False, \"write to a read-only export succeeded\"
except nbd.Error as e:
    assert e.errno == \"EPERM\", e
"
' || fail "proxying the read-only nbd-server export failed"
cmp "$tmpdir/ro.img" "$tmpdir/ro.read" ||
  fail "read-only export read through the proxy differs"

# The same through a URI naming the export.
"$NBDKIT" -U - nbd "nbd://127.0.0.1:$port/ro" --run '
  nbdcopy "$uri" "$tmpdir/ro.uri"
' || fail "nbd:// URI to nbd-server failed"
cmp "$tmpdir/ro.img" "$tmpdir/ro.uri" || fail "wrong data through the URI"

# An export nbd-server does not have: the client's connection fails and
# the reason is logged.
if "$NBDKIT" -U - nbd socket="$sock" export=nosuch \
     --run 'nbdinfo --size "$uri"' >"$tmpdir/nosuch.out" 2>&1; then
  fail "export=nosuch was served"
fi
grep -q 'cannot connect to the NBD server' "$tmpdir/nosuch.out" ||
  fail "no reason logged for a missing export: $(cat "$tmpdir/nosuch.out")"

echo "$0: ok"
