#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Floods from hostile or unlucky clients (tests/hostile_floods.py):
# thousands of pipelined 32 MiB READs whose replies are never read,
# 64 MiB WRITEs cut off mid-payload, and a minute of connecting and
# disconnecting at a high rate.  After each the server's memory is
# bounded, it holds no leaked fd and another client is still served.

source "$srcdir/functions.sh"
export PYTHONDONTWRITEBYTECODE=1
requires /usr/bin/python3 --version
requires_plugin memory
make_tmpdir

# In the sanitizer build, keep AddressSanitizer's quarantine of freed
# memory small so that RSS measures what the server holds.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
start_nbdkit -P "$tmpdir/pid" -U "$tmpdir/sock" memory 1G
timeout 600 /usr/bin/python3 "$srcdir/hostile_floods.py" "$tmpdir/sock" \
  "$(cat "$tmpdir/pid")" "${FLOOD_SECONDS:-20}" ||
  fail "a flood broke the server's bounds"
kill -0 "$(cat "$tmpdir/pid")" || fail "the server died"
