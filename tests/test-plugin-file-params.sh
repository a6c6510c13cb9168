#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# File plugin parameters: bad or conflicting ones make nbdkit exit with
# status 1 and a message naming the problem; every cache= and fadvise=
# mode serves the file correctly.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires_plugin file
make_tmpdir
export tmpdir

truncate -s 1M "$tmpdir/disk"
mkdir "$tmpdir/dir"

# expect_error PATTERN ARGS...
expect_error ()
{
  local pattern=$1 status=0
  shift
  "$NBDKIT" -U - "$@" --run 'exit 0' >/dev/null 2>"$tmpdir/err" || status=$?
  [ "$status" -eq 1 ] || fail "nbdkit $*: exit status $status, expected 1"
  grep -Eq -e "$pattern" "$tmpdir/err" || {
    cat "$tmpdir/err" >&2
    fail "nbdkit $*: error message does not match /$pattern/"
  }
}

expect_error "file=.*dir=|dir=.*file=" file
expect_error "file=.*dir=|dir=.*file=" file "$tmpdir/disk" dir="$tmpdir/dir"
expect_error "$tmpdir/missing" file "$tmpdir/missing"
expect_error "$tmpdir/missing" file dir="$tmpdir/missing"
expect_error "bogus" file "$tmpdir/disk" cache=bogus
expect_error "bogus" file "$tmpdir/disk" fadvise=bogus
expect_error "frobnicate" file "$tmpdir/disk" frobnicate=1
mkfifo "$tmpdir/fifo"
expect_error "fifo" file "$tmpdir/fifo"

# Every mode still moves data correctly.
head -c $(( 8 << 20 )) /dev/urandom >"$tmpdir/in"
for opts in "cache=default" "cache=none" "fadvise=normal" "fadvise=random" \
            "fadvise=sequential" "cache=none fadvise=sequential"; do
  truncate -s 0 "$tmpdir/disk"
  truncate -s $(( 8 << 20 )) "$tmpdir/disk"
  # shellcheck disable=SC2086
  "$NBDKIT" -U - file "$tmpdir/disk" $opts \
    --run 'nbdcopy "$tmpdir/in" "$uri" && nbdcopy "$uri" "$tmpdir/out"' ||
    fail "copy with $opts failed"
  cmp "$tmpdir/in" "$tmpdir/disk" || fail "$opts: file differs from input"
  cmp "$tmpdir/in" "$tmpdir/out" || fail "$opts: data read differs"
done
