#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Fixed newstyle negotiation (the default, and explicit -n) seen by real
# clients: nbdsh, nbdinfo, qemu-img and qemu-io, plus the raw greeting.

source "$srcdir/functions.sh"
# tests/raw_nbd.py is imported from the source tree: keep it clean.
export PYTHONDONTWRITEBYTECODE=1
requires nbdsh --version
requires nbdinfo --version
requires_plugin memory

make_tmpdir

# nbdsh script run for both the default and -n: protocol, handshake
# flags, size, structured replies and a write/read round trip.
check_newstyle='
assert h.get_protocol() == "newstyle-fixed", h.get_protocol()
flags = h.get_handshake_flags()
assert flags & nbd.HANDSHAKE_FLAG_FIXED_NEWSTYLE, flags
assert flags & nbd.HANDSHAKE_FLAG_NO_ZEROES, flags
assert h.get_size() == 1048576, h.get_size()
assert h.get_structured_replies_negotiated()
assert not h.is_read_only()
buf = bytes(range(256)) * 16
h.pwrite(buf, 12345)
assert h.pread(len(buf), 12345) == buf
assert h.pread(4096, 1048576 - 4096) == bytes(4096)
'

for mode in default -n --newstyle; do
  opts=()
  [ "$mode" != default ] && opts=("$mode")
  check="$check_newstyle" "$NBDKIT" "${opts[@]}" -U - memory 1M \
    --run 'nbdsh -u "$uri" -c "$check"' ||
    fail "nbdsh against newstyle ($mode) failed"
done

# Environment variables are how --run passes the script through; make
# sure the loop above really ran nbdsh by repeating one check inline.
"$NBDKIT" -U - memory 1M --run '
  nbdsh -u "$uri" -c "assert h.get_protocol() == \"newstyle-fixed\""
' || fail "nbdsh did not see newstyle-fixed"

# nbdinfo reports the protocol and the export.
"$NBDKIT" -U - memory 1M --run 'nbdinfo --json "$uri"' >"$tmpdir/info.json" ||
  fail "nbdinfo --json failed"
/usr/bin/python3 - "$tmpdir/info.json" <<'EOF' || fail "nbdinfo --json output is wrong"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["protocol"] == "newstyle-fixed", d["protocol"]
assert d["structured"] is True, d
e = d["exports"]
assert len(e) == 1, e
assert e[0]["export-size"] == 1048576, e[0]
assert e[0]["is_read_only"] is False, e[0]
EOF

# A client that refuses structured replies still gets served.
"$NBDKIT" -U - memory 1M --run '
  nbdsh -c "h.set_request_structured_replies(False)" -c "h.connect_uri(\"$uri\")" \
    -c "assert not h.get_structured_replies_negotiated()" \
    -c "h.pwrite(b\"abc\" * 100, 0)" \
    -c "assert h.pread(300, 0) == b\"abc\" * 100"
' || fail "newstyle without structured replies failed"

# A client that asks for zero padding (no NO_ZEROES) and ends with
# NBD_OPT_EXPORT_NAME (libnbd does this when handshake flags are cleared).
"$NBDKIT" -U - memory 1M --run '
  nbdsh -c "h.set_handshake_flags(nbd.HANDSHAKE_FLAG_FIXED_NEWSTYLE)" \
    -c "h.connect_uri(\"$uri\")" \
    -c "assert h.get_size() == 1048576" \
    -c "h.pwrite(b\"x\" * 512, 512)" \
    -c "assert h.pread(512, 512) == b\"x\" * 512"
' || fail "newstyle without NO_ZEROES failed"

# Option mode: NBD_OPT_INFO before NBD_OPT_GO.
"$NBDKIT" -U - memory 1M --run '
  nbdsh --opt-mode -u "$uri" \
    -c "h.opt_info()" \
    -c "assert h.get_size() == 1048576" \
    -c "h.opt_go()" \
    -c "assert h.pread(512, 0) == bytes(512)"
' || fail "NBD_OPT_INFO then NBD_OPT_GO failed"

# The raw greeting: NBDMAGIC, IHAVEOPT, handshake flags FIXED_NEWSTYLE
# and NO_ZEROES and nothing else.
"$NBDKIT" -U - memory 1M --run '
  RAW_NBD_SOCKET="$unixsocket" /usr/bin/python3 -c "
import sys
sys.path.insert(0, \"$srcdir\")
import raw_nbd as r
c = r.Connection.from_env()
assert c.read_greeting() == \"newstyle\"
assert c.gflags == r.FLAG_FIXED_NEWSTYLE | r.FLAG_NO_ZEROES, c.gflags
c.close()
r.check_server_healthy(r.Connection.from_env)
"
' || fail "raw newstyle greeting check failed"

# qemu-img and qemu-io.
if qemu-img --version >/dev/null 2>&1; then
  "$NBDKIT" -U - memory 1M --run '
    qemu-img info --output=json "$uri" > "'"$tmpdir"'/qemu.json"
  ' || fail "qemu-img info failed"
  grep -q '"virtual-size": 1048576' "$tmpdir/qemu.json" ||
    fail "qemu-img info shows the wrong size: $(cat "$tmpdir/qemu.json")"
else
  echo "$0: qemu-img not installed, skipping that part"
fi
if qemu-io --version >/dev/null 2>&1; then
  "$NBDKIT" -U - memory 1M --run '
    qemu-io -f raw "$uri" -c "write -P 0x5a 4096 8192" -c "read -P 0x5a 4096 8192" \
      -c "read -P 0 0 4096" > "'"$tmpdir"'/qemu-io.out"
  ' || fail "qemu-io failed"
  if grep -qi 'fail\|error\|mismatch' "$tmpdir/qemu-io.out"; then
    fail "qemu-io reported a problem: $(cat "$tmpdir/qemu-io.out")"
  fi
else
  echo "$0: qemu-io not installed, skipping that part"
fi

echo "$0: ok"
