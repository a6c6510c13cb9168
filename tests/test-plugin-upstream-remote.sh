#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Upstream-built plugin binaries for remote sources (issue 17): Debian's
# nbdkit-curl-plugin.so and nbdkit-ssh-plugin.so, loaded by our nbdkit,
# serve the same bytes as the files behind a local HTTP server and a
# private sshd; ssh writes land in the remote file.  libvirt's probe
# "nbdkit curl --version" answers with the plugin's version line.
source "${srcdir:-$(dirname "$0")}/functions.sh"
normal_build_only "a comparison with Debian's nbdkit"

debdir=/usr/lib/x86_64-linux-gnu/nbdkit/plugins
requires nbdcopy --version
requires nbdsh --version
make_tmpdir
export tmpdir
[ -f "$debdir/nbdkit-curl-plugin.so" ] && [ -f "$debdir/nbdkit-ssh-plugin.so" ] ||
  skip "Debian's nbdkit curl and ssh plugins are not installed"

# curl: Debian's binary against our loopback HTTP server.
source "$srcdir/curl-functions.sh"
start_curl_server
"$NBDKIT" "$debdir/nbdkit-curl-plugin.so" --version | grep -q '^curl ' ||
  fail "curl --version: $("$NBDKIT" "$debdir/nbdkit-curl-plugin.so" --version 2>&1)"
"$NBDKIT" -r -U - "$debdir/nbdkit-curl-plugin.so" "$url/disk" \
    --run 'nbdcopy "$uri" "$tmpdir/curl.img"' ||
  fail "Debian's curl plugin under our nbdkit failed"
cmp "$tmpdir/disk.img" "$tmpdir/curl.img" || fail "curl: data differ"
echo "ok: Debian's curl plugin binary"

# ssh: Debian's binary against a private sshd; read, write, read back.
source "$srcdir/ssh-server.sh"
start_sshd
head -c 256k /dev/urandom > "$tmpdir/remote.img"
"$NBDKIT" -U - "$debdir/nbdkit-ssh-plugin.so" "${SSH_PARAMS[@]}" \
    "$tmpdir/remote.img" --run '
  nbdcopy "$uri" "$tmpdir/ssh.img" &&
  nbdsh -u "$uri" -c "
h.pwrite(b\"upstream\" * 512, 8192)
h.flush()
assert h.pread(4096, 8192) == b\"upstream\" * 512
"' || fail "Debian's ssh plugin under our nbdkit failed"
head -c 8192 "$tmpdir/remote.img" | cmp - <(head -c 8192 "$tmpdir/ssh.img") ||
  fail "ssh: data differ"
[ "$(dd if="$tmpdir/remote.img" bs=4096 skip=2 count=1 status=none | head -c 8)" = upstream ] ||
  fail "ssh: the write did not reach the remote file"
echo "ok: Debian's ssh plugin binary"
echo "$0: ok"
