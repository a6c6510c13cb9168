#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Benchmark entry point: serves the same RAM disk from our nbdkit, Debian's
# nbdkit, qemu-nbd and nbd-server in turn and prints one markdown table of
# throughput, IOPS, connect latency, server CPU and memory per connection,
# with extra rows for the file plugin, the nbd plugin as a proxy and TLS,
# and the machine's memcpy and Unix-socket limits in the notes.  Not part
# of `meson test`.
# See bench/README.md for what is measured and how.
# The work is in bench/lib/, one concern a file: common.sh (settings,
# logging, processes, readiness), servers.sh (the main servers), groups.sh
# (the file, proxy and TLS row servers), figures.sh (the figures and the
# measuring loop), resources.sh (server CPU and memory, machine limits)
# and report.sh (the markdown report).
# shellcheck source-path=SCRIPTDIR

set -u -o pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$bench_dir")
lib_dir=$bench_dir/lib

# shellcheck source=lib/common.sh
. "$lib_dir/common.sh"

usage ()
{
  cat <<EOF
usage: bench/run.sh [--tcp] [--append] [--quick] [--servers=LIST]
                    [--repeat=N] [--duration=SECONDS] [--size=SIZE]

  --tcp             serve every server on TCP 127.0.0.1 instead of Unix sockets
  --append          also append the results to bench/RESULTS.md
  --quick           one run per figure, 0.5 s random-I/O runs (a smoke test)
  --servers=LIST    comma-separated subset of: ours,debian,qemu-nbd,nbd-server
  --repeat=N        runs per figure, median reported (default $REPEAT)
  --duration=S      seconds per random-I/O run (default $DURATION)
  --size=SIZE       RAM disk size (default $DISK_SIZE)

Environment: NBDKIT (our server, default build/server/nbdkit), DEBIAN_NBDKIT,
QEMU_NBD, NBD_SERVER, REQUEST_SIZE, CONNECT_COUNT, IDLE_CONNS.
EOF
}

for arg in "$@"; do
  case $arg in
    --tcp) TRANSPORT=tcp ;;
    --append) APPEND=1 ;;
    --quick) REPEAT=1; SEQ_REPEAT=1; DURATION=0.5 ;;
    --servers=*) SERVERS=${arg#*=} ;;
    --repeat=*) REPEAT=${arg#*=}; SEQ_REPEAT=$REPEAT ;;
    --duration=*) DURATION=${arg#*=} ;;
    --size=*) DISK_SIZE=${arg#*=} ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

[[ $TRANSPORT == unix || $TRANSPORT == tcp ]] || die "bad transport: $TRANSPORT"
[[ $REPEAT =~ ^[1-9][0-9]*$ && $SEQ_REPEAT =~ ^[1-9][0-9]*$ ]] ||
  die "bad repeat count: $REPEAT / $SEQ_REPEAT"
[[ $IDLE_CONNS =~ ^[1-9][0-9]*$ ]] || die "bad IDLE_CONNS: $IDLE_CONNS"
for tool in nbdcopy nbdinfo cc pkg-config numfmt timeout ps getconf; do
  command -v "$tool" >/dev/null || die "missing required tool: $tool"
done
pkg-config --exists libnbd || die "libnbd development files (libnbd-dev) missing"
disk_bytes=$(numfmt --from=iec "$DISK_SIZE") || die "bad size: $DISK_SIZE"

# Everything temporary lives here (sockets, configs, logs, helper binaries);
# disk images and the random source live in /dev/shm so they are RAM too.
work_dir=$(mktemp -d /tmp/nbd-bench.XXXXXX) || die "mktemp failed"
shm_dir=$(mktemp -d /dev/shm/nbd-bench.XXXXXX) || die "mktemp in /dev/shm failed"
running_pids=()

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=lib/servers.sh
. "$lib_dir/servers.sh"
# shellcheck source=lib/groups.sh
. "$lib_dir/groups.sh"
# shellcheck source=lib/figures.sh
. "$lib_dir/figures.sh"
# shellcheck source=lib/resources.sh
. "$lib_dir/resources.sh"
# shellcheck source=lib/report.sh
. "$lib_dir/report.sh"

# ---------------------------------------------------------------- main

started=$SECONDS
load_at_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
awk -v l="${load_at_start%% *}" 'BEGIN { exit !(l > 0.5) }' &&
  log "Warning: load average is $load_at_start; other work will skew the results."
build_helpers
measure_limits
make_random_source
baseline=$(timed_copy "$source_file" null: 2>/dev/null) || baseline=fail

IFS=, read -r -a server_list <<<"$SERVERS"
for server in "${server_list[@]}"; do
  case $server in
    ours|debian|qemu-nbd|nbd-server) start_server "$server" ;;
    *) die "unknown server: $server" ;;
  esac
done
if [[ ${#active_servers[@]} -gt 0 ]]; then
  measure_all
else
  log "No server could be started."
fi
for server in "${active_servers[@]}"; do
  stop_pid "${server_pids[$server]}"
  forget_pid "${server_pids[$server]}"
done
log "Finished in $((SECONDS - started)) s."

report=$({ print_header; print_table; })
echo "$report"
if [[ $APPEND == 1 ]]; then
  { echo; echo "$report"; } >>"$bench_dir/RESULTS.md"
  log "Appended to $bench_dir/RESULTS.md"
fi
