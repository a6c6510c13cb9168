#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Set up a fresh Debian 12 machine, build, and run the whole test suite:
# once in the normal build and once in an address,undefined sanitizer
# build.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/setup.sh"
cd "$top"

# Tests are I/O bound and short: run more than one per core.
jobs=$(( $(nproc) * 2 ))

# After a failed suite, the end of each failed test's output once more,
# last, so that a CI log cut down to its tail still says what failed.
failed_tails ()
{
  python3 - "$1/meson-logs/testlog.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    if t["result"] in ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS"):
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        print("=== %s: %s (exit status %s); its last 40 lines:"
              % (t["name"], t["result"], t.get("returncode")))
        print("\n".join(out.splitlines()[-40:]))
PY
}

suite ()
{
  local dir=$1
  shift
  meson test -C "$dir" "$@" && return 0
  failed_tails "$dir"
  return 1
}

suite build --num-processes "$jobs" --print-errorlogs

# A subset of the server tests with nbdkit under valgrind memcheck.
"$top/scripts/run-valgrind.sh" build

if [ ! -f build-sanitize/build.ninja ]; then
  meson setup build-sanitize --werror \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
    --prefix="$top/build-sanitize/_install"
fi
ninja -C build-sanitize
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
suite build-sanitize --num-processes "$jobs" --print-errorlogs \
  --timeout-multiplier 3

# The installed layout (from the sanitizer build, into its own prefix).
"$top/scripts/check-install.sh" build-sanitize

# The libFuzzer targets, 60 seconds each on their seed corpora.
"$top/scripts/run-fuzz-smoke.sh"
