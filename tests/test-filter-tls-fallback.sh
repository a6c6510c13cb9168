#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The tls-fallback filter with --tls=on and a PSK: a plaintext client
# gets a read-only 512 byte disk holding the message (default and
# tlsreadme=, whatever export name it asks for, one export listed),
# a TLS client gets the plugin's writable disk, and the layers below
# are never opened for a plaintext client (log filter); a long message
# rounds the size up to 1024; a serialize_connections stack is refused.

source "${srcdir:-$(dirname "$0")}/functions.sh"
source "${srcdir:-$(dirname "$0")}/tls-functions.sh"
requires_tls
requires nbdsh --version
requires_plugin memory
requires_filter tls-fallback
requires_filter noparallel
requires_filter log

make_tmpdir
export tmpdir
psktool -u alice -p "$tmpdir/keys.psk" >/dev/null 2>&1 ||
  fail "psktool failed"

cat > "$tmpdir/check.py" <<'PY'
import os
uri = "nbd+unix:///?socket=" + os.environ["unixsocket"]
psk = os.environ["tmpdir"] + "/keys.psk"
readme = os.environ["README"].encode()

def plaintext(export):
    h = nbd.NBD()
    h.set_export_name(export)
    h.connect_uri(uri)
    assert not h.get_tls_negotiated()
    return h

def names():
    h = nbd.NBD()
    h.set_opt_mode(True)
    h.connect_uri(uri)
    found = []
    h.opt_list(lambda name, desc: found.append(name))
    h.opt_abort()
    return found

for export in ("", "secret"):
    h = plaintext(export)
    assert h.get_size() == 512, h.get_size()
    assert h.is_read_only()
    assert not h.can_trim() and not h.can_zero() and not h.can_flush()
    data = h.pread(512, 0)
    assert data == readme + bytes(512 - len(readme)), data
    assert h.pread(8, 504) == bytes(8)
    h.shutdown()
assert names() == [""], names()

# The TLS client reaches the plugin.
h = nbd.NBD()
h.set_tls(nbd.TLS_REQUIRE)
h.set_tls_psk_file(psk)
h.set_tls_username("alice")
h.connect_uri(uri)
assert h.get_tls_negotiated()
assert h.get_size() == 1048576
assert not h.is_read_only()
h.pwrite(b"private", 4096)
assert h.pread(7, 4096) == b"private"
h.shutdown()
PY

export README="This NBD server requires TLS authentication before it will serve useful data.
"
"$NBDKIT" -U - --tls=on --tls-psk="$tmpdir/keys.psk" \
  --filter=tls-fallback --filter=log memory 1M logfile="$tmpdir/log" \
  --run 'unixsocket=$unixsocket nbdsh -c - < "$tmpdir/check.py"' || fail "default message"
# Below the filter only the TLS client was ever opened (3 plaintext
# connections, counting the export listing, and 1 TLS).
opens=$(grep -c ' Connect export=.* tls=1 ' "$tmpdir/log" || :)
others=$(grep ' Connect export=' "$tmpdir/log" | grep -vc ' tls=1 ' || :)
[ "$opens" = 1 ] && [ "$others" = 0 ] ||
  fail "layers below were opened for plaintext clients: $(grep Connect "$tmpdir/log")"

README="Use TLS."
"$NBDKIT" -U - --tls=on --tls-psk="$tmpdir/keys.psk" \
  --filter=tls-fallback memory 1M tlsreadme="$README" \
  --run 'unixsocket=$unixsocket nbdsh -c - < "$tmpdir/check.py"' ||
  fail "tlsreadme="

# A message longer than 512 bytes is kept whole.
long=$(printf '%0600d' 0)
"$NBDKIT" -U - --tls=on --tls-psk="$tmpdir/keys.psk" \
  --filter=tls-fallback memory 1M tlsreadme="$long" \
  --run 'nbdinfo --size "nbd+unix:///?socket=$unixsocket"' > "$tmpdir/size" || fail "long tlsreadme"
[ "$(cat "$tmpdir/size")" = 1024 ] ||
  fail "long tlsreadme: size $(cat "$tmpdir/size"), expected 1024"

# One connection at a time would let a plaintext client block others.
rc=0
"$NBDKIT" -U - --tls=on --tls-psk="$tmpdir/keys.psk" \
  --filter=tls-fallback --filter=noparallel memory 1M \
  serialize=connections --run true 2> "$tmpdir/err" || rc=$?
[ $rc -eq 1 ] || fail "serialize_connections: exit status $rc, expected 1"
grep -q "tls-fallback" "$tmpdir/err" ||
  fail "serialize_connections: the error does not name the filter"

echo "$0: ok"
