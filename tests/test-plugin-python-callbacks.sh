#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A python script defining every callback, checked from nbdsh and
# nbdinfo: the arguments each callback gets (flags such as FUA,
# MAY_TRIM, FAST_ZERO and REQ_ONE passed through), what its answers
# become (can_*, block size, export list and descriptions, extents),
# nbdkit.export_name/is_tls/parse_size, errors raised with
# nbdkit.set_error reaching the client as that errno, EOPNOTSUPP from
# zero falling back to pwrite, thread_model and --dump-plugin.
# test-plugin-python-api.sh has API_VERSION 1 and the smallest script.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires nbdinfo --version
requires_plugin python
make_tmpdir

cat >"$tmpdir/all.py" <<'PY'
import builtins
import errno
import nbdkit

API_VERSION = 2
disk = bytearray(1024 * 1024)
log = None
params = {}

def say(*words):
    with builtins.open(log, "a") as f:
        print(*words, file=f)

def config(key, value):
    global log
    if key == "log":
        log = value
    else:
        params[key] = value

def config_complete():
    say("config_complete", sorted(params.items()))

def thread_model():
    return nbdkit.THREAD_MODEL_SERIALIZE_REQUESTS

def get_ready():
    say("get_ready", nbdkit.parse_size(params.get("size", "1M")))

def after_fork():
    say("after_fork")

def cleanup():
    say("cleanup")

def preconnect(readonly):
    say("preconnect", readonly)

def list_exports(readonly, is_tls):
    return ["plain", ("described", "the described one"), ("nodesc", None)]

def default_export(readonly, is_tls):
    return "described"

def open(readonly):
    say("open", readonly, repr(nbdkit.export_name()), nbdkit.is_tls())
    return {"name": nbdkit.export_name()}

def close(h):
    say("close", h["name"])

def export_description(h):
    return "export " + h["name"]

def get_size(h):
    return len(disk)

def block_size(h):
    return (512, 4096, 65536)

def is_rotational(h): return True
def can_write(h): return True
def can_flush(h): return True
def can_trim(h): return True
def can_zero(h): return True
def can_fast_zero(h): return True
def can_extents(h): return True
def can_multi_conn(h): return True
def can_fua(h): return nbdkit.FUA_NATIVE
def can_cache(h): return nbdkit.CACHE_NATIVE

def pread(h, buf, offset, flags):
    say("pread", len(buf), offset, flags)
    if offset == 4096:
        nbdkit.set_error(errno.ENOMEM)
        raise RuntimeError("pread failed on purpose")
    buf[:] = disk[offset:offset + len(buf)]

def pwrite(h, buf, offset, flags):
    say("pwrite", len(buf), offset, flags)
    if offset == 8192:
        nbdkit.set_error(errno.ENOSPC)
        raise OSError("no space on purpose")
    if offset == 12288:
        raise ValueError("a plain exception")
    disk[offset:offset + len(buf)] = buf

def flush(h, flags):
    say("flush", flags)

def trim(h, count, offset, flags):
    say("trim", count, offset, flags)
    nbdkit.set_error(errno.EPERM)
    raise RuntimeError("trim refused")

def zero(h, count, offset, flags):
    say("zero", count, offset, flags)
    if flags & nbdkit.FLAG_MAY_TRIM:
        # Not worth doing natively: let nbdkit write zeroes.
        nbdkit.set_error(errno.EOPNOTSUPP)
        raise NotImplementedError
    disk[offset:offset + count] = bytes(count)

def cache(h, count, offset, flags):
    say("cache", count, offset, flags)

def extents(h, count, offset, flags):
    say("extents", count, offset, flags)
    if flags & nbdkit.FLAG_REQ_ONE:
        return [(offset, 1024, nbdkit.EXTENT_ZERO)]
    return [(offset, 1024, 0), (offset + 1024, 3072, nbdkit.EXTENT_HOLE | nbdkit.EXTENT_ZERO)]
PY

cat >"$tmpdir/t.py" <<'PY'
import errno, os
assert h.get_size() == 1024 * 1024
assert not h.is_read_only()
for f in ("can_flush", "can_trim", "can_zero", "can_fast_zero", "can_fua",
          "can_multi_conn", "can_cache", "is_rotational"):
    assert getattr(h, f)(), f
assert h.get_block_size(nbd.SIZE_MINIMUM) == 512
assert h.get_block_size(nbd.SIZE_PREFERRED) == 4096
assert h.get_block_size(nbd.SIZE_MAXIMUM) == 65536
assert h.get_canonical_export_name() == "described"

