#!/usr/bin/env bash
# Compare chardevd with real QEMU 10.0.2 on the same machine, same client
# (target/release/chardevd-load), same byte streams. Prints a markdown table
# with the ratio chardevd/QEMU. Usage: bash benches/compare.sh [SECONDS]
# Needs qemu-system-x86_64 (bash .ci/install-deps). Only loopback/unix sockets.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
cargo build --release --bins --quiet
dir=$(mktemp -d)
trap 'kill $qpid $cpid 2>/dev/null || true; rm -rf "$dir"' EXIT
N=16
qargs=()
for i in $(seq 0 $((N - 1))); do qargs+=(-qmp "unix:$dir/q$i.sock,server=on,wait=off"); done
qemu-system-x86_64 -machine none -nodefaults -display none -S "${qargs[@]}" &
qpid=$!
./target/release/chardevd -qmp "unix:$dir/c.sock,server=on,wait=off" >/dev/null 2>&1 &
cpid=$!
for _ in $(seq 100); do [ -S "$dir/c.sock" ] && [ -S "$dir/q$((N - 1)).sock" ] && break; sleep 0.1; done
qsocks() { for i in $(seq 0 $(($1 - 1))); do printf -- '--socket %s ' "$dir/q$i.sock"; done; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
run() { # name, unit field, load args...
  local name=$1 unit=$2; shift 2
  local sessions=1 a
  for a in "$@"; do :; done
  local q c
  # shellcheck disable=SC2046
  q=$(./target/release/chardevd-load $(qsocks 16) --seconds "$secs" "$@")
  c=$(./target/release/chardevd-load --socket "$dir/c.sock" --seconds "$secs" "$@")
  local qv cv
  qv=$(echo "$q" | field "$unit"); cv=$(echo "$c" | field "$unit")
  printf '| %s | %s | %s | %s | **%.1f×** | %s / %s |\n' "$name" "$unit" "$qv" "$cv" \
    "$(echo "$cv / $qv" | bc -l)" "$(echo "$q" | field p99_us)" "$(echo "$c" | field p99_us)"
}
echo "| workload | metric | QEMU 10.0.2 | chardevd | ratio | p99 µs (QEMU / chardevd) |"
echo "|---|---|---|---|---|---|"
run "B1 query-chardev, 1 session, sequential" ops_per_sec --workload query
run "B1 query-chardev, 1 session, 64 in flight" ops_per_sec --workload query --depth 64
run "B1 query-chardev, 16 sessions, sequential" ops_per_sec --workload query --sessions 16
run "B2 ringbuf-write 48 KiB base64, 1 session" mb_per_sec --workload write --payload 49152
run "B2 ringbuf-write+read 64 KiB base64, 1 session" mb_per_sec --workload read --payload 65536
run "B2 ringbuf-write 1 MiB base64, 1 session" mb_per_sec --workload write --payload 1048576
run "B5 chardev-add + chardev-remove (null), 1 session" ops_per_sec --workload churn
echo
echo "QEMU peak RSS: $(grep VmHWM /proc/$qpid/status | awk '{print $2, $3}'); chardevd peak RSS: $(grep VmHWM /proc/$cpid/status | awk '{print $2, $3}')"
