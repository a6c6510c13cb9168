#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Where error and debug messages go without syslog:
# - default and --log=stderr: a plugin's error while configuring and
#   while serving a client appears on stderr as "nbdkit: PLUGIN: error:"
#   and "nbdkit: PLUGIN[CONN]: error:" (plugin name and connection);
# - --log=null: those errors appear nowhere, the exit status is still 1;
# - -v: debug messages go to stderr whatever --log says (null included);
# - an unknown --log value is refused with exit status 1.

source "$srcdir/functions.sh"
requires nbdinfo --version
requires_plugin memory
requires_plugin file

make_tmpdir
mkdir "$tmpdir/exports"

# config_error LOG-ARGS...: a plugin error while parsing parameters.
config_error ()
{
  status=0
  timeout 60 "$NBDKIT" "$@" -U - memory size=bad --run 'exit 9' \
    2>"$tmpdir/err" || status=$?
  [ "$status" -eq 1 ] || fail "$*: bad size gave exit status $status, expected 1"
}

# serve_error LOG-ARGS...: a plugin error while serving a client (an
# export that does not exist in the file plugin's directory).
serve_error ()
{
  status=0
  timeout 60 "$NBDKIT" "$@" -U - file dir="$tmpdir/exports" \
    --run 'nbdinfo "nbd+unix:///missing?socket=$unixsocket" \
             >/dev/null 2>"'"$tmpdir"'/client.err"; exit 0' \
    2>"$tmpdir/err" || status=$?
  [ "$status" -eq 0 ] || fail "$*: captive run exited with $status"
  grep -q missing "$tmpdir/client.err" ||
    fail "$*: the client did not see an error for the missing export"
}

for log in "" --log=stderr; do
  what=${log:-default}
  config_error $log
  grep -Eq '^nbdkit: memory: error: .*bad' "$tmpdir/err" ||
    fail "$what: config error not on stderr with the plugin name: $(cat "$tmpdir/err")"
  serve_error $log
  grep -Eq '^nbdkit: file\[[0-9]+\]: error: .*missing' "$tmpdir/err" ||
    fail "$what: serving error not on stderr with plugin name and connection: $(cat "$tmpdir/err")"
  grep -q 'debug' "$tmpdir/err" && fail "$what: debug output without -v"
  echo "ok: $what: errors on stderr"
done

config_error --log=null
grep -q 'bad' "$tmpdir/err" &&
  fail "--log=null: config error printed: $(cat "$tmpdir/err")"
serve_error --log=null
grep -q 'missing' "$tmpdir/err" &&
  fail "--log=null: serving error printed: $(cat "$tmpdir/err")"
echo "ok: --log=null: errors discarded"

for log in --log=null --log=stderr; do
  serve_error -v $log
  grep -Eq '^nbdkit: .*debug: ' "$tmpdir/err" ||
    fail "-v $log: no debug messages on stderr"
  grep -Eq '^nbdkit: file\[[0-9]+\]: debug: ' "$tmpdir/err" ||
    fail "-v $log: debug messages lack the plugin name and connection"
  case $log in
    --log=null)
      grep -q 'error: .*missing' "$tmpdir/err" &&
        fail "-v --log=null: the error was printed too" ;;
    --log=stderr)
      grep -q 'error: .*missing' "$tmpdir/err" ||
        fail "-v --log=stderr: the error is missing from stderr" ;;
  esac
  echo "ok: -v $log: debug on stderr"
done

status=0
"$NBDKIT" --log=bogus -U - memory 1M --run 'exit 9' 2>"$tmpdir/err" || status=$?
[ "$status" -eq 1 ] || fail "--log=bogus: exit status $status, expected 1"
grep -q -- '--log' "$tmpdir/err" || fail "--log=bogus: no message about --log"
echo "ok: --log=bogus refused"

echo "$0: ok"
