# SPDX-License-Identifier: BSD-3-Clause
# Helpers for the nbdkitctl tests (tests/test-daemon-ctl-*.sh); not a test
# itself (the suite globs test-*.sh).  Source after functions.sh and
# daemon-functions.sh:
#
# ctl_setup                    find nbdkitctl ($CTL) or skip
# ctl ARGS...                  run nbdkitctl, fail unless it exits 0
# expect_exit CODE PATTERN CMD...
#                              CMD exits CODE with one line of stderr
#                              matching PATTERN (kept in $D/err)
# json_check FILE EXPR         python EXPR on d (FILE's JSON) must hold
# json_get FILE EXPR           print python EXPR on d
# json_equal_busctl CTL BUS EXPR
#                              nbdkitctl's JSON in CTL equals EXPR computed
#                              from b, the "data" of busctl --json=short
# hold_client URI              keep an NBD connection open (nbdsh) until
#                              wait_client_gone / the end of the test
# wait_property NAME PROP VALUE  bounded wait for an export property

ctl_setup ()
{
  CTL=${NBDKITCTL:-$abs_top_builddir/ctl/nbdkitctl}
  [ -x "$CTL" ] || skip "nbdkitctl was not built (no libsystemd?)"
  PATH="$(dirname "$CTL"):$PATH"
}

ctl ()
{
  local rc=0
  "$CTL" "$@" || rc=$?
  [ $rc = 0 ] || fail "nbdkitctl $* exited $rc"
}

expect_exit ()
{
  local code=$1 pattern=$2 rc=0
  shift 2
  "$@" >"$D/out" 2>"$D/err" || rc=$?
  [ "$rc" = "$code" ] ||
    fail "$* exited $rc, expected $code: $(cat "$D/err")"
  [ "$(wc -l < "$D/err")" -le 1 ] ||
    fail "$*: more than one line of error: $(cat "$D/err")"
  [ -z "${CTL_SHOW_ERRORS:-}" ] || echo "exit $rc: $(cat "$D/err")" >&2
  grep -qE -- "$pattern" "$D/err" ||
    fail "$*: stderr does not match '$pattern': $(cat "$D/err")"
}

json_check ()
{
  /usr/bin/python3 - "$1" "$2" <<'EOF' || fail "JSON check failed: $2"
import json, sys
d = json.load(open(sys.argv[1]))
if not eval("(" + sys.argv[2] + ")"):
    print("JSON:", json.dumps(d, indent=1), file=sys.stderr)
    sys.exit(1)
EOF
}

json_get ()
{
  /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2"
}

json_equal_busctl ()
{
  /usr/bin/python3 - "$1" "$2" "$3" <<'EOF' ||
import json, sys
ours = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))["data"]
want = eval("(" + sys.argv[3] + ")")
if ours != want:
    print("nbdkitctl:", json.dumps(ours, sort_keys=True), file=sys.stderr)
    print("busctl:   ", json.dumps(want, sort_keys=True), file=sys.stderr)
    sys.exit(1)
EOF
    fail "nbdkitctl --json differs from busctl ($1)"
}

hold_client ()
{
  touch "$D/hold"
  /usr/bin/nbdsh -u "$1" -c '
import os, time
h.pread(512, 0)
for i in range(600):
    if not os.path.exists("'"$D/hold"'"):
        break
    time.sleep(0.1)
' > "$D/client.log" 2>&1 &
  CLIENT_PID=$!
  cleanup_fn kill_pid "$CLIENT_PID"
}

wait_client_gone ()
{
  local i
  rm -f "$D/hold"
  for (( i=0; i<200; i++ )); do
    kill -0 "$CLIENT_PID" 2>/dev/null || return 0
    sleep 0.05
  done
  fail "the NBD client did not exit"
}

wait_property ()
{
  local name=$1 prop=$2 want=$3 i v=
  for (( i=0; i<200; i++ )); do
    v=$(eprop "$name" "$prop" 2>/dev/null)
    [ "$v" = "$want" ] && return 0
    sleep 0.05
  done
  fail "export $name: $prop is '$v', expected '$want'"
}
