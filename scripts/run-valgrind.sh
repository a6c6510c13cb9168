#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Run a subset of the server tests with every nbdkit process under
# valgrind memcheck, and fail on any invalid access or definite leak.
# Usage: scripts/run-valgrind.sh [BUILDDIR] (default: build).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
builddir=$(cd "${1:-$top/build}" && pwd)
command -v valgrind >/dev/null || { echo "run-valgrind: valgrind is not installed" >&2; exit 1; }

# The subset: the protocol, handshake, data and TLS paths of the server,
# a few filters and plugins.  The whole suite under valgrind takes too
# long for CI.
tests=(
  test-newstyle test-oldstyle test-raw-protocol test-data-integrity
  test-export-list test-structured-reply test-block-status
  test-sparse-read test-flags test-readonly test-concurrent
  test-tls-psk test-tls-x509 test-signals
  test-filter-cow-on-read test-filter-cache-modes
  test-filter-blocksize-unaligned test-plugin-file-data
)

logdir=$(mktemp -d /tmp/nbdkit-valgrind.XXXXXX)
trap 'rm -rf "$logdir"' EXIT
wrapper=$logdir/nbdkit
cat > "$wrapper" <<WRAP
#!/bin/sh
exec valgrind --quiet --log-file=$logdir/vg.%p --leak-check=full \\
  --errors-for-leak-kinds=definite --show-leak-kinds=definite \\
  --track-fds=no --child-silent-after-fork=no \\
  "$builddir/server/nbdkit" "\$@"
WRAP
chmod +x "$wrapper"

failed=()
for t in "${tests[@]}"; do
  printf '%-40s ' "$t"
  if env srcdir="$top/tests" abs_top_srcdir="$top" \
       abs_top_builddir="$builddir" NBDKIT="$wrapper" \
       PATH="$logdir:$builddir/server:/usr/bin:$PATH" LC_ALL=C.UTF-8 \
       timeout 600 "$top/tests/$t.sh" > "$logdir/$t.out" 2>&1; then
    echo ok
  else
    rc=$?
    if [ $rc -eq 77 ]; then echo SKIP; else echo "FAIL ($rc)"; failed+=("$t"); cat "$logdir/$t.out"; fi
  fi
done

# Any memcheck error (invalid read/write, use of uninitialised values,
# bad free) or definite leak in any nbdkit process fails the run.
bad=$(grep -l -E "ERROR SUMMARY: [1-9]|definitely lost: [1-9]|Invalid (read|write|free)" \
        "$logdir"/vg.* 2>/dev/null || :)
if [ -n "$bad" ]; then
  for f in $bad; do echo "=== $f"; cat "$f"; done
  failed+=("memcheck errors in $(echo "$bad" | wc -l) process(es)")
fi
n=$(ls "$logdir"/vg.* 2>/dev/null | wc -l)
if [ ${#failed[@]} -gt 0 ]; then
  echo "run-valgrind: FAIL: ${failed[*]}" >&2
  exit 1
fi
echo "run-valgrind: ok (${#tests[@]} tests, $n nbdkit processes under memcheck)"
