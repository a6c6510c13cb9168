#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The ssh plugin's parameters are checked when nbdkit starts: each bad
# value exits with status 1 before serving, naming the parameter.  No
# SSH server is needed (no connection is ever made).
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires_plugin ssh
make_tmpdir

# expect_error PATTERN ARGS...: nbdkit exits 1 and says PATTERN.
expect_error ()
{
  local pattern=$1 status
  shift
  "$NBDKIT" -U - ssh "$@" --run 'echo served' \
    >"$tmpdir/out" 2>"$tmpdir/err" && status=0 || status=$?
  [ "$status" = 1 ] ||
    fail "ssh $*: exit status $status, expected 1: $(cat "$tmpdir/err")"
  ! grep -q served "$tmpdir/out" || fail "ssh $*: served anyway"
  grep -q -- "$pattern" "$tmpdir/err" ||
    fail "ssh $*: no error matching '$pattern' in: $(cat "$tmpdir/err")"
}

# expect_ok ARGS...: the parameters are accepted (nothing connects).
expect_ok ()
{
  "$NBDKIT" -U - ssh "$@" --run 'exit 0' 2>"$tmpdir/err" ||
    fail "ssh $*: refused: $(cat "$tmpdir/err")"
}

touch "$tmpdir/key" "$tmpdir/known" "$tmpdir/config"
echo secret > "$tmpdir/pw"

expect_error "host=HOST" disk.img
expect_error "path" host=example.com
expect_error "create-size=SIZE" host=h disk.img create=true
expect_error "create-size=foo" host=h disk.img create=true create-size=foo
expect_error "create-mode=999" host=h disk.img create=true create-size=1M \
  create-mode=999
expect_error "create-mode" host=h disk.img create-mode=rw
expect_error "create=maybe" host=h disk.img create=maybe
expect_error "port=0" host=h disk.img port=0
expect_error "port=70000" host=h disk.img port=70000
expect_error "port=no-such-service" host=h disk.img port=no-such-service
expect_error "timeout" host=h disk.img timeout=soon
expect_error "timeout" host=h disk.img timeout=-1
expect_error "verify-remote-host=perhaps" host=h disk.img \
  verify-remote-host=perhaps
expect_error "compression=xx" host=h disk.img compression=xx
expect_error "identity=$tmpdir/nonexistent" host=h disk.img \
  "identity=$tmpdir/key" "identity=$tmpdir/nonexistent"
expect_error "known-hosts=$tmpdir/nonexistent" host=h disk.img \
  "known-hosts=$tmpdir/nonexistent"
expect_error "config=$tmpdir/nonexistent" host=h disk.img \
  "config=$tmpdir/nonexistent"
expect_error "$tmpdir/nonexistent" host=h disk.img \
  "password=+$tmpdir/nonexistent"
expect_error "unknown parameter 'foo'" host=h disk.img foo=bar

# Good values: service names, octal modes, %-names left to libssh, a
# missing known-hosts file when the host key is not checked.
expect_ok host=h disk.img port=ssh timeout=5 compression=true \
  create=true create-size=1M create-mode=0644 "identity=$tmpdir/key" \
  'identity=%d/id_test' "known-hosts=$tmpdir/known" \
  "config=$tmpdir/config" "password=+$tmpdir/pw" user=bob
expect_ok host=h path=disk.img "known-hosts=$tmpdir/nonexistent" \
  verify-remote-host=false config=
