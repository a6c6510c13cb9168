#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The curl plugin's size probe against tests/curl_server.py: servers that
# do not advertise ranges or refuse HEAD still work (a Range probe gives
# the size); a server ignoring Range, one hiding the size, a missing file,
# a wrong password, a refused redirect and a refused protocol each fail
# the client's connection with a clear error, as Debian's nbdkit 1.32
# fails them (where it is installed).
source "${srcdir:-$(dirname "$0")}/functions.sh"
requires_plugin curl
requires nbdinfo --version
requires nbdcopy --version
make_tmpdir
source "$srcdir/curl-functions.sh"
start_curl_server

# refused NBDKIT MESSAGE ARGS...: the client cannot connect and nbdkit
# logs MESSAGE.
refused ()
{
  local nbdkit=$1 msg=$2
  shift 2
  if "$nbdkit" -U - -r curl "$@" --run 'nbdinfo --size "$uri"' \
       >"$tmpdir/out" 2>&1; then
    fail "$nbdkit curl $*: the client connected: $(cat "$tmpdir/out")"
  fi
  grep -qF -- "$msg" "$tmpdir/out" ||
    fail "$nbdkit curl $*: no \"$msg\" in: $(cat "$tmpdir/out")"
}

# Ranges work without the server saying so, or without HEAD.
for path in noadvertise nohead; do
  "$NBDKIT" -U - -r curl "$url/$path/disk" \
    --run "nbdcopy \"\$uri\" $tmpdir/out.img" || fail "$path: read failed"
  cmp -s "$tmpdir/out.img" "$tmpdir/disk.img" || fail "$path: data differs"
done

refused "$NBDKIT" "$url/norange/disk: the server does not support range" \
  "$url/norange/disk"
refused "$NBDKIT" "could not get the size of the remote file" \
  "$url/nolength/disk"
refused "$NBDKIT" "$url/nothere: the server answered HTTP status 404" \
  "$url/nothere"
refused "$NBDKIT" "the server answered HTTP status 401" \
  "$url/auth/disk" user=alice password=wrong
refused "$NBDKIT" "the server answered HTTP status 302" \
  "$url/redirect/disk" followlocation=false
refused "$NBDKIT" 'Protocol "http" not supported' "$url/disk" protocols=https
refused "$NBDKIT" "Couldn't connect" "http://127.0.0.1:1/disk"

# Debian's nbdkit 1.32 refuses the same servers.
if /usr/bin/nbdkit curl --dump-plugin >/dev/null 2>&1; then
  refused /usr/bin/nbdkit "does not support 'range'" "$url/norange/disk"
  refused /usr/bin/nbdkit "could not get length" "$url/nolength/disk"
fi
echo "$0: OK"
