#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Bad memory plugin parameters make nbdkit exit with status 1 before
# serving, with a message naming the problem.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires_plugin memory
make_tmpdir
export tmpdir

# expect_error PATTERN ARGS...: nbdkit ARGS must fail with status 1 and
# print PATTERN (an extended regex) on stderr.
expect_error ()
{
  local pattern=$1 status=0
  shift
  "$NBDKIT" -U - "$@" --run 'exit 0' >"$tmpdir/out" 2>"$tmpdir/err" ||
    status=$?
  [ "$status" -eq 1 ] ||
    fail "nbdkit $*: exit status $status, expected 1"
  grep -Eq -e "$pattern" "$tmpdir/err" || {
    cat "$tmpdir/err" >&2
    fail "nbdkit $*: error message does not match /$pattern/"
  }
}

expect_error "size=" memory
expect_error "abc" memory size=abc
expect_error "abc" memory abc
expect_error "-1" memory size=-1
expect_error "suffix" memory 10Q
expect_error "overflow.*9E|9E.*overflow" memory 9E
expect_error "overflow.*8E|8E.*overflow" memory 8E
expect_error "9223372036854775808" memory 9223372036854775808
expect_error "foo" memory 1M foo=bar
expect_error "allocator.*bogus|bogus.*allocator" memory 1M allocator=bogus
expect_error "allocator" memory 1M allocator=sparse,x=1
