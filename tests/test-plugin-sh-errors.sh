#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# sh plugin exit codes and errors: status 1 with an errno name on stderr
# gives the client that error (EIO otherwise), 2 is a missing method, 3
# false; exit 4-7, a signal, short, long or unparsable output, and a
# background child holding stdout all fail one request with an error
# naming the method while the server carries on.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin sh
make_tmpdir
export tmpdir

# The request at offset N behaves according to N (in 512-byte sectors).
cat >"$tmpdir/script" <<'SH'
#!/bin/sh
case "$1" in
  get_size) echo 1M ;;
  can_write|can_flush) exit 0 ;;
  can_trim) exit 3 ;;
  pread)
    case $(( $4 / 512 )) in
      0) head -c $3 /dev/zero ;;
      1) echo "ENOSPC out of room" >&2; exit 1 ;;
      2) echo "eperm lower case works" >&2; exit 1 ;;
      3) printf 'EROFS' >&2; exit 1 ;;
      4) echo "EACCES is not a name we map" >&2; exit 1 ;;
      5) exit 1 ;;
      6) echo "EINVAL reserved" >&2; exit 5 ;;
      7) kill -9 $$ ;;
      8) head -c 100 /dev/zero ;;
      9) head -c $(( $3 + 1 )) /dev/zero ;;
      10) exec cat /dev/zero ;;
      11) sleep 20 & head -c $3 /dev/zero ;;
      12) exit 2 ;;
      13) echo "ESHUTDOWN going away" >&2; exit 1 ;;
      14) echo "EOVERFLOW x" >&2; exit 1 ;;
      15) echo "ENOMEM" >&2; exit 1 ;;
    esac ;;
  pwrite)
    cat >/dev/null
    case $(( $4 / 512 )) in
      0) ;;
      1) echo "EDQUOT quota" >&2; exit 1 ;;
      2) echo "EFBIG big" >&2; exit 1 ;;
    esac ;;
  flush) exit 3 ;;
  *) exit 2 ;;
esac
SH
chmod +x "$tmpdir/script"

cat >"$tmpdir/t.py" <<'PY'
import errno, time
def fails(off, want, count=512):
    try:
        h.pread(count, off)
    except nbd.Error as e:
        want = want if isinstance(want, tuple) else (want,)
        assert e.args[1] in want, "offset %d: %s, want %s" % (off, e, want)
        return
    assert False, "offset %d: pread succeeded" % off

assert h.pread(512, 0) == bytes(512)
assert not h.can_trim()
fails(512 * 1, errno.ENOSPC)
fails(512 * 2, errno.EPERM)
fails(512 * 3, errno.EPERM)            # EROFS goes over NBD as EPERM
fails(512 * 4, errno.EIO)
fails(512 * 5, errno.EIO)
fails(512 * 6, errno.EINVAL)        # 4-7 act like 1
fails(512 * 7, errno.EIO)
fails(512 * 8, errno.EIO)
fails(512 * 9, errno.EIO)
fails(512 * 10, errno.EIO, 65536)      # endless output: killed
t = time.monotonic()
assert h.pread(512, 512 * 11) == bytes(512)
assert time.monotonic() - t < 30, "a background child held the request"
fails(512 * 12, errno.EIO)
fails(512 * 13, errno.ESHUTDOWN)
fails(512 * 14, (errno.EOVERFLOW, errno.EINVAL))  # as the server maps it
fails(512 * 15, errno.ENOMEM)
h.pwrite(bytes(512), 0)
for off, want in ((512, errno.ENOSPC), (1024, errno.ENOSPC)):
    try:
        h.pwrite(bytes(512), off)
        assert False, "pwrite at %d succeeded" % off
    except nbd.Error as e:
        assert e.args[1] == want, e
try:
    h.flush()
    assert False, "flush returning 3 succeeded"
except nbd.Error as e:
    assert e.args[1] == errno.EIO, e
# Still serving.
assert h.pread(512, 0) == bytes(512)
PY

"$NBDKIT" -U - sh "$tmpdir/script" \
  --run 'nbdsh -u "$uri" -c - <"$tmpdir/t.py"' 2>"$tmpdir/log" ||
  fail "error checks failed: $(cat "$tmpdir/log")"

