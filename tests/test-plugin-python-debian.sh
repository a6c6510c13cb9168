#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Side by side with Debian's nbdkit (1.32) python plugin on the same
# scripts: the same nbdinfo --json --list answers, the same transcript of
# reads, writes, zeroes (with the EOPNOTSUPP fall back), trims, cache,
# extents and errors seen by nbdsh (API_VERSION 2 and 1), the same
# callbacks called with the same arguments, exit status 1 for bad
# scripts.  Left out: this server also asks extents about reads of
# zeroes (to send holes), and what 1.32 lacks (nbdkit.is_tls and
# disconnect, (name, None) export entries).
source "${srcdir:-$(dirname "$0")}/functions.sh"
normal_build_only "a comparison with Debian's nbdkit"

debian=/usr/bin/nbdkit
[ -x "$debian" ] || skip "no Debian nbdkit at $debian"
"$debian" python --dump-plugin >/dev/null 2>&1 ||
  skip "Debian's nbdkit has no python plugin"
requires nbdsh --version
requires nbdinfo --version
requires jq --version
requires_plugin python
make_tmpdir
export tmpdir

cat >"$tmpdir/disk.py" <<'PY'
import builtins, errno, os
import nbdkit

API_VERSION = 2
disk = bytearray(256 * 1024)

def say(*words):
    with builtins.open(os.environ["LOG"], "a") as f:
        print(*words, file=f)

def config(key, value): say("config", key, value)
def config_complete(): say("config_complete")
def get_ready(): say("get_ready")
def preconnect(readonly): say("preconnect", readonly)
def list_exports(readonly, is_tls): return [("a", "first"), "b"]
def default_export(readonly, is_tls): return "a"
def open(readonly):
    say("open", readonly, nbdkit.export_name())
    return nbdkit.export_name()
def close(h): say("close", h)
def export_description(h): return "about " + h
def get_size(h): return len(disk)
def block_size(h): return (1, 4096, 65536)
def can_multi_conn(h): return True
def is_rotational(h): return False
def can_fua(h): return nbdkit.FUA_NATIVE
def can_cache(h): return nbdkit.CACHE_EMULATE
def pread(h, buf, offset, flags):
    say("pread", len(buf), offset, flags)
    if offset == 8192:
        nbdkit.set_error(errno.ENOSPC)
        raise RuntimeError("on purpose")
    if offset == 12288:
        raise RuntimeError("plain")
    buf[:] = disk[offset:offset + len(buf)]
def pwrite(h, buf, offset, flags):
    say("pwrite", len(buf), offset, flags)
    disk[offset:offset + len(buf)] = buf
def flush(h, flags): say("flush", flags)
def trim(h, count, offset, flags):
    say("trim", count, offset, flags)
    disk[offset:offset + count] = bytes(count)
def zero(h, count, offset, flags):
    say("zero", count, offset, flags)
    if flags & nbdkit.FLAG_MAY_TRIM:
        nbdkit.set_error(errno.EOPNOTSUPP)
        raise RuntimeError("fall back")
    disk[offset:offset + count] = bytes(count)
def extents(h, count, offset, flags):
    say("extents", count, offset, flags)
    return [(0, 65536, 0), (65536, 65536, nbdkit.EXTENT_HOLE | nbdkit.EXTENT_ZERO),
            (131072, 131072, 0)]
PY

cat >"$tmpdir/t.py" <<'PY'
def attempt(what, fn, *args):
    try:
        r = fn(*args)
        print(what, "ok", r if isinstance(r, (int, bool, type(None))) else bytes(r)[:8])
    except nbd.Error as e:
        print(what, "error", e.errnum)

