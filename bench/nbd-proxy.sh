#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cost of the nbd plugin as a proxy: our nbdkit's nbd plugin in front
# of our memory plugin, against Debian's nbdkit nbd plugin in front of
# Debian's memory plugin, in the same run.  Each upstream serves a RAM
# disk filled with random data on a Unix socket; each proxy forwards to
# its upstream on another Unix socket (one upstream connection per
# client connection, the plugin's default).  Rows: sequential read
# (nbdcopy to null:) and 4 KiB random reads at queue depth 32 on one
# connection (bench/randio.c), through each proxy and, for reference,
# straight from each upstream.  Prints a markdown table of medians.  Not
# part of `meson test`; nothing here asserts a timing.
#
# usage: bench/nbd-proxy.sh [--append] [--repeat=N] [--size=SIZE]
#                           [--duration=SECONDS]
# Environment: NBDKIT (default build/server/nbdkit if it has the nbd
# plugin, else build-nbd/server/nbdkit), DEBIAN_NBDKIT (default
# /usr/sbin/nbdkit, else /usr/bin/nbdkit), REQUEST_SIZE (nbdcopy
# --request-size, default 262144).

set -u -o pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$bench_dir")
if [[ -z ${NBDKIT:-} ]]; then
  NBDKIT=$repo_dir/build/server/nbdkit
  "$NBDKIT" nbd --dump-plugin >/dev/null 2>&1 ||
    NBDKIT=$repo_dir/build-nbd/server/nbdkit
fi
if [[ -z ${DEBIAN_NBDKIT:-} ]]; then
  DEBIAN_NBDKIT=/usr/sbin/nbdkit
  [[ -x $DEBIAN_NBDKIT ]] || DEBIAN_NBDKIT=/usr/bin/nbdkit
fi
REPEAT=3
DISK_SIZE=1G
DURATION=3
APPEND=0
REQUEST_SIZE=${REQUEST_SIZE:-262144}

for arg in "$@"; do
  case $arg in
    --append) APPEND=1 ;;
    --repeat=*) REPEAT=${arg#*=} ;;
    --size=*) DISK_SIZE=${arg#*=} ;;
    --duration=*) DURATION=${arg#*=} ;;
    -h|--help) sed -n '3,19p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--append] [--repeat=N] [--size=SIZE] [--duration=S]" >&2
       exit 2 ;;
  esac
done

log () { printf '%s\n' "$*" >&2; }
die () { log "nbd-proxy.sh: $*"; exit 1; }

for tool in nbdcopy nbdinfo cc pkg-config numfmt timeout "$NBDKIT" \
            "$DEBIAN_NBDKIT"; do
  command -v "$tool" >/dev/null || die "missing: $tool"
done
pkg-config --exists libnbd || die "libnbd development files (libnbd-dev) missing"
"$NBDKIT" nbd --dump-plugin >/dev/null 2>&1 ||
  die "$NBDKIT has no nbd plugin"
"$DEBIAN_NBDKIT" nbd --dump-plugin >/dev/null 2>&1 ||
  die "$DEBIAN_NBDKIT has no nbd plugin (Debian package nbdkit)"
disk_bytes=$(numfmt --from=iec "$DISK_SIZE") || die "bad size: $DISK_SIZE"

