#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The curl plugin refuses every bad parameter before serving, with exit
# status 1 and a message naming the parameter and its value; --help and
# --dump-plugin describe it.  No server is needed: the checks come first.
source "${srcdir:-$(dirname "$0")}/functions.sh"
requires_plugin curl
make_tmpdir

# expect_error MESSAGE ARGS...: nbdkit curl ARGS fails with status 1
# before serving and its error output contains MESSAGE.
expect_error ()
{
  local msg=$1 status=0
  shift
  "$NBDKIT" -U - curl "$@" --run 'echo SERVED' >"$tmpdir/out" 2>&1 ||
    status=$?
  [ "$status" -eq 1 ] ||
    fail "curl $*: exit status $status, expected 1: $(cat "$tmpdir/out")"
  ! grep -q SERVED "$tmpdir/out" || fail "curl $*: served anyway"
  grep -qF -- "$msg" "$tmpdir/out" ||
    fail "curl $*: no \"$msg\" in: $(cat "$tmpdir/out")"
}

u=http://127.0.0.1:9/disk
expect_error "url=" user=alice
expect_error 'url=http://[::1: invalid URL' 'http://[::1'
expect_error "timeout=-1: the timeout cannot be negative" "$u" timeout=-1
expect_error "connections=0: must be between 1 and 1024" "$u" connections=0
expect_error "connections=5000: must be between 1 and 1024" "$u" connections=5000
expect_error 'protocols=http,gopher3: unknown protocol "gopher3"' \
  "$u" protocols=http,gopher3
expect_error "protocols=: the list of protocols is empty" "$u" protocols=
expect_error "ssl-version=tlsv9: unknown version" "$u" ssl-version=tlsv9
expect_error "sslverify=maybe: expected a boolean" "$u" sslverify=maybe
expect_error "tcp-nodelay=nah: expected a boolean" "$u" tcp-nodelay=nah
expect_error "cookie=b=2: cookie= can be given only once" \
  "$u" cookie=a=1 cookie=b=2
expect_error "$tmpdir/missing" "$u" user=alice password=+"$tmpdir/missing"
expect_error "header=X-A: 1" "$u" header=$'X-A: 1\r\nX-B: 2'
expect_error "header-script= cannot be used with header=" \
  "$u" header='X-A: 1' header-script='echo X-B: 2'
expect_error "cookie-script-renew=5 needs cookie-script=" \
  "$u" cookie-script-renew=5
expect_error "unknown parameter 'colour'" "$u" colour=blue

# Secrets from files are accepted (and never echoed).
printf 'secret\n' > "$tmpdir/pw"
"$NBDKIT" -U - curl "$u" user=alice password=+"$tmpdir/pw" \
  cookie=+"$tmpdir/pw" proxy-password=+"$tmpdir/pw" --run true ||
  fail "password=+FILE, cookie=+FILE, proxy-password=+FILE refused"

# --help lists the parameters; the thread model is parallel.
"$NBDKIT" curl --help > "$tmpdir/help" || fail "curl --help failed"
for key in url user password cookie cookiefile cookiejar header user-agent \
           header-script header-script-renew cookie-script \
           cookie-script-renew followlocation protocols proxy proxy-user proxy-password \
           sslverify cainfo capath ssl-version ssl-cipher-list \
           tls13-ciphers tcp-keepalive tcp-nodelay timeout \
           unix-socket-path connections; do
  grep -q "^\[*$key=" "$tmpdir/help" || fail "--help does not list $key="
done
"$NBDKIT" curl --dump-plugin > "$tmpdir/dump" || fail "--dump-plugin failed"
grep -qx 'thread_model=parallel' "$tmpdir/dump" ||
  fail "thread model is not parallel: $(cat "$tmpdir/dump")"
grep -qx 'magic_config_key=url' "$tmpdir/dump" || fail "magic key is not url"
echo "$0: OK"