h.pwrite(b"x" * 1000, 100, nbd.CMD_FLAG_FUA)
h.pwrite(b"y" * 5000, 70000)
attempt("read", h.pread, 1100, 0)
attempt("read-enospc", h.pread, 512, 8192)
attempt("read-eio", h.pread, 512, 12288)
h.zero(200, 150, nbd.CMD_FLAG_NO_HOLE)
h.zero(200, 500)
h.trim(100, 70000, nbd.CMD_FLAG_FUA)
h.flush()
attempt("cache", h.cache, 4096, 0)
attempt("read2", h.pread, 1100, 0)
assert (h.pread(1100, 0) == b"\0" * 100 + b"x" * 50 + b"\0" * 200 + b"x" * 150 + b"\0" * 200 + b"x" * 400)
assert h.pread(5000, 70000) == b"\0" * 100 + b"y" * 4900
ents = []
h.block_status(200000, 0, lambda ctx, off, e, err: ents.extend(e))
print("extents", ents)
ents = []
h.block_status(200000, 0, lambda ctx, off, e, err: ents.extend(e), nbd.CMD_FLAG_REQ_ONE)
print("extents-req-one", ents)
print([getattr(h, f)() for f in ("can_flush", "can_trim", "can_zero", "can_fast_zero",
        "can_fua", "can_multi_conn", "can_cache", "is_rotational", "is_read_only")])
PY

export LOG
# run SERVER NAME SCRIPT ARGS...: the nbdsh transcript and the calls.
run ()
{
  local server=$1 name=$2
  shift 2
  LOG=$tmpdir/$name.log
  : >"$LOG"
  "$server" -U - python "$@" \
    --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/t.py" &&
           nbdinfo --json --list "$uri" >"$tmpdir/json"' \
    >"$tmpdir/$name.out" 2>"$tmpdir/$name.err" ||
    fail "$name: $(cat "$tmpdir/$name.err")"
  jq -S 'del(.exports[].uri)' "$tmpdir/json" >"$tmpdir/$name.json" ||
    fail "$name: nbdinfo --json gave no JSON"
}
run "$debian" debian "$tmpdir/disk.py" k=v
run "$NBDKIT" ours "$tmpdir/disk.py" k=v
diff -u "$tmpdir/debian.out" "$tmpdir/ours.out" ||
  fail "nbdsh saw different answers"
# (This server reads extents for zero-filled reads to send holes; close
# may come before or after the last callbacks.)
grep -v '^close\|^extents 1100 ' "$tmpdir/debian.log" >"$tmpdir/debian.calls"
grep -v '^close\|^extents 1100 ' "$tmpdir/ours.log" >"$tmpdir/ours.calls"
diff -u "$tmpdir/debian.calls" "$tmpdir/ours.calls" ||
  fail "the script's callbacks were called differently"
grep -q 'disk.py: pread: error: Traceback' "$tmpdir/ours.err" ||
  fail "no traceback in our log"

# nbdinfo --json --list: exports, descriptions, sizes, flags.
diff -u "$tmpdir/debian.json" "$tmpdir/ours.json" || fail "nbdinfo --json differs"

# API_VERSION 1 (no API_VERSION): the same transcript again.
sed -e 's/^API_VERSION = 2$//' \
    -e 's/^def pread(h, buf, offset, flags):$/def pread(h, count, offset):\n    buf = bytearray(count); flags = 0/' \
    -e 's/^    buf\[:\] = disk\[offset:offset + len(buf)\]$/    return disk[offset:offset + count]/' \
    -e 's/^def pwrite(h, buf, offset, flags):$/def pwrite(h, buf, offset, flags=0):/' \
    -e 's/^def flush(h, flags):/def flush(h, flags=0):/' \
    -e 's/^def trim(h, count, offset, flags):$/def trim(h, count, offset, flags=0):/' \
    -e 's/^def zero(h, count, offset, flags):$/def zero(h, count, offset, flags):\n    flags = int(flags)/' \
    "$tmpdir/disk.py" >"$tmpdir/v1.py"
run "$debian" debian1 "$tmpdir/v1.py"
run "$NBDKIT" ours1 "$tmpdir/v1.py"
diff -u "$tmpdir/debian1.out" "$tmpdir/ours1.out" ||
  fail "API_VERSION 1: nbdsh saw different answers"
diff -u "$tmpdir/debian1.json" "$tmpdir/ours1.json" ||
  fail "API_VERSION 1: nbdinfo --json differs"

# Bad scripts: both exit 1 before serving.
printf 'def open(:\n' >"$tmpdir/syntax.py"
for args in "$tmpdir/nosuch.py" "$tmpdir/syntax.py"; do
  for server in "$debian" "$NBDKIT"; do
    r=0
    "$server" -U - python $args --run true 2>/dev/null || r=$?
    [ "$r" = 1 ] || fail "$server python $args: exit status $r, expected 1"
  done
done
echo "$0: ok"
