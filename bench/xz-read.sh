#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Sequential read of a 1 GiB .xz disk image through the xz filter: our
# nbdkit against Debian's nbdkit (its nbdkit-xz-filter), both running in
# the same run over the same file.  nbdcopy reads each export to null:,
# once with the connections nbdcopy chooses (both filters advertise
# multi-conn) and once over a single connection.  Prints a markdown
# table of medians of throughput and of the server's CPU time per GiB
# (the steadier figure on a shared machine).  Not part of `meson test`;
# nothing here asserts a timing.
#
# The image is compressible: in every 16 MiB, 2 MiB of text, 2 MiB of
# random bytes and 12 MiB of zeroes, compressed with
# `xz -T2 --block-size=16MiB`.  Compressing takes minutes, so the .xz
# file is kept in $XZ_BENCH_DIR (default /var/tmp) and reused.
#
# usage: bench/xz-read.sh [--append] [--repeat=N] [--size=SIZE]
# Environment: NBDKIT (default build/server/nbdkit, then
# build-filters-c/server/nbdkit), DEBIAN_NBDKIT (default /usr/sbin/nbdkit,
# else /usr/bin/nbdkit), XZ_BENCH_DIR, REQUEST_SIZE (nbdcopy
# --request-size, default 262144).

set -u -o pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$bench_dir")
if [[ -z ${NBDKIT:-} ]]; then
  NBDKIT=$repo_dir/build/server/nbdkit
  [[ -x $NBDKIT ]] || NBDKIT=$repo_dir/build-filters-c/server/nbdkit
fi
if [[ -z ${DEBIAN_NBDKIT:-} ]]; then
  DEBIAN_NBDKIT=/usr/sbin/nbdkit
  [[ -x $DEBIAN_NBDKIT ]] || DEBIAN_NBDKIT=/usr/bin/nbdkit
fi
XZ_BENCH_DIR=${XZ_BENCH_DIR:-/var/tmp}
REQUEST_SIZE=${REQUEST_SIZE:-262144}
REPEAT=3
DISK_SIZE=1G
APPEND=0

for arg in "$@"; do
  case $arg in
    --append) APPEND=1 ;;
    --repeat=*) REPEAT=${arg#*=} ;;
    --size=*) DISK_SIZE=${arg#*=} ;;
    -h|--help) sed -n '3,22p' "$0"; exit 0 ;;
    *) echo "usage: $0 [--append] [--repeat=N] [--size=SIZE]" >&2; exit 2 ;;
  esac
done

log () { printf '%s\n' "$*" >&2; }
die () { log "xz-read.sh: $*"; exit 1; }

for tool in nbdcopy nbdinfo xz python3 numfmt timeout sha256sum "$NBDKIT"; do
  command -v "$tool" >/dev/null || die "missing: $tool"
done
disk_bytes=$(numfmt --from=iec "$DISK_SIZE") || die "bad size: $DISK_SIZE"
(( disk_bytes % (16 << 20) == 0 )) || die "--size must be a multiple of 16M"

# Is Debian's xz filter there?
debian_note=
if ! command -v "$DEBIAN_NBDKIT" >/dev/null; then
  debian_note="Debian's nbdkit ($DEBIAN_NBDKIT) is not installed."
elif ! "$DEBIAN_NBDKIT" --filter=xz null --dump-plugin >/dev/null 2>&1; then
  debian_note="Debian's nbdkit has no xz filter (package nbdkit-plugin-xz?)."
fi
[[ -z $debian_note ]] || log "$debian_note Measuring ours only."