def fails(errnum, fn, *args):
    try:
        fn(*args)
    except nbd.Error as e:
        assert e.errnum == errnum, (fn, e.errnum, e)
        return
    assert False, "%s%r did not fail" % (fn, args)

h.pwrite(b"a" * 512, 0, nbd.CMD_FLAG_FUA)
h.pwrite(b"b" * 512, 512)
assert h.pread(1024, 0) == b"a" * 512 + b"b" * 512
fails(errno.ENOMEM, h.pread, 512, 4096)
fails(errno.ENOSPC, h.pwrite, b"x" * 512, 8192)
fails(errno.EIO, h.pwrite, b"x" * 512, 12288)
fails(errno.EPERM, h.trim, 512, 0)
h.flush()
h.cache(4096, 0)
h.zero(512, 0, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FAST_ZERO)
h.zero(512, 512)   # MAY_TRIM: zero refuses, nbdkit writes zeroes
assert h.pread(1024, 0) == bytes(1024)

ents = []
h.block_status(4096, 0, lambda ctx, off, e, err: ents.extend(e))
assert ents == [1024, 0, 3072, 3], ents
ents = []
h.block_status(4096, 0, lambda ctx, off, e, err: ents.extend(e),
               nbd.CMD_FLAG_REQ_ONE)
assert ents == [1024, 2], ents
h.shutdown()

with open(os.environ["log"]) as f:
    log = f.read().splitlines()
want = [
    "pwrite 512 0 2", "pwrite 512 512 0", "pread 1024 0 0", "pread 512 4096 0",
    "pwrite 512 8192 0", "pwrite 512 12288 0", "trim 512 0 0", "flush 0",
    "cache 4096 0 0", "zero 512 0 8", "zero 512 512 1", "pwrite 512 512 0",
    "pread 1024 0 0", "extents 4096 0 0", "extents 4096 0 4", "close described",
]
# (nbdkit also asks extents about reads of zeroes, to send holes.)
got = [l for l in log if l.split()[0] in
       ("pread", "pwrite", "trim", "flush", "cache", "zero", "extents", "close")
       and not l.startswith("extents 1024 ")]
assert got == want, got
assert "open False 'described' False" in log, log
assert "preconnect False" in log, log
PY

log=$tmpdir/log
export tmpdir
export log
"$NBDKIT" -v -U - python "$tmpdir/all.py" log="$log" size=2M extra=1 \
  --run 'nbdsh --base-allocation -u "$uri" -c - <"$tmpdir/t.py"' >"$tmpdir/out" 2>&1 ||
  fail "nbdsh checks of every callback failed: $(cat "$tmpdir/out")"
head -3 "$log" | tr '\n' '|' | grep -qF \
  "config_complete [('extra', '1'), ('size', '2M')]|get_ready 2097152|after_fork|" ||
  fail "config/get_ready/after_fork: $(cat "$log")"
[ "$(tail -1 "$log")" = cleanup ] || fail "cleanup did not run last: $(cat "$log")"
grep -q "pread failed on purpose" "$tmpdir/out" || fail "no traceback logged"
grep -q "using thread model: serialize_requests" "$tmpdir/out" ||
  fail "the script's thread_model was not used"

# list_exports and (connecting to the default export) export_description
# through nbdinfo.
: >"$log"
"$NBDKIT" -U - python "$tmpdir/all.py" log="$log" \
  --run 'nbdinfo --list "$uri" && nbdinfo "$uri"' >"$tmpdir/list" ||
  fail "nbdinfo --list failed"
for e in 'export="plain"' 'export="described"' 'export="nodesc"' \
         'description: the described one' 'description: export described'; do
  grep -qF "$e" "$tmpdir/list" || fail "nbdinfo --list lacks $e: $(cat "$tmpdir/list")"
done

# --dump-plugin: the interpreter's version lines.
"$NBDKIT" python --dump-plugin >"$tmpdir/dump" || fail "--dump-plugin failed"
for l in thread_model=serialize_all_requests python_pep_384_abi_version=3 \
         nbdkit_python_maximum_api_version=2; do
  grep -qx "$l" "$tmpdir/dump" || fail "--dump-plugin lacks $l: $(cat "$tmpdir/dump")"
done
grep -q '^python_version=3\.' "$tmpdir/dump" || fail "no python_version"

echo "$0: ok"
