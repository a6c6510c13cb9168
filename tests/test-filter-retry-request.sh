#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The retry-request filter against a plugin that fails a set number of
# times (the error filter while a file exists; a log filter script
# counting attempts removes the file at attempt N): a request failing
# N - 1 times succeeds when that fits in retry-request-retries (default
# 2) and fails with the plugin's error when not, on the same plugin
# connection (one Connect only).  With retry-request-open (the
# default), a client whose export does not exist yet is kept waiting
# and gets in once the file appears; with retry-request-open=false, or
# once the retries run out, it is refused.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdsh --version
requires_plugin memory
requires_plugin file
requires_filter retry-request
requires_filter log
requires_filter error
make_tmpdir
export tmpdir

logscript='
[ "$type" = ENTER ] && [ "$act" = "$COUNT_ACT" ] || exit 0
n=$(( $(cat "$tmpdir/count" 2>/dev/null || echo 0) + 1 ))
echo $n >"$tmpdir/count"
[ $n -lt "$SUCCEED_AT" ] || rm -f "$tmpdir/fail"'

# run OP ACT SUCCEED_AT PYTHON [PARAMS...]: a fresh server whose OP
# (logged as ACT) fails until attempt SUCCEED_AT, running PYTHON.
run ()
{
  local op=$1 act=$2 succeed_at=$3 py=$4; shift 4
  rm -f "$tmpdir/count" "$tmpdir/log"
  touch "$tmpdir/fail"
  COUNT_ACT=$act SUCCEED_AT=$succeed_at py=$py \
  "$NBDKIT" -U - -v --filter=retry-request --filter=log --filter=error \
    memory 1M error-$op-rate=1 error-$op-file="$tmpdir/fail" \
    logfile="$tmpdir/log" logscript="$logscript" "$@" \
    --run 'nbdsh --base-allocation -u "$uri" -c "$py"' 2>"$tmpdir/stderr"
}
attempts () { cat "$tmpdir/count"; }
connects () { grep -c ' Connect ' "$tmpdir/log"; }
eio='
try:
    OP
    raise AssertionError("the request succeeded")
except nbd.Error as e:
    assert e.errno == "EIO", e'

# The default of 2 retries: two failures are hidden, three are not.
run pread Read 3 'assert h.pread(512, 0) == bytes(512)' \
  retry-request-delay=0.01 || fail "a read failing twice failed"
[ "$(attempts)" = 3 ] || fail "expected 3 attempts, saw $(attempts)"
[ "$(connects)" = 1 ] || fail "the plugin was reopened ($(connects) opens)"
run pread Read 4 "${eio/OP/h.pread(512, 0)}" retry-request-delay=0.01 ||
  fail "a read failing three times did not fail with the default retries"
[ "$(attempts)" = 3 ] || fail "expected 3 attempts, saw $(attempts)"
grep -q 'giving up after 2 retries' "$tmpdir/stderr" ||
  fail "no message about giving up"

# retry-request-retries=: five failures hidden by 5 retries, not by 4.
run pwrite Write 6 '
h.pwrite(b"w" * 1000, 100)
assert h.pread(1000, 100) == b"w" * 1000' \
  retry-request-retries=5 retry-request-delay=0.01 ||
  fail "a write failing five times failed with 5 retries"
[ "$(attempts)" = 6 ] || fail "expected 6 attempts, saw $(attempts)"
[ "$(connects)" = 1 ] || fail "the plugin was reopened ($(connects) opens)"
op='h.pwrite(b"w" * 1000, 100)'
run pwrite Write 6 "${eio/OP/$op}" \
  retry-request-retries=4 retry-request-delay=0.01 ||
  fail "a write failing five times did not fail with 4 retries"
[ "$(attempts)" = 5 ] || fail "expected 5 attempts, saw $(attempts)"

# Other requests and block status are retried too.
run trim Trim 2 'h.trim(4096, 0)' retry-request-delay=0.01 ||
  fail "trim not retried"
run extents Extents 3 '
seen = []
h.block_status(65536, 0, lambda m, o, e, err: seen.extend(e))
assert sum(seen[0::2]) == 65536, seen' retry-request-delay=0.01 ||
  fail "block status not retried, or the extents were wrong"

# Open: the export (a file in dir=) appears only after the first
# failed open; the client started before it gets in.
mkdir "$tmpdir/exports"
"$NBDKIT" -P "$tmpdir/pid" -U "$tmpdir/sock" -f -v \
  --filter=retry-request file dir="$tmpdir/exports" \
  retry-request-retries=100 retry-request-delay=0.1 2>"$tmpdir/open.log" &
cleanup_fn kill_pid $!
for (( i=0; i<300; i++ )); do
  [ -s "$tmpdir/pid" ] && break
  sleep 0.1
done
[ -s "$tmpdir/pid" ] || fail "nbdkit did not start: $(tail "$tmpdir/open.log")"
nbdsh -u "nbd+unix:///late?socket=$tmpdir/sock" \
  -c 'assert h.pread(5, 0) == b"hello"' 2>"$tmpdir/client.log" &
client=$!
cleanup_fn kill_pid $client
for (( i=0; i<200; i++ )); do
  grep -q 'open failed, retry' "$tmpdir/open.log" && break
  sleep 0.05
done
grep -q 'open failed, retry' "$tmpdir/open.log" ||
  fail "the failed open was not retried: $(tail -5 "$tmpdir/open.log")"
echo hello >"$tmpdir/exports/late"
wait $client ||
  fail "the client was refused although the export appeared:
$(cat "$tmpdir/client.log")"
grep -q 'open succeeded after' "$tmpdir/open.log" ||
  fail "no message about the open succeeding after retries"

# retry-request-open=false: refused at once; with 2 retries: refused
# after them.
"$NBDKIT" -U - -v --filter=retry-request file dir="$tmpdir/exports" \
  retry-request-open=false retry-request-delay=0.01 \
  --run 'nbdsh -u "nbd+unix:///missing?socket=$unixsocket" -c pass' \
  2>"$tmpdir/stderr" && fail "a missing export was opened"
grep -q 'open failed, retry' "$tmpdir/stderr" &&
  fail "open was retried with retry-request-open=false"
"$NBDKIT" -U - -v --filter=retry-request file dir="$tmpdir/exports" \
  retry-request-delay=0.01 \
  --run 'nbdsh -u "nbd+unix:///missing?socket=$unixsocket" -c pass' \
  2>"$tmpdir/stderr" && fail "a missing export was opened"
[ "$(grep -c 'open failed, retry' "$tmpdir/stderr")" = 2 ] &&
  grep -q 'open failed, giving up after 2 retries' "$tmpdir/stderr" ||
  fail "open was not retried twice: $(grep retry "$tmpdir/stderr")"

echo "$0: ok"
