#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# What the upstream server offers passes through the proxy unchanged.
# - nbdinfo --json through the proxy equals nbdinfo --json directly (size,
#   read-only, rotational, every can_* flag, block sizes, description,
#   contexts) for upstream servers with different features: everything,
#   read-only, no extents, no FUA, no multi-conn, a description, no zero
#   (which nbdkit then emulates, so only can_zero differs),
#   and block size constraints (Debian's nbdkit with the blocksize-policy
#   filter as the upstream, if it is there).
# - Block status and holes: nbdinfo --map is the same both ways, and
#   sparse regions read back as zeroes.
# - Each request reaches the upstream with its flags (FUA on write and
#   trim, MAY_TRIM and FAST_ZERO on zero, REQ_ONE on block status, cache,
#   flush), as the upstream's log filter records them.
# - Upstream errors arrive as the same errno: EPERM, ENOSPC, ESHUTDOWN,
#   EINVAL, ENOMEM and EIO (one per kind of request), and ENOTSUP for a
#   fast zero the upstream cannot do.

source "$srcdir/functions.sh"
source "$srcdir/test-plugin-nbd-helpers.bash"
requires nbdsh --version
requires nbdinfo --version
requires /usr/bin/python3 --version
requires_plugin nbd
requires_plugin memory
for f in noextents fua nozero multi-conn exportname log error; do
  requires_filter $f
done

make_tmpdir
export tmpdir
sock=$tmpdir/upstream.sock
proxy=$tmpdir/proxy.sock
start_nbdkit -P "$tmpdir/proxy.pid" -U "$proxy" nbd socket="$sock"

# compare_flags NAME NBDKIT-BINARY UPSTREAM-ARGS...
# $emulated names a flag that nbdkit itself may add (and must add).
emulated=
compare_flags ()
{
  local name=$1 bin=$2
  shift 2
  rm -f "$sock"
  NBDKIT=$bin start_nbdkit -P "$tmpdir/up.pid" -U "$sock" "$@"
  nbdinfo --json "nbd+unix:///?socket=$sock" >"$tmpdir/direct.json" ||
    fail "$name: nbdinfo on the upstream failed"
  nbdinfo --json "nbd+unix:///?socket=$proxy" >"$tmpdir/proxied.json" ||
    fail "$name: nbdinfo through the proxy failed"
  /usr/bin/python3 - "$tmpdir" "$name" "$emulated" <<'PY' ||
import json, sys
d, name, emulated = sys.argv[1], sys.argv[2], sys.argv[3]
def load(f):
    e = json.load(open(d + "/" + f))["exports"][0]
    del e["uri"]
    return e
direct, proxied = load("direct.json"), load("proxied.json")
if emulated:
    assert direct[emulated] is False and proxied[emulated] is True, \
        "%s: %s is not emulated" % (name, emulated)
    del direct[emulated], proxied[emulated]
if direct != proxied:
    for k in sorted(set(direct) | set(proxied)):
        if direct.get(k) != proxied.get(k):
            print("%s: %s: direct %r, through the proxy %r"
                  % (name, k, direct.get(k), proxied.get(k)))
    sys.exit(1)
PY
    fail "$name: flags differ"
  kill_pid "$(cat "$tmpdir/up.pid")"
  echo "flags pass through: $name"
}

compare_flags everything "$NBDKIT" memory 8M
compare_flags read-only "$NBDKIT" -r memory 8M
compare_flags no-extents "$NBDKIT" --filter=noextents memory 8M
compare_flags no-fua "$NBDKIT" --filter=fua memory 8M fuamode=none
# Without zero upstream, nbdkit emulates it with writes (as Debian's
# nbdkit does too).
emulated=can_zero compare_flags no-zero "$NBDKIT" --filter=nozero memory 8M \
  zeromode=none
compare_flags no-multi-conn "$NBDKIT" --filter=multi-conn memory 8M \
  multi-conn-mode=disable
compare_flags description "$NBDKIT" --filter=exportname memory 8M \
  exportdesc="fixed:a described export"
grep -q '"description": "a described export"' "$tmpdir/proxied.json" ||
  fail "the description did not pass through"
debian=/usr/bin/nbdkit
if "$debian" --filter=blocksize-policy null --dump-plugin >/dev/null 2>&1; then
  compare_flags block-sizes "$debian" --filter=blocksize-policy memory 8M \
    blocksize-minimum=512 blocksize-preferred=65536 blocksize-maximum=1M
  grep -q '"block_size_preferred": 65536' "$tmpdir/proxied.json" ||
    fail "the preferred block size did not pass through"
else
  echo "block sizes: SKIP (Debian's nbdkit with blocksize-policy is missing)"
fi

# --- Block status and holes. --------------------------------------------
rm -f "$sock"
start_nbdkit -P "$tmpdir/up.pid" -U "$sock" --filter=log memory 8M \
  logfile="$tmpdir/ops.log"
