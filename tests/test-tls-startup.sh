#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# TLS configuration checked at startup: missing, unreadable or broken
# certificate files and PSK files stop nbdkit with an error naming the
# file (and line), ca-cert.pem is needed only for --tls-verify-peer, bad
# --tls-priority strings and --tls with -o are refused, and without
# --tls-certificates the built-in directories are searched in the
# documented order and the one used is shown with -v.

source "$srcdir/functions.sh"
source "$srcdir/tls-functions.sh"
requires nbdinfo --version
requires_plugin memory
requires_tls

make_tmpdir
make_tls_material "$tmpdir"
certs=$tmpdir/server

# expect_error PATTERN NBDKIT-ARGS...: nbdkit must fail at startup, before
# running --run, and print PATTERN (an extended regexp) on stderr.
expect_error ()
{
  local pattern=$1
  shift
  if "$NBDKIT" -U - "$@" memory 1M --run 'echo STARTED' \
       >"$tmpdir/out" 2>"$tmpdir/err"; then
    fail "nbdkit $* started"
  fi
  ! grep -q STARTED "$tmpdir/out" || fail "nbdkit $* ran --run"
  grep -Eq -- "$pattern" "$tmpdir/err" ||
    fail "nbdkit $*: expected /$pattern/ in: $(cat "$tmpdir/err")"
}

# expect_start NBDKIT-ARGS...: nbdkit starts and serves (it is asked
# with the plaintext-capable --tls=on so no client credentials are needed).
expect_start ()
{
  "$NBDKIT" -U - "$@" memory 1M \
    --run 'nbdinfo --size "nbd+unix:///?socket=$unixsocket"' \
    >"$tmpdir/out" 2>"$tmpdir/err" ||
    fail "nbdkit $* did not start: $(cat "$tmpdir/err")"
}

# --- Certificates ------------------------------------------------------
expect_error "--tls-certificates: $tmpdir/nowhere: not a directory" \
  --tls=on --tls-certificates="$tmpdir/nowhere"

# copy_certs NAME FILES...: a certificates directory with only FILES.
copy_certs ()
{
  local d=$tmpdir/$1
  shift
  mkdir -p "$d"
  for f in "$@"; do cp "$certs/$f" "$d/"; done
  echo "$d"
}

d=$(copy_certs no-cert ca-cert.pem server-key.pem)
expect_error "$d/server-cert.pem: No such file or directory" \
  --tls=on --tls-certificates="$d"
d=$(copy_certs no-key ca-cert.pem server-cert.pem)
expect_error "$d/server-key.pem: No such file or directory" \
  --tls=require --tls-certificates="$d"
d=$(copy_certs dangling ca-cert.pem server-cert.pem)
ln -s "$d/missing.pem" "$d/server-key.pem"
expect_error "$d/server-key.pem: No such file or directory" \
  --tls=on --tls-certificates="$d"

d=$(copy_certs garbage ca-cert.pem server-key.pem)
echo "not a certificate" >"$d/server-cert.pem"
expect_error "$d/server-cert.pem" --tls=on --tls-certificates="$d"
d=$(copy_certs mismatch ca-cert.pem server-cert.pem)
cp "$tmpdir/client/client-key.pem" "$d/server-key.pem"
expect_error "$d/server-cert.pem, $d/server-key.pem: .*" \
  --tls=on --tls-certificates="$d"
d=$(copy_certs bad-ca server-cert.pem server-key.pem)
echo "junk" >"$d/ca-cert.pem"
expect_error "$d/ca-cert.pem" --tls=on --tls-certificates="$d"
d=$(copy_certs bad-crl ca-cert.pem server-cert.pem server-key.pem)
echo "junk" >"$d/ca-crl.pem"
expect_error "$d/ca-crl.pem" --tls=on --tls-certificates="$d"

# ca-cert.pem: optional, unless client certificates are verified.
d=$(copy_certs no-ca server-cert.pem server-key.pem)
expect_start --tls=on --tls-certificates="$d"
expect_error "$d/ca-cert.pem: No such file or directory" \
  --tls=on --tls-certificates="$d" --tls-verify-peer

# --- PSK files ---------------------------------------------------------
key=0123456789abcdef0123456789ABCDEF
expect_error "--tls-psk: $tmpdir/none.psk: No such file or directory" \
  --tls=on --tls-psk="$tmpdir/none.psk"

