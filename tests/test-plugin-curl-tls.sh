#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The curl plugin over HTTPS against tests/curl_server.py with a
# certificate made by certtool: with cainfo= the data equals the file;
# without it the certificate is refused; sslverify=false accepts it;
# ssl-version= limits the version.  Debian's nbdkit 1.32 behaves the same.
source "${srcdir:-$(dirname "$0")}/functions.sh"
requires_plugin curl
requires certtool --version
requires nbdinfo --version
requires nbdcopy --version
make_tmpdir
source "$srcdir/curl-functions.sh"

cat > "$tmpdir/cert.tmpl" <<'TMPL'
cn = "127.0.0.1"
ip_address = "127.0.0.1"
dns_name = "localhost"
ca
cert_signing_key
signing_key
encryption_key
tls_www_server
expiration_days = 2
TMPL
certtool --generate-privkey --outfile "$tmpdir/key.pem" >/dev/null 2>&1 ||
  fail "certtool --generate-privkey failed"
certtool --generate-self-signed --load-privkey "$tmpdir/key.pem" \
  --template "$tmpdir/cert.tmpl" --outfile "$tmpdir/cert.pem" \
  >/dev/null 2>&1 || fail "certtool --generate-self-signed failed"

start_curl_server --cert "$tmpdir/cert.pem" --key "$tmpdir/key.pem"
surl=https://127.0.0.1:$https_port

copy_ok ()
{
  local nbdkit=$1
  shift
  rm -f "$tmpdir/out.img"
  "$nbdkit" -U - -r curl "$@" --run "nbdcopy \"\$uri\" $tmpdir/out.img" \
    >"$tmpdir/err" 2>&1 || fail "$nbdkit curl $*: $(cat "$tmpdir/err")"
  cmp -s "$tmpdir/out.img" "$tmpdir/disk.img" || fail "curl $*: data differs"
}

refused ()
{
  local nbdkit=$1 msg=$2
  shift 2
  if "$nbdkit" -U - -r curl "$@" --run 'nbdinfo --size "$uri"' \
       >"$tmpdir/out" 2>&1; then
    fail "$nbdkit curl $*: the client connected"
  fi
  grep -qiF -- "$msg" "$tmpdir/out" ||
    fail "$nbdkit curl $*: no \"$msg\" in: $(cat "$tmpdir/out")"
}

copy_ok "$NBDKIT" "$surl/disk" cainfo="$tmpdir/cert.pem" ssl-version=tlsv1.2
grep -q '"tls": true' "$server_log" || fail "no request came over TLS"
copy_ok "$NBDKIT" "$surl/redirect/disk" sslverify=false protocols=https
refused "$NBDKIT" "certificate" "$surl/disk" cainfo=/dev/null capath=/nonexistent

if /usr/bin/nbdkit curl --dump-plugin >/dev/null 2>&1; then
  copy_ok /usr/bin/nbdkit "$surl/disk" cainfo="$tmpdir/cert.pem"
  refused /usr/bin/nbdkit "certificate" "$surl/disk" cainfo=/dev/null \
    capath=/nonexistent
fi
echo "$0: OK"
