#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The xz filter's memory is bounded by xz-max-depth: reading all of a
# 96 MiB image made of 1 MiB blocks with xz-max-depth=2 leaves the
# server's peak resident memory far below the image size (a cache that
# kept every block would need 96 MiB), and the data is still right.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires xz --version
requires nbdcopy --version
requires sha256sum --version
requires_plugin file
requires_filter xz
make_tmpdir

yes "xz memory bound test" | head -c 96M >"$tmpdir/data"
xz --keep -0 --block-size=1MiB "$tmpdir/data" || fail "xz failed"
want=$(sha256sum <"$tmpdir/data")
rm "$tmpdir/data"

start_nbdkit -P "$tmpdir/pid" -U "$tmpdir/sock" --filter=xz \
  file "$tmpdir/data.xz" xz-max-depth=2
pid=$(cat "$tmpdir/pid")
# Few requests in flight, so that request buffers stay small too.
got=$(nbdcopy --connections=1 --requests=4 \
        "nbd+unix:///?socket=$tmpdir/sock" - | sha256sum) ||
  fail "nbdcopy failed"
[ "$got" = "$want" ] || fail "the data differs from the original"
hwm=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$pid/status")
echo "$0: peak resident memory $hwm KiB"
[ "$hwm" -lt 40960 ] ||
  fail "peak memory $hwm KiB: the block cache is not bounded by xz-max-depth"