work_dir=$(mktemp -d /tmp/nbd-proxy-bench.XXXXXX) || die "mktemp failed"
pids=()
cleanup ()
{
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null ||
      kill -9 "$pid" 2>/dev/null
  done
  rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck disable=SC2046 # pkg-config output must be word-split
cc -O2 -Wall -Wextra -pthread -o "$work_dir/randio" "$bench_dir/randio.c" \
   $(pkg-config --cflags --libs libnbd) || die "cannot build randio"

# start NAME BINARY ARGS...: a foreground nbdkit on $work_dir/NAME.sock.
start ()
{
  local name=$1 bin=$2 sock=$work_dir/$1.sock pidfile=$work_dir/$1.pid i
  shift 2
  "$bin" -f -P "$pidfile" -U "$sock" "$@" 2>"$work_dir/$name.log" &
  pids+=($!)
  for (( i = 0; i < 100; i++ )); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die "$name did not start: $(cat "$work_dir/$name.log")"
}

uri () { echo "nbd+unix:///?socket=$work_dir/$1.sock"; }

start ours-memory "$NBDKIT" memory "$DISK_SIZE"
start debian-memory "$DEBIAN_NBDKIT" memory "$DISK_SIZE"
start ours-proxy "$NBDKIT" nbd socket="$work_dir/ours-memory.sock"
start debian-proxy "$DEBIAN_NBDKIT" nbd socket="$work_dir/debian-memory.sock"
for s in ours-proxy debian-proxy; do
  [[ $(timeout 30 nbdinfo --size "$(uri "$s")") == "$disk_bytes" ]] ||
    die "$s does not serve the expected size"
done

# Random data in both disks, so that reads carry data and not holes.
log "filling the disks ($DISK_SIZE of random data)"
head -c "$disk_bytes" /dev/urandom >"$work_dir/source" || die "no random source"
for s in ours-memory debian-memory; do
  timeout 600 nbdcopy "$work_dir/source" "$(uri "$s")" ||
    die "could not fill the $s disk"
done
rm -f "$work_dir/source"

# seq_mibs URI: nbdcopy to null: in MiB/s (disk size / wall time).
seq_mibs ()
{
  local t0 t1
  t0=$(date +%s.%N)
  timeout 600 nbdcopy --request-size="$REQUEST_SIZE" "$1" null: ||
    { echo FAIL; return; }
  t1=$(date +%s.%N)
  awk -v b="$disk_bytes" -v a="$t0" -v z="$t1" \
    'BEGIN { printf "%.0f\n", b / 1048576 / (z - a) }'
}

# rand_iops URI: 4 KiB random reads, 32 in flight, one connection.
rand_iops ()
{
  timeout $(( ${DURATION%.*} + 30 )) "$work_dir/randio" -q 32 -c 1 \
    -t "$DURATION" "$1" 2>/dev/null | awk '{ printf "%.0f\n", $1 }' ||
    echo FAIL
}

median ()
{
  sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "n/a") }'
}

# Each repeat measures every cell once, the servers taking turns, so a
# busy spell on the machine touches both columns alike.
declare -A samples
for (( r = 1; r <= REPEAT; r++ )); do
  for test in seq rand; do
    for s in ours-proxy debian-proxy ours-memory debian-memory; do
      if [[ $test == seq ]]; then v=$(seq_mibs "$(uri "$s")")
      else v=$(rand_iops "$(uri "$s")"); fi
      log "run $r: $test $s: $v"
      samples[$test.$s]+="$v "
    done
  done
done

cell () { tr ' ' '\n' <<<"${samples[$1]}" | grep -v '^$' | median; }

row ()
{
  local test=$1 label=$2 kind=$3 o d ratio
  o=$(cell "$test.ours-$kind")
  d=$(cell "$test.debian-$kind")
  ratio=$(awk -v o="$o" -v d="$d" \
    'BEGIN { if (d + 0 > 0 && o + 0 > 0) printf "%.2f", o / d; else print "n/a" }')
  printf '| %s | %s | %s | %s |\n' "$label" "$o" "$d" "$ratio"
}

report ()
{
  printf '## nbd plugin proxy, %s (%s)\n\n' "$(date -u +%Y-%m-%dT%H:%MZ)" \
    "$(uname -n)"
  printf 'nbdkit nbd socket=UPSTREAM in front of nbdkit memory %s (random ' \
    "$DISK_SIZE"
  printf 'data), all on Unix sockets, each column its own nbdkit for both '
  printf 'layers; libnbd %s; median of %s runs; load average at the end: %s.\n\n' \
    "$(pkg-config --modversion libnbd)" "$REPEAT" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '| | ours | Debian nbdkit %s | ours / Debian |\n|---|---|---|---|\n' \
    "$("$DEBIAN_NBDKIT" --version 2>/dev/null | awk '{print $2}')"
  row seq "sequential read through the proxy, MiB/s" proxy
  row rand "4K random read QD32 through the proxy, IOPS" proxy
  row seq "sequential read, upstream directly (reference), MiB/s" memory
  row rand "4K random read QD32, upstream directly (reference), IOPS" memory
  printf '\nnbdcopy --request-size=%s to null: (its default connections and ' \
    "$REQUEST_SIZE"
  printf 'requests); randio -q 32 -c 1 -t %s.\n' "$DURATION"
  for k in "${!samples[@]}"; do
    printf '%s samples: %s\n' "$k" "${samples[$k]}"
  done | sort | sed 's/^/    /'
}

out=$(report)
printf '%s\n' "$out"
if [[ $APPEND == 1 ]]; then
  printf '\n%s\n' "$out" >>"$bench_dir/RESULTS.md"
fi
