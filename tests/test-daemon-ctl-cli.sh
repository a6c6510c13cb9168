#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nbdkitctl without nbdkitd: --help for the program and each verb, the man
# page lists the same verbs, command-line errors exit 2, and no bus or no
# daemon on a private dbus-daemon exits 6 with one clear line.

source "${srcdir:-$(dirname "$0")}/functions.sh"

CTL=$abs_top_builddir/ctl/nbdkitctl
[ -x "$CTL" ] || skip "nbdkitctl was not built (no libsystemd?)"
requires dbus-daemon --version

tmp=$(mktemp -d /tmp/nbdkitctl-cli.XXXXXX)
cleanup_fn rm -rf "$tmp"

# expect_exit CODE PATTERN CMD...: CMD exits CODE and its stderr matches.
expect_exit ()
{
  local code=$1 pattern=$2 rc=0
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" = "$code" ] ||
    fail "$* exited $rc, expected $code: $(cat "$tmp/err")"
  [ "$(wc -l < "$tmp/err")" -le 1 ] ||
    fail "$*: more than one line of error: $(cat "$tmp/err")"
  grep -qE -- "$pattern" "$tmp/err" ||
    fail "$*: stderr does not match $pattern: $(cat "$tmp/err")"
}

# --help lists every verb; the man page documents the same ones.
"$CTL" --help > "$tmp/help"
verbs=$(sed -n '/^Verbs:/,/^$/p' "$tmp/help" | awk 'NF > 1 { print $1 }')
[ "$(echo "$verbs" | wc -l)" -ge 16 ] || fail "--help lists too few verbs"
for v in $verbs; do
  grep -q "^=item B<$v>" "$abs_top_srcdir/ctl/nbdkitctl.pod" ||
    grep -q "B<$v>" "$abs_top_srcdir/ctl/nbdkitctl.pod" ||
    fail "verb $v is not in nbdkitctl.pod"
  "$CTL" "$v" --help > "$tmp/vhelp" || fail "$v --help failed"
  grep -q "^Usage: nbdkitctl \[OPTIONS\] $v" "$tmp/vhelp" ||
    fail "$v --help: $(cat "$tmp/vhelp")"
done
"$CTL" add-export --help | grep -q -- '--secret=KEY=FILE' ||
  fail "add-export --help does not document --secret"
"$CTL" --version | grep -qE '^nbdkitctl [0-9]+\.[0-9]+\.[0-9]+$' ||
  fail "--version"

# Command-line errors: exit 2, before any bus is used.
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$tmp/no-such-socket
export DBUS_SESSION_BUS_ADDRESS=unix:path=$tmp/no-such-socket
expect_exit 2 'a verb is required' "$CTL"
expect_exit 2 'unknown verb "frobnicate"' "$CTL" frobnicate
expect_exit 2 'start: too few arguments' "$CTL" start
expect_exit 2 'uri: too many arguments' "$CTL" uri a b
expect_exit 2 'add-export: too few arguments' "$CTL" add-export disk1
expect_exit 2 'only for add-export and update-export' "$CTL" list --filter=cow
expect_exit 2 'only for add-export and update-export' "$CTL" start x -r
expect_exit 2 '--force is only for' "$CTL" start x --force
expect_exit 2 '--transient is only for add-export' \
  "$CTL" update-export x --transient
expect_exit 2 '--tls: "maybe" is not one of: off on require' \
  "$CTL" add-export x --tls=maybe null
expect_exit 2 '--start: "later" is not one of' \
  "$CTL" add-export x --start=later null
expect_exit 2 '--threads: "many" is not a number' \
  "$CTL" add-export x --threads=many null
expect_exit 2 '--idle-timeout: "-1" is not a number' \
  "$CTL" add-export x --idle-timeout=-1 null
expect_exit 2 '--listen: "http:x" is not tcp:HOST:PORT' \
  "$CTL" add-export x --listen=http:x null
expect_exit 2 '--json: expected pretty or short' "$CTL" --json=yaml list
expect_exit 2 '--secret: expected KEY=FILE' "$CTL" add-export x --secret=pw null
expect_exit 2 "--secret password: $tmp/none: No such file" \
  "$CTL" add-export x --secret=password=$tmp/none null
expect_exit 2 'disconnect: "abc" is not a connection ID' \
  "$CTL" disconnect x abc
expect_exit 2 'unrecognized option' "$CTL" list --frob

# The magic key comes from the local nbdkit: an unknown plugin with a bare
# argument is refused before any call, naming the plugin.
expect_exit 2 'plugin no-such-plugin: .*--dump-plugin failed' \
  "$CTL" add-export x no-such-plugin 1G
"$NBDKIT" null --dump-plugin >/dev/null 2>&1 || skip "nbdkit null plugin"

# No bus at all: exit 6.
expect_exit 6 'cannot connect to the system bus' "$CTL" list
expect_exit 6 'cannot connect to the session bus' "$CTL" --user list

# A private bus where nobody owns org.nbdkit.Daemon1: exit 6 for reads
# and for changes (after the magic key was learnt locally).
start_session_bus "$tmp"
export DBUS_SYSTEM_BUS_ADDRESS=$SESSION_BUS
export DBUS_SESSION_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS

for args in list-exports "show-export disk1" status list-plugins \
            "remove-export disk1" "start disk1" "uri disk1" \
            "list-connections" "add-export disk1 memory 1G" \
            "--user list"; do
  expect_exit 6 'nbdkitd is not running or not reachable' "$CTL" $args
done
expect_exit 6 'on the session bus' "$CTL" --user status

echo "$0: OK"