expect_log ()
{
  grep -qF -- "$1" "$tmpdir/log" ||
    fail "no '$1' in the log: $(cat "$tmpdir/log")"
}
expect_log "$tmpdir/script: pread: out of room"
expect_log "pread: lower case works"
expect_log "pread: EROFS"
expect_log "pread: EACCES is not a name we map"
expect_log "pread: the script exited with an error but printed no message"
expect_log "pread: the script exited with status 5: reserved"
expect_log "pread: the script was killed by signal 9"
expect_log "pread: the script wrote 100 bytes, expected 512"
expect_log "pread: the script wrote more than 512 bytes on stdout"
expect_log "pread: the script wrote more than 65536 bytes on stdout"
expect_log "pread: the pread method is required"
expect_log "pwrite: quota"
expect_log "flush: unexpected exit status 3 (false)"

# Methods required at start-up: get_size missing, bad sizes, bad
# answers from the can_* methods that print a word, block_size.
check_connect_error ()
{
  local script=$1 want=$2
  printf '#!/bin/sh\n%s\n' "$script" >"$tmpdir/s2"
  chmod +x "$tmpdir/s2"
  if "$NBDKIT" -U - sh "$tmpdir/s2" --run 'nbdinfo "$uri"' \
       >/dev/null 2>"$tmpdir/log2"; then
    fail "script accepted: $script"
  fi
  grep -qF -- "$want" "$tmpdir/log2" ||
    fail "no '$want' for script $script: $(cat "$tmpdir/log2")"
}
common='pread) head -c $3 /dev/zero ;;'
check_connect_error "case \$1 in $common *) exit 2 ;; esac" \
  "get_size: the get_size method is required"
check_connect_error "case \$1 in get_size) echo banana ;; $common *) exit 2 ;; esac" \
  "get_size: cannot parse 'banana' as a size"
check_connect_error "case \$1 in get_size) echo 1M ;; can_fua) echo sometimes ;; can_write) exit 0 ;; $common *) exit 2 ;; esac" \
  "can_fua: cannot parse 'sometimes': expected none, emulate or native"
check_connect_error "case \$1 in get_size) echo 1M ;; block_size) echo 512 4096 ;; $common *) exit 2 ;; esac" \
  "block_size: expected three sizes"
check_connect_error "case \$1 in get_size) echo 1M ;; can_write) exit 7 ;; $common *) exit 2 ;; esac" \
  "can_write: the script exited with status 7"
check_connect_error "case \$1 in get_size) echo 1M ;; open) echo 'EPERM go away' >&2; exit 1 ;; $common *) exit 2 ;; esac" \
  "open: go away"

# Configuration errors stop nbdkit with the message.
printf '#!/bin/sh\ncase $1 in config) echo "EINVAL bad key $2" >&2; exit 1 ;; *) exit 2 ;; esac\n' \
  >"$tmpdir/s3"
chmod +x "$tmpdir/s3"
if "$NBDKIT" -U - sh "$tmpdir/s3" foo=bar --run true 2>"$tmpdir/log3"; then
  fail "a failing config method was ignored"
fi
grep -q "config: bad key foo" "$tmpdir/log3" || fail "config error: $(cat "$tmpdir/log3")"
if "$NBDKIT" -U - sh "$tmpdir/s3" bare --run true 2>"$tmpdir/log3"; then
  fail "a bare parameter without magic_config_key was accepted"
fi
grep -q "expecting key=value" "$tmpdir/log3" || fail "bare: $(cat "$tmpdir/log3")"
if "$NBDKIT" -U - sh k=v --run true 2>"$tmpdir/log3"; then
  fail "a parameter before script= was accepted"
fi
grep -q "first parameter must be script=" "$tmpdir/log3" || fail "order: $(cat "$tmpdir/log3")"
if "$NBDKIT" -U - sh "$tmpdir/missing" --run true 2>"$tmpdir/log3"; then
  fail "a missing script was accepted"
fi
chmod -x "$tmpdir/s3"
if "$NBDKIT" -U - sh "$tmpdir/s3" --run true 2>"$tmpdir/log3"; then
  fail "a script that is not executable was accepted"
fi
grep -q "load: cannot run .*Permission denied" "$tmpdir/log3" ||
  fail "not executable: $(cat "$tmpdir/log3")"
echo "$0: ok"
