#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The memory plugin's size= parameter: plain numbers, every suffix, the
# magic (keyless) form, zero, and the largest size nbdkit allows.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdinfo --version
requires_plugin memory

check_size ()
{
  local expected=$1 got
  shift
  got=$("$NBDKIT" -U - memory "$@" --run 'nbdinfo --size "$uri"') ||
    fail "nbdkit memory $* failed"
  [ "$got" = "$expected" ] ||
    fail "nbdkit memory $*: size is $got, expected $expected"
}

check_size 0 0
check_size 1 1
check_size 1048576 1M
check_size 1048576 size=1M
check_size 1048576 1m
check_size 1024 1k
check_size 1024 1K
check_size 512 1s
check_size 1536 3s
check_size 100 100b
check_size $(( 3 << 30 )) 3G
check_size $(( 1 << 40 )) 1T
check_size $(( 1 << 50 )) 1P
check_size $(( 1 << 60 )) 1E
check_size $(( 7 << 60 )) 7E
check_size 9223372036854775807 9223372036854775807
check_size 9223372036854775807 size=9223372036854775807

# allocator=sparse is the default and is accepted explicitly.
check_size 1048576 1M allocator=sparse