work_dir=$(mktemp -d /tmp/xz-bench.XXXXXX) || die "mktemp failed"
pids=()
cleanup ()
{
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    timeout 5 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -9 "$pid" 2>/dev/null
  done
  rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The image, made once.
image=$XZ_BENCH_DIR/nbdkit-bench-xz-$DISK_SIZE.img.xz
if [[ ! -s $image || ! -s $image.sha256 ]]; then
  log "making $image (compressing $DISK_SIZE with xz -T2, takes minutes)"
  python3 - "$disk_bytes" <<'PY' |
import random, sys
r = random.Random(1)
size = int(sys.argv[1])
M = 1 << 20
out = sys.stdout.buffer
for chunk in range(size // (16 * M)):
    text = b"".join(b"record %010d checksum %08x\n" % (chunk * 100000 + i,
                                                       r.getrandbits(32))
                    for i in range(2 * M // 36 + 1))[:2 * M]
    out.write(text)
    out.write(r.randbytes(2 * M))
    out.write(bytes(12 * M))
PY
    tee >(sha256sum | cut -d' ' -f1 >"$work_dir/sha256") |
    xz -T2 --block-size=16MiB >"$image.tmp" || die "xz failed"
  mv "$work_dir/sha256" "$image.sha256" && mv "$image.tmp" "$image" ||
    die "could not store the image"
fi
want_sha=$(cat "$image.sha256")
log "$(xz --list "$image" | tail -1)"
cat "$image" >/dev/null             # both servers read it from the page cache

# start NAME BINARY: serve the image through the xz filter.
start ()
{
  local name=$1 bin=$2 sock=$work_dir/$1.sock pidfile=$work_dir/$1.pid i
  "$bin" -f -P "$pidfile" -U "$sock" --filter=xz file "$image" \
    2>"$work_dir/$name.log" &
  pids+=($!)
  for (( i = 0; i < 100; i++ )); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die "$name did not start: $(cat "$work_dir/$name.log")"
}
uri () { echo "nbd+unix:///?socket=$work_dir/$1.sock"; }
server_pid () { cat "$work_dir/$1.pid"; }

# CPU time (user + system) of PID in seconds.
cpu_seconds ()
{
  awk -v t="$(getconf CLK_TCK)" '{ printf "%.3f\n", ($14 + $15) / t }' \
    "/proc/$1/stat"
}

# read_once NAME CONNECTIONS: "MiB/s CPU-s-per-GiB" for one nbdcopy run.
read_once ()
{
  local name=$1 conns=$2 pid t0 t1 c0 c1 opt=()
  pid=$(server_pid "$name")
  [[ $conns = default ]] || opt=(--connections="$conns")
  c0=$(cpu_seconds "$pid")
  t0=$(date +%s.%N)
  timeout 900 nbdcopy --request-size="$REQUEST_SIZE" "${opt[@]}" \
    "$(uri "$name")" null: || { echo "FAIL FAIL"; return; }
  t1=$(date +%s.%N)
  c1=$(cpu_seconds "$pid")
  awk -v b="$disk_bytes" -v a="$t0" -v z="$t1" -v c0="$c0" -v c1="$c1" \
    'BEGIN { printf "%.0f %.2f\n", b / 1048576 / (z - a),
                                    (c1 - c0) / (b / 1073741824) }'
}

median () { sort -n | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : "n/a") }'; }

servers=(ours)
start ours "$NBDKIT"
if [[ -z $debian_note ]]; then
  servers+=(debian)
  start debian "$DEBIAN_NBDKIT"
fi

# Both must serve the image's bytes.
for s in "${servers[@]}"; do
  got=$(nbdcopy "$(uri "$s")" - | sha256sum | cut -d' ' -f1)
  [[ $got = "$want_sha" ]] || die "$s served wrong data ($got, want $want_sha)"
done

declare -A mibs cpu
for conns in default 1; do
  for s in "${servers[@]}"; do
    : >"$work_dir/$s-$conns"
  done
  # Interleave the servers so that background load hits both alike.
  for (( r = 1; r <= REPEAT; r++ )); do
    for s in "${servers[@]}"; do
      read -r m c <<<"$(read_once "$s" "$conns")"
      log "run $r $s connections=$conns: $m MiB/s, $c CPU s/GiB"
      echo "$m $c" >>"$work_dir/$s-$conns"
    done
  done
  for s in "${servers[@]}"; do
    mibs[$s-$conns]=$(cut -d' ' -f1 "$work_dir/$s-$conns" | median)
    cpu[$s-$conns]=$(cut -d' ' -f2 "$work_dir/$s-$conns" | median)
  done
done

ratio ()
{
  awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'
}

report ()
{
  echo "### xz filter: sequential read of a $DISK_SIZE .xz image ($(date -u +%Y-%m-%d))"
  echo
  echo "Image: $(xz --robot --list "$image" |
    awk '$1 == "totals" { printf "%s streams, %s blocks, %d MiB compressed", $2, $3, $4 / 1048576 }'),"
  echo "made with \`xz -T2 --block-size=16MiB\`. nbdcopy --request-size=$REQUEST_SIZE"
  echo "to null:, medians of $REPEAT runs; $(nproc) CPUs, load average"
  echo "$(cut -d' ' -f1-3 /proc/loadavg) at the end."
  echo
  echo "| nbdcopy connections | ours MiB/s | Debian MiB/s | ours/Debian | ours CPU s/GiB | Debian CPU s/GiB |"
  echo "|---|---|---|---|---|---|"
  for conns in default 1; do
    local label=$conns
    [[ $conns = default ]] && label="default (multi-conn)"
    echo "| $label | ${mibs[ours-$conns]} | ${mibs[debian-$conns]:-n/a} |" \
         "$(ratio "${mibs[ours-$conns]}" "${mibs[debian-$conns]:-0}") |" \
         "${cpu[ours-$conns]} | ${cpu[debian-$conns]:-n/a} |"
  done
  [[ -z $debian_note ]] || { echo; echo "$debian_note"; }
  echo
}

report
if (( APPEND )); then
  report >>"$bench_dir/RESULTS.md"
fi
