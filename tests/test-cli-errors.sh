#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Bad command lines: nbdkit must exit with status 1 and print a message
# on stderr that names the problem, without starting to serve anything.

source "$srcdir/functions.sh"
requires timeout --version
requires_plugin memory

make_tmpdir
sock="$tmpdir/sock"
out="$tmpdir/out"
err="$tmpdir/err"

failures=0

# expect_error DESCRIPTION REGEX ARGS...
# Runs nbdkit ARGS (foreground, no stdin, bounded by timeout so that a
# wrongly accepted command line cannot linger) and checks the exit
# status is 1 and stderr matches the extended regex REGEX.
expect_error ()
{
  local desc=$1 regex=$2 status
  shift 2
  rm -f "$sock"
  status=0
  timeout 20 "$NBDKIT" "$@" </dev/null >"$out" 2>"$err" || status=$?
  if [ "$status" -ne 1 ]; then
    echo "FAIL: $desc: nbdkit $*: exit status $status, expected 1" >&2
    sed 's/^/  stderr: /' "$err" >&2
    failures=$((failures + 1))
    return
  fi
  if ! grep -Eqi -- "$regex" "$err"; then
    echo "FAIL: $desc: nbdkit $*: stderr does not match /$regex/:" >&2
    sed 's/^/  stderr: /' "$err" >&2
    failures=$((failures + 1))
    return
  fi
  if grep -q 'NBDMAGIC' "$out"; then
    echo "FAIL: $desc: nbdkit $*: started the NBD handshake" >&2
    failures=$((failures + 1))
    return
  fi
  echo "ok: $desc: $(head -n1 "$err")"
}

# expect_success DESCRIPTION ARGS...: the command line is accepted.
expect_success ()
{
  local desc=$1 status
  shift
  rm -f "$sock"
  status=0
  timeout 20 "$NBDKIT" "$@" </dev/null >"$out" 2>"$err" || status=$?
  if [ "$status" -ne 0 ]; then
    echo "FAIL: $desc: nbdkit $*: exit status $status, expected 0" >&2
    sed 's/^/  stderr: /' "$err" >&2
    failures=$((failures + 1))
    return
  fi
  echo "ok: $desc"
}

# A run command that makes a wrongly accepted command line visible as
# exit status 99 instead of a server left running.
run=(-U "$sock" --run 'exit 99')

# Plugins and filters that cannot be loaded.
expect_error "unknown plugin" "nosuchplugin" \
  "${run[@]}" nosuchplugin
expect_error "plugin path that does not exist" \
  "/nonexistent/nbdkit-nosuch-plugin\.so" \
  "${run[@]}" /nonexistent/nbdkit-nosuch-plugin.so
expect_error "no plugin on the command line" "plugin" \
  -U "$sock" --run 'exit 99'
expect_error "unknown filter" "nosuchfilter" \
  "${run[@]}" --filter=nosuchfilter memory 1M
expect_error "filter path that does not exist" \
  "/nonexistent/nbdkit-nosuch-filter\.so" \
  "${run[@]}" --filter=/nonexistent/nbdkit-nosuch-filter.so memory 1M

# Plugin parameters.
expect_error "unknown plugin parameter" "foo" \
  "${run[@]}" memory 1M foo=bar
expect_error "unparsable size suffix" "size|1Z|suffix|'Z'" \
  "${run[@]}" memory size=1Z
expect_error "negative size" "size|negative|-1" \
  "${run[@]}" memory size=-1
expect_error "empty size" "size" \
  "${run[@]}" memory size=
expect_error "missing required size" "size" \
  "${run[@]}" memory

# Conflicting listener / mode options.
expect_error "-s with -U" "combination|conflict|together|incompatible|cannot be used|mutually" \
  -s -U "$sock" memory 1M
expect_error "--run with -s" "combination|conflict|together|incompatible|cannot be used|mutually" \
  -s --run 'exit 99' memory 1M
expect_error "-U with -p" "combination|conflict|together|incompatible|cannot be used|mutually" \
  -f -U "$sock" -p 1 memory 1M
expect_error "-s with -p" "combination|conflict|together|incompatible|cannot be used|mutually" \
  -s -p 1 memory 1M
expect_error "--vsock with -U" "combination|conflict|together|incompatible|cannot be used|mutually" \
  -f --vsock -U "$sock" memory 1M

# Bad option values.
expect_error "-t not a number" "thread" \
  "${run[@]}" -t bad memory 1M
expect_error "-t negative" "thread" \
  "${run[@]}" -t -1 memory 1M
expect_error "-t out of range" "thread" \
  "${run[@]}" -t 99999999999 memory 1M
expect_error "--log bad value" "log" \
  "${run[@]}" --log=bad memory 1M
expect_error "--tls bad value" "bad|tls" \
  "${run[@]}" --tls=bad memory 1M
expect_error "-D without NAME.FLAG=N" "debug|-D|flag" \
  "${run[@]}" -D bad memory 1M

# Option parsing.
expect_error "unknown long option" "nosuchopt|unrecognized|unknown" \
  "${run[@]}" --nosuchopt memory 1M
expect_error "unknown short option" "invalid option|unrecognized|unknown" \
  "${run[@]}" -Z memory 1M
expect_error "option missing its argument" "requires an argument|missing" \
  "${run[@]}" memory 1M -P

# Upstream nbdkit takes -t 0 as the default and -p 99999 as some other
# port; both are refused here, naming the option.
expect_error "-t 0" "-t \\(--threads\\) must be at least 1" \
  "${run[@]}" -t 0 memory 1M
expect_error "--poll-max too large" \
  "--poll-max must be at most 10000 \\(microseconds\\), not 10001" \
  "${run[@]}" --poll-max=10001 memory 1M
expect_error "--poll-max not a number" "--poll-max: could not parse" \
  "${run[@]}" --poll-max=fast memory 1M
for p in 0 65536 99999; do
  expect_error "-p $p" "-p \\(--port\\): $p is not a TCP port number" \
    -p "$p" memory 1M --run 'exit 0'
done
expect_error "-p unknown service" "-p \\(--port\\): \"no-such-service\" is not" \
  -p no-such-service memory 1M --run 'exit 0'

# A plugin or filter that is not installed: say so and where to look.
expect_error "plugin not installed" \
  "the plugin 'nosuchplugin' is not installed here.*--dump-config|the plugin 'nosuchplugin' is not installed here" \
  "${run[@]}" nosuchplugin
expect_error "filter not installed" "the filter 'nosuchfilter' is not installed here" \
  "${run[@]}" --filter=nosuchfilter memory 1M

if [ "$failures" -gt 0 ]; then
  fail "$failures command line check(s) failed"
fi