nbdsh -u "nbd+unix:///?socket=$sock" -c '
h.pwrite(b"A" * 65536, 1 << 20)
h.pwrite(b"B" * 4096, 3 << 20)
h.pwrite(b"C" * 100, (8 << 20) - 100)
' || fail "writing the upstream failed"
nbdinfo --map "nbd+unix:///?socket=$sock" >"$tmpdir/map.direct" &&
  nbdinfo --map "nbd+unix:///?socket=$proxy" >"$tmpdir/map.proxied" ||
  fail "nbdinfo --map failed"
cmp "$tmpdir/map.direct" "$tmpdir/map.proxied" ||
  fail "block status differs: $(diff "$tmpdir/map.direct" "$tmpdir/map.proxied")"
grep -q 'hole,zero' "$tmpdir/map.proxied" || fail "no holes in the map"
nbdsh -u "nbd+unix:///?socket=$proxy" -c '
# Whole-disk and hole-spanning reads (the upstream sends hole chunks).
d = h.pread(8 << 20, 0)
assert d[:1 << 20] == bytes(1 << 20)
assert d[1 << 20:(1 << 20) + 65536] == b"A" * 65536
assert d[(1 << 20) + 65536:3 << 20] == bytes((2 << 20) - 65536)
assert d[3 << 20:(3 << 20) + 4096] == b"B" * 4096
assert d[-100:] == b"C" * 100
assert h.pread(100000, (1 << 20) - 50000) == bytes(50000) + b"A" * 50000
' || fail "reads across holes through the proxy are wrong"

# --- Each request and its flags reach the upstream. ---------------------
: >"$tmpdir/ops.log"
nbdsh --base-allocation -u "nbd+unix:///?socket=$proxy" -c '
h.pwrite(b"f" * 512, 0, nbd.CMD_FLAG_FUA)
h.zero(4096, 8192, nbd.CMD_FLAG_FAST_ZERO)
h.zero(4096, 16384, nbd.CMD_FLAG_NO_HOLE)
h.trim(4096, 32768, nbd.CMD_FLAG_FUA)
h.cache(4096, 0)
h.flush()
h.block_status(1 << 20, 0, lambda *a: 0, nbd.CMD_FLAG_REQ_ONE)
' || fail "requests through the proxy failed"
for pat in 'Write id=[0-9]* offset=0x0 count=0x200 fua=1' \
           'Zero id=[0-9]* offset=0x2000 count=0x1000 trim=1 fua=0 fast=1' \
           'Zero id=[0-9]* offset=0x4000 count=0x1000 trim=0 fua=0 fast=0' \
           'Trim id=[0-9]* offset=0x8000 count=0x1000 fua=1' \
           'Cache id=[0-9]* offset=0x0 count=0x1000' \
           'Flush id=' \
           'Extents id=[0-9]* offset=0x0 count=0x100000 req_one=1'; do
  grep -q "$pat" "$tmpdir/ops.log" ||
    fail "the upstream did not see: $pat"$'\n'"$(cat "$tmpdir/ops.log")"
done
kill_pid "$(cat "$tmpdir/up.pid")"

# --- Errors keep their errno. -------------------------------------------
# One upstream, a different error for each kind of request.
rm -f "$sock"
start_nbdkit -P "$tmpdir/up.pid" -U "$sock" --filter=error memory 1M \
  error-pread=EPERM error-pread-rate=1 \
  error-pwrite=ENOSPC error-pwrite-rate=1 \
  error-flush=ESHUTDOWN error-flush-rate=1 \
  error-zero=EINVAL error-zero-rate=1 \
  error-trim=ENOMEM error-trim-rate=1 \
  error-cache=EIO error-cache-rate=1
nbdsh -u "nbd+unix:///?socket=$proxy" -c '
for what, op, want in (
        ("pread", lambda: h.pread(512, 0), "EPERM"),
        ("pwrite", lambda: h.pwrite(b"x" * 512, 0), "ENOSPC"),
        ("flush", lambda: h.flush(), "ESHUTDOWN"),
        ("zero", lambda: h.zero(512, 0), "EINVAL"),
        ("trim", lambda: h.trim(512, 0), "ENOMEM"),
        ("cache", lambda: h.cache(512, 0), "EIO")):
    try:
        op()
        raise AssertionError("%s succeeded" % what)
    except nbd.Error as e:
        assert e.errno == want, "%s: got %s, want %s" % (what, e.errno, want)
' || fail "upstream errors did not pass through with their errno"
kill_pid "$(cat "$tmpdir/up.pid")"
echo "errors pass through: ok"

# A fast zero the upstream cannot do fails with ENOTSUP, as it does there.
rm -f "$sock"
start_nbdkit -P "$tmpdir/up.pid" -U "$sock" --filter=nozero memory 1M \
  zeromode=notrim fastzeromode=slow
for uri in "nbd+unix:///?socket=$sock" "nbd+unix:///?socket=$proxy"; do
  nbdsh -u "$uri" -c '
assert h.can_fast_zero()
try:
    h.zero(4096, 0, nbd.CMD_FLAG_FAST_ZERO)
    raise AssertionError("fast zero succeeded")
except nbd.Error as e:
    assert e.errno == "ENOTSUP", e
h.zero(4096, 0)
' || fail "fast zero through $uri did not fail with ENOTSUP"
done
kill_pid "$(cat "$tmpdir/up.pid")"

echo "$0: ok"