# bad_psk NAME CONTENT PATTERN: a PSK file holding CONTENT is refused.
bad_psk ()
{
  printf '%b' "$2" >"$tmpdir/$1.psk"
  expect_error "--tls-psk: $tmpdir/$1.psk$3" --tls=on --tls-psk="$tmpdir/$1.psk"
  if grep -q "$key" "$tmpdir/err"; then
    fail "the key was printed in an error message"
  fi
}
bad_psk empty '' ': the file has no users'
bad_psk blank '\n\n' ': the file has no users'
bad_psk nocolon "alice:$key\n\nbob $key\n" ':3: expected USERNAME:HEXKEY'
bad_psk nouser ":$key\n" ':1: the username is empty'
bad_psk nothex "alice:$key\nbob:${key}zz\n" ':2: the key of user "bob" must be'
bad_psk oddhex "alice:${key}0\n" ':1: the key of user "alice" must be'
bad_psk nokey "alice:\n" ':1: the key of user "alice" must be'
bad_psk twice "alice:$key\nbob:$key\nalice:$key\n" ':3: user "alice" appears twice'

# Accepted: CRLF line ends, blank lines, upper-case hex, psktool's files.
printf 'alice:%s\r\n\r\nbob:%s\r\n' "$key" "$key" >"$tmpdir/crlf.psk"
expect_start --tls=on --tls-psk="$tmpdir/crlf.psk"
expect_start --tls=on --tls-psk="$tmpdir/keys.psk"
# PSK overrides certificates (the broken directory is never read).
expect_start --tls=on --tls-psk="$tmpdir/keys.psk" \
  --tls-certificates="$tmpdir/garbage"

# --- Other options -----------------------------------------------------
expect_error "--tls cannot be used with the oldstyle protocol" \
  -o --tls=on --tls-psk="$tmpdir/keys.psk"
expect_error "--tls cannot be used with the oldstyle protocol" \
  -o --tls=require --tls-certificates="$certs"
expect_error '--tls-priority: "NORMAL:\+NO-SUCH-THING": not a valid GnuTLS priority string from "\+NO-SUCH-THING"' \
  --tls=on --tls-certificates="$certs" --tls-priority=NORMAL:+NO-SUCH-THING

# --- Built-in certificate directories ----------------------------------
# Root: $sysconfdir/pki/nbdkit.
if [ "$(id -u)" = 0 ]; then
  sysconfdir=$("$NBDKIT" --dump-config | sed -n 's/^sysconfdir=//p')
  if [ -e "$sysconfdir/pki/nbdkit" ]; then
    echo "$0: $sysconfdir/pki/nbdkit exists, skipping the root default check"
  else
    expect_error "$sysconfdir/pki/nbdkit does not exist" --tls=on
  fi
fi

# Other users: $HOME/.pki/nbdkit, then $XDG_CONFIG_HOME/pki/nbdkit
# (default $HOME/.config/pki/nbdkit).  Run as nobody when we are root.
if [ "$(id -u)" = 0 ]; then
  command -v setpriv >/dev/null ||
    { echo "$0: SKIP: setpriv is missing, skipping the per-user checks"; exit 0; }
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups)
else
  as_user=()
fi
home=$tmpdir/home
mkdir -p "$home"
chmod 0755 "$tmpdir"
if ! "${as_user[@]}" "$NBDKIT" --version >/dev/null 2>&1; then
  echo "$0: another user cannot run $NBDKIT, skipping the per-user checks"
  echo "$0: ok"
  exit 0
fi

# default_dir_used DIR [ENV...]: with certificates only in DIR, nbdkit
# run with ENV uses DIR and says so.
default_dir_used ()
{
  local dir=$1
  shift
  rm -rf "$home/.pki" "$home/.config" "$tmpdir/xdg"
  mkdir -p "$dir"
  cp "$certs"/*.pem "$dir/"
  chmod -R a+rX "$home" "$tmpdir/xdg" 2>/dev/null || :
  chmod a+r "$dir"/*.pem
  env -i PATH="$PATH" "$@" "${as_user[@]}" "$NBDKIT" -U - -v --tls=require \
    memory 1M --run true >/dev/null 2>"$tmpdir/err" ||
    fail "nbdkit as another user with $dir: $(cat "$tmpdir/err")"
  grep -q "using X.509 certificates from $dir (the built-in default)" \
    "$tmpdir/err" || fail "$dir was not used: $(grep TLS "$tmpdir/err")"
}
default_dir_used "$home/.pki/nbdkit" HOME="$home"
default_dir_used "$home/.config/pki/nbdkit" HOME="$home"
default_dir_used "$tmpdir/xdg/pki/nbdkit" HOME="$home" XDG_CONFIG_HOME="$tmpdir/xdg"

rm -rf "$home/.pki" "$home/.config" "$tmpdir/xdg"
if env -i PATH="$PATH" HOME="$home" "${as_user[@]}" "$NBDKIT" -U - --tls=on \
     memory 1M --run true 2>"$tmpdir/err"; then
  fail "nbdkit started with no certificates directory"
fi
grep -q "neither $home/.pki/nbdkit nor $home/.config/pki/nbdkit exists" \
  "$tmpdir/err" || fail "missing default directories: $(cat "$tmpdir/err")"

echo "$0: ok"
