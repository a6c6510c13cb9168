#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The ssh plugin's connection-time failures against a private sshd: a
# changed host key and an unknown one are refused (and accepted with
# verify-remote-host=false), several known-hosts files are all
# consulted, a missing remote file and a key the server does not
# accept (or a wrong password) fail the connection with a message naming
# the cause; timeout= bounds the wait for a server that never answers.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdinfo --version
requires_plugin ssh
make_tmpdir
# Password logins are offered (root's password is never known here).
SSHD_EXTRA_CONFIG="PasswordAuthentication yes
PermitRootLogin yes"
source "$srcdir/ssh-server.sh"
start_sshd

disk=$tmpdir/disk.img
truncate -s 64k "$disk"
: > "$tmpdir/empty_known_hosts"
ssh-keygen -q -t ed25519 -N '' -f "$tmpdir/other_key" ||
  fail "ssh-keygen failed"
echo "[127.0.0.1]:$SSHD_PORT $(cat "$tmpdir/other_key.pub")" \
  > "$tmpdir/wrong_known_hosts"
base=(host=127.0.0.1 "port=$SSHD_PORT" user=root config=)

# Under ASan/UBSan, nbdkit's messages must hold no report (failed
# connections and exits racing with ending connection threads).
no_sanitizer_report ()
{
  ! grep -q -E "Sanitizer|runtime error" "$tmpdir/err" ||
    fail "$1: sanitizer report: $(cat "$tmpdir/err")"
}

# expect_refused NAME PATTERN ARGS...: the client's connection fails,
# and nbdkit's log has a line matching PATTERN.
expect_refused ()
{
  local name=$1 pattern=$2
  shift 2
  if "$NBDKIT" -U - ssh "$@" --run 'nbdinfo --size "$uri"' \
       >"$tmpdir/out" 2>"$tmpdir/err"; then
    fail "$name: the connection succeeded: $(cat "$tmpdir/out")"
  fi
  grep -q -- "$pattern" "$tmpdir/err" ||
    fail "$name: no message matching '$pattern' in: $(cat "$tmpdir/err")"
  no_sanitizer_report "$name"
}

# expect_served NAME ARGS...: the export has the disk's size.
expect_served ()
{
  local name=$1 size
  shift
  size=$("$NBDKIT" -U - ssh "$@" --run 'nbdinfo --size "$uri"' \
           2>"$tmpdir/err") ||
    fail "$name: connection failed: $(cat "$tmpdir/err")"
  [ "$size" = 65536 ] || fail "$name: size $size"
  no_sanitizer_report "$name"
}

expect_refused "changed host key" "host key differs from the one recorded" \
  "${base[@]}" "identity=$tmpdir/user_key" \
  "known-hosts=$tmpdir/wrong_known_hosts" "$disk"
expect_refused "unknown host key" "host key is not recorded" \
  "${base[@]}" "identity=$tmpdir/user_key" \
  "known-hosts=$tmpdir/empty_known_hosts" "$disk"
expect_served "verify-remote-host=false" \
  "${base[@]}" "identity=$tmpdir/user_key" \
  "known-hosts=$tmpdir/wrong_known_hosts" verify-remote-host=false "$disk"
expect_served "several known-hosts files" \
  "${base[@]}" "identity=$tmpdir/user_key" \
  "known-hosts=$tmpdir/wrong_known_hosts" \
  "known-hosts=$tmpdir/empty_known_hosts" \
  "known-hosts=$tmpdir/known_hosts" "$disk"
expect_refused "missing remote file" \
  "cannot open remote file $tmpdir/nonexistent.img .*: no such file" \
  "${SSH_PARAMS[@]}" "$tmpdir/nonexistent.img"
expect_refused "key not accepted" "authentication as user root failed" \
  "${base[@]}" "identity=$tmpdir/other_key" \
  "known-hosts=$tmpdir/known_hosts" "$disk"
expect_refused "wrong password" \
  "offers \\[publickey\\]\\[password\\]; no key or password was accepted" \
  "${base[@]}" "identity=$tmpdir/other_key" password=not-the-password \
  "known-hosts=$tmpdir/known_hosts" "$disk"

# A server that accepts TCP connections and never speaks: timeout=1
# ends the attempt.
python3 -u -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
print(s.getsockname()[1])
held = []
while True:
    held.append(s.accept()[0])
' > "$tmpdir/silent.port" &
cleanup_fn kill_pid $!
for (( i=0; i<100; i++ )); do
  [ -s "$tmpdir/silent.port" ] && break
  sleep 0.05
done
[ -s "$tmpdir/silent.port" ] || fail "the silent server did not start"
expect_refused "timeout=1" "cannot connect: Timeout" \
  host=127.0.0.1 "port=$(cat "$tmpdir/silent.port")" config= timeout=1 \
  "$disk"
