#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The ssh plugin against a private sshd: a remote file read byte for
# byte; writes (small, unaligned, larger than one SFTP packet, FUA) and
# flush, seen by a second connection, and the remote file holding
# exactly them; -r refuses writes; a relative path starts at the remote
# home; compression= and timeout=; create=true with create-size and
# create-mode replaces a file; config=FILE supplies port, user, key and
# known hosts; -D ssh.log shows libssh's log.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin ssh
make_tmpdir
export tmpdir
source "$srcdir/ssh-server.sh"
start_sshd

disk=$tmpdir/disk.img
head -c 1M /dev/urandom > "$disk"
cp "$disk" "$tmpdir/orig.img"

cat > "$tmpdir/rw.py" <<'PY'
import errno, os
K, M = 1024, 1024 * 1024
assert h.get_size() == M, h.get_size()
assert not h.is_read_only()
assert h.can_flush() and h.can_fua() and h.can_multi_conn()
assert not h.can_trim()
orig = open(os.environ["tmpdir"] + "/orig.img", "rb").read()
assert h.pread(M, 0) == orig
assert h.pread(3, M - 3) == orig[-3:]
big = bytes((i * 7) % 251 for i in range(300 * K))
h.pwrite(b"hello", 1)
h.pwrite(big, 100 * K + 3)
h.pwrite(b"FUA!", M - 4, nbd.CMD_FLAG_FUA)
h.flush()
assert h.pread(5, 1) == b"hello"
assert h.pread(len(big), 100 * K + 3) == big
h2 = nbd.NBD()
h2.connect_uri(uri)
assert h2.pread(4, M - 4) == b"FUA!"
PY

# Read and write through one server.
"$NBDKIT" -U - ssh "${SSH_PARAMS[@]}" "$disk" \
  --run 'nbdsh -u "$uri" -c "uri = \"$uri\"" -c - < "$tmpdir/rw.py"' ||
  fail "read/write through the ssh plugin failed"

# Read-only: writes are refused, the data is still readable (and
# compression and timeout are accepted by libssh and the server).  The
# path is relative, so it is taken from root's home directory.
home=$(getent passwd root | cut -d: -f6)
relative=$(realpath -m --relative-to="$home" "$disk")
cat > "$tmpdir/ro.py" <<'PY'
import errno, os
K, M = 1024, 1024 * 1024
d = os.environ["tmpdir"]
assert h.is_read_only()
# The remote file holds exactly the writes, and reads show it.
want = bytearray(open(d + "/orig.img", "rb").read())
big = bytes((i * 7) % 251 for i in range(300 * K))
want[1:6] = b"hello"
want[100 * K + 3:100 * K + 3 + len(big)] = big
want[M - 4:] = b"FUA!"
assert open(d + "/disk.img", "rb").read() == want, "remote file differs"
assert h.pread(M, 0) == want, "read differs"
try:
    h.pwrite(b"x", 0)
    assert False, "write succeeded on a read-only export"
except nbd.Error as e:
    assert e.errnum == errno.EPERM, e.errnum
PY
"$NBDKIT" -U - -r ssh "${SSH_PARAMS[@]}" compression=true timeout=10 \
  "$relative" --run 'nbdsh -u "$uri" -c - < "$tmpdir/ro.py"' ||
  fail "read-only access failed"

# create=true replaces an existing file with a zeroed one of create-size.
new=$tmpdir/new.img
head -c 5000 /dev/urandom > "$new"
chmod 0666 "$new"
"$NBDKIT" -U - ssh "${SSH_PARAMS[@]}" "$new" create=true create-size=128k \
  create-mode=0640 --run 'nbdsh -u "$uri" -c "
assert h.get_size() == 131072, h.get_size()
assert h.pread(131072, 0) == bytes(131072)
h.pwrite(b\"new\", 131069)
h.flush()
h2 = nbd.NBD()
h2.connect_uri(\"$uri\")
assert h2.pread(3, 131069) == b\"new\"
"' || fail "create=true failed"
[ "$(stat -c %s:%a "$new")" = 131072:640 ] ||
  fail "created file has size:mode $(stat -c %s:%a "$new"), not 131072:640"
[ "$(tail -c 3 "$new")" = new ] || fail "created file lacks the write"

# config=FILE gives the port, user, identity and known hosts file.
cat > "$tmpdir/ssh_config" <<EOF
Port $SSHD_PORT
User root
IdentityFile $tmpdir/user_key
UserKnownHostsFile $tmpdir/known_hosts
EOF
# -D ssh.log=2 sends libssh's protocol log to nbdkit's debug output.
size=$("$NBDKIT" -U - -v -D ssh.log=2 ssh host=127.0.0.1 \
         config="$tmpdir/ssh_config" "$disk" \
         --run 'nbdinfo --size "$uri"' 2>"$tmpdir/log") ||
  fail "config=FILE did not connect: $(cat "$tmpdir/log")"
[ "$size" = 1048576 ] || fail "config=FILE: size $size"
grep -q "libssh: .*ssh_connect" "$tmpdir/log" ||
  fail "-D ssh.log=2: no libssh protocol log in the debug output"
