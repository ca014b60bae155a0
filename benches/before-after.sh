#!/usr/bin/env bash
# The QMP path of two chardevd builds in one run (B1 and B2 of compare.sh),
# to show a change costs no more than before: each scenario runs on the
# older binary then the newer, alternating, each on a fresh process, with
# the same load client. Prints a markdown table with the ratio new/old.
#
#   bash benches/before-after.sh OLD_BINARY NEW_BINARY [SECONDS] [ROUNDS]
#
# Build the old one from a worktree, e.g.:
#   git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --release --bins --target-dir /tmp/old-target)
#   bash benches/before-after.sh /tmp/old-target/release/chardevd target/release/chardevd
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1
new=$2
secs=${3:-3}
rounds=${4:-3}
cargo build --release --bins --quiet
load=target/release/chardevd-load
dir=$(mktemp -d)
cpid=
cleanup() {
  [ -n "$cpid" ] && kill "$cpid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
wait_sock() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
start() {
  rm -f "$dir/c.sock"
  "$1" --threads 2 -qmp "unix:$dir/c.sock,server=on,wait=off" >"$dir/c.log" 2>&1 &
  cpid=$!
  wait_sock "$dir/c.sock"
}
stopd() { kill "$cpid" 2>/dev/null || true; wait "$cpid" 2>/dev/null || true; cpid=; }
# measure BIN UNIT ARGS...: the median of ROUNDS runs, each on a fresh daemon.
measure() {
  local bin=$1 unit=$2 vals=() v
  shift 2
  for _ in $(seq "$rounds"); do
    start "$bin"
    v=$($load --format kv --seconds "$secs" --socket "$dir/c.sock" "$@" | field "$unit")
    stopd
    vals+=("$v")
  done
  printf '%s\n' "${vals[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
echo "Run of $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) vCPU; ${secs}s per cell, median of $rounds fresh daemons (--threads 2)."
echo
echo "| scenario | metric | before | after | after/before |"
echo "|---|---|---|---|---|"
scenario() { # NAME UNIT ARGS...
  local name=$1 unit=$2 o n
  shift 2
  o=$(measure "$old" "$unit" "$@")
  n=$(measure "$new" "$unit" "$@")
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$unit" "$o" "$n" "$(awk -v a="$n" -v b="$o" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "n/a" }')"
}
scenario "B1 query-chardev, sequential" ops_per_sec --workload query
scenario "B1 query-chardev, 8 in flight" ops_per_sec --workload query --depth 8
scenario "B1 query-chardev, 64 in flight" ops_per_sec --workload query --depth 64
scenario "B1 query-chardev, 64 sessions" ops_per_sec --workload query --sessions 64
scenario "B2 ringbuf-write 4096 B base64" mb_per_sec --workload write --payload 4096
scenario "B2 ringbuf-write 49152 B base64" mb_per_sec --workload write --payload 49152
scenario "B2 ringbuf-write 1 MiB base64" mb_per_sec --workload write --payload 1048576
scenario "B2 ringbuf-write 49152 B, 8 in flight" mb_per_sec --workload write --payload 49152 --depth 8
scenario "B2 ringbuf-write + read 64 KiB base64" mb_per_sec --workload read --payload 65536
