#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Set up a fresh Debian 12 machine, build, and serve a 1 GiB RAM disk at
# nbd://localhost:10809 in the foreground (Ctrl-C stops it).
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/setup.sh"

cat <<'TXT'

Serving a 1 GiB RAM disk at nbd://localhost:10809 (Ctrl-C to stop).
Connect with, for example:
  nbdinfo nbd://localhost:10809
  qemu-img info nbd://localhost:10809
  nbdsh -u nbd://localhost:10809 -c 'print(h.get_size())'

TXT
exec "$top/build/server/nbdkit" --foreground --port 10809 memory 1G
