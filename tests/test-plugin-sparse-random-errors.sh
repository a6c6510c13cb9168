#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Bad sparse-random plugin parameters make nbdkit exit with status 1
# before serving, with a message naming the problem.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires_plugin sparse-random
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

expect_error "seed" sparse-random size=1M seed=abc
expect_error "seed" sparse-random size=1M seed=-1
expect_error "seed" sparse-random size=1M seed=18446744073709551616
expect_error "percent.*101|101.*percent" sparse-random size=1M percent=101
expect_error "percent.*-1|-1.*percent" sparse-random size=1M percent=-1
expect_error "percent.*abc|abc.*percent" sparse-random size=1M percent=abc
expect_error "runlength" sparse-random size=1M runlength=0
expect_error "maybe" sparse-random size=1M random-content=maybe
expect_error "foo" sparse-random size=1M foo=1
expect_error "suffix|size" sparse-random size=1x
