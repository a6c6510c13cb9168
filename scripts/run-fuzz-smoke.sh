#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Build the libFuzzer targets (tests/fuzz/README.md) in build-fuzz with
# clang and run each for FUZZ_SECONDS (default 60, as issue 10 asks) on its seed corpus.
# Fails on any crash, leak, timeout or sanitizer report.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
seconds=${FUZZ_SECONDS:-60}
targets="fuzz-options fuzz-transmission fuzz-filters"

if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzzing=true -Db_lundef=false
fi
# Only what the targets load: the memory plugin and five filters.
ninja -C build-fuzz \
  $(for t in $targets; do echo "tests/fuzz/$t"; done) \
  plugins/memory/nbdkit-memory-plugin.so \
  $(for f in blocksize cache cow partition xz; do
      echo "filters/$f/nbdkit-$f-filter.so"; done)

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for t in $targets; do
  echo "== $t: ${seconds}s"
  mkdir "$work/$t"
  # New inputs go to the scratch directory, never into the seeds.
  if ! build-fuzz/tests/fuzz/$t -max_total_time="$seconds" -timeout=30 \
       -rss_limit_mb=4096 -artifact_prefix="$work/" -print_final_stats=1 \
       "$work/$t" "tests/fuzz/corpus/$t" > "$work/$t.log" 2>&1; then
    tail -n 60 "$work/$t.log"
    echo "$t: FAILED (the input is in $work, kept)" >&2
    trap - EXIT
    exit 1
  fi
  grep -E '^(#[0-9]+[[:space:]]+DONE|stat::)' "$work/$t.log" || true
done
