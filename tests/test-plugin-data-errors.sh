#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Bad data plugin parameters make nbdkit exit with status 1 before
# serving, with a message naming the problem: malformed or out-of-range
# data expressions, undefined names and variables, failing files and
# scripts, bad base64, and not exactly one of data=, raw= and base64=.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires_plugin data
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

# Not exactly one source of contents.
expect_error "not specified|none was given" data
expect_error "exactly once|exactly one" data raw=a data=1
expect_error "exactly once|exactly one" data data=1 data=2
expect_error "exactly once|exactly one" data base64=AA== raw=a

# Values out of range.
expect_error "0\.\.255" data '256'
expect_error "0\.\.255" data '0x1fe'
expect_error "65536" data 'le16:65536'
expect_error "power of 2" data '@^3 1'
expect_error "power of 2" data '@^0'
expect_error "@-1|offset" data '@-1'
expect_error "@-2|offset" data '1 @-2'
expect_error "slice" data '"hello"[4:2]'
expect_error "slice" data '"hello"[0:10]'
expect_error "slice" data '1 2 3[1:2]'

# Malformed text.
expect_error "offset 0" data 'abc'
expect_error "offset [0-9]" data '12abc'
expect_error "offset [0-9]" data '0o17'
expect_error "unmatched '\('" data '( 1 2'
expect_error "unmatched '\)'" data '1 )'
expect_error "unterminated string" data '"abc'
expect_error "must follow an expression" data '*2'
expect_error "must follow an expression" data '[1:2]'
expect_error "offset 3|not numeric|1K" data '1*1K'
expect_error "le16|be16" data 'le24:1'

# Names and variables.
expect_error '\\nope' data '\nope'
expect_error '\\x' data '( 1 -> \x ) \x'
expect_error '\$undefined' data '$undefined'
expect_error '\\x' data '$v' v='\x \x'

# Files and scripts.
expect_error "$tmpdir/nonexistent" data "<$tmpdir/nonexistent"
expect_error "exit|external command failed" data '<(exit 1)'

# Bad base64 and sizes.
expect_error "[Bb]ase64" data base64='!!!'
expect_error "suffix|size" data '1' size=1x
expect_error "negative|-1" data '1' size=-1
