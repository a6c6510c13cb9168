#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The sparse-random plugin is deterministic: the same parameters give a
# byte-identical disk on every run (with and without random-content),
# while a different seed gives a different disk.
source "${srcdir:-$(dirname "$0")}/functions.sh"

requires nbdcopy --version
requires sha256sum --version
requires_plugin sparse-random
make_tmpdir
export tmpdir

# digest PARAMS...: the sha256 of the whole disk.
digest ()
{
  rm -f "$tmpdir/disk"
  "$NBDKIT" -U - sparse-random "$@" --run 'nbdcopy "$uri" "$tmpdir/disk"' ||
    fail "sparse-random $*: nbdkit or nbdcopy failed"
  sha256sum <"$tmpdir/disk" | cut -d' ' -f1
}

zero=$(head -c 33554432 /dev/zero | sha256sum | cut -d' ' -f1)

for extra in "" "random-content=true" "percent=60"; do
  # shellcheck disable=SC2086
  a=$(digest size=32M seed=1234 runlength=65536 $extra)
  # shellcheck disable=SC2086
  b=$(digest size=32M seed=1234 runlength=65536 $extra)
  # shellcheck disable=SC2086
  c=$(digest size=32M seed=1235 runlength=65536 $extra)
  [ "$a" = "$b" ] || fail "seed=1234 $extra: two runs differ ($a, $b)"
  [ "$a" != "$c" ] || fail "seed=1234 and seed=1235 $extra give the same disk"
  [ "$a" != "$zero" ] || fail "seed=1234 $extra: the disk is all zeroes"
done
