#!/usr/bin/env bash
# Every scenario of BENCHMARKS.md in one run: chardevd against QEMU 10.0.2,
# socat and the raw socket floor, same client (chardevd-load), same machine.
# Prints markdown tables with the ratios; BENCHMARKS.md holds one run's output.
#
#   bash benches/compare.sh [SECONDS]     # full run (release build)
#   bash benches/compare.sh --smoke       # CI: every scenario for a moment,
#                                         # debug build, checks they all run
#
# Each peer gets its best configuration: QEMU one -qmp socket for one
# session and N sockets only for N sessions (it serves one client per
# socket; more sockets slow every one of them); socat -b 131072. Processes
# are fresh for every memory figure. Needs qemu-system-x86_64 and socat
# (bash .ci/install-deps). Only loopback and unix sockets are used.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=3
count=10000
small=1000
profile=release
if [ "${1:-}" = "--smoke" ]; then
  secs=0.3
  count=200
  small=50
  profile=debug
elif [ -n "${1:-}" ]; then
  secs=$1
fi
if [ $profile = release ]; then
  cargo build --release --bins --quiet
else
  cargo build --bins --quiet
fi
bin=target/$profile
load=$bin/chardevd-load
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

wait_sock() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no socket $1" >&2; exit 1; }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.1f", a / b; else print "n/a" }'; }

# start_qemu N: a fresh QEMU with N -qmp sockets q0..q(N-1); sets qpid.
start_qemu() {
  local n=$1 a=() i
  rm -f "$dir"/q*.sock
  for i in $(seq 0 $((n - 1))); do a+=(-qmp "unix:$dir/q$i.sock,server=on,wait=off"); done
  qemu-system-x86_64 -machine none -nodefaults -display none -S "${a[@]}" 2>/dev/null &
  qpid=$!
  pids+=("$qpid")
  wait_sock "$dir/q$((n - 1)).sock"
}
qsocks() { local i; for i in $(seq 0 $(($1 - 1))); do printf -- '--socket %s ' "$dir/q$i.sock"; done; }

# start_chardevd THREADS [ARGS...]: a fresh chardevd; sets cpid.
start_chardevd() {
  local t=$1
  shift
  rm -f "$dir/c.sock"
  $bin/chardevd --threads "$t" -qmp "unix:$dir/c.sock,server=on,wait=off" "$@" >"$dir/c.log" 2>&1 &
  cpid=$!
  pids+=("$cpid")
  wait_sock "$dir/c.sock"
}

L() { $load --format kv --seconds "$secs" "$@"; }

# row NAME UNIT QEMU_LINE CHARDEVD_LINE
row() {
  local qv cv
  qv=$(echo "$3" | field "$2")
  cv=$(echo "$4" | field "$2")
  printf '| %s | %s | %s | %s | **%s×** | %s / %s |\n' "$1" "$2" "$qv" "$cv" "$(ratio "$cv" "$qv")" \
    "$(echo "$3" | field p99_us)" "$(echo "$4" | field p99_us)"
}

echo "Run of $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo);"
echo "$(qemu-system-x86_64 --version | head -1); $(socat -V 2>/dev/null | sed -n 's/^socat version \([^ ]*\).*/socat \1/p'); ${secs}s per cell."
echo

# --- B1: QMP command rate ---------------------------------------------------
$load --echo-server "$dir/echo.sock" &
epid=$!
pids+=("$epid")
wait_sock "$dir/echo.sock"
floor=$(L --socket "$dir/echo.sock" --workload ping --payload 32)
floor64=$(L --socket "$dir/echo.sock" --workload ping --payload 32 --sessions 64)
stop "$epid"
start_qemu 1
start_chardevd 2
q1=$(L --socket "$dir/q0.sock" --workload query)
c1=$(L --socket "$dir/c.sock" --workload query)
q8=$(L --socket "$dir/q0.sock" --workload query --depth 8)
c8=$(L --socket "$dir/c.sock" --workload query --depth 8)
qd64=$(L --socket "$dir/q0.sock" --workload query --depth 64)
cd64=$(L --socket "$dir/c.sock" --workload query --depth 64)
echo "## B1: QMP command rate (query-chardev)"
echo
echo "| scenario | metric | QEMU 10.0.2 | chardevd | ratio | p99 µs (QEMU / chardevd) |"
echo "|---|---|---|---|---|---|"
row "1 session, sequential (QEMU: 1 socket)" ops_per_sec "$q1" "$c1"
row "1 session, 8 in flight (QEMU: 1 socket)" ops_per_sec "$q8" "$c8"
row "1 session, 64 in flight (QEMU: 1 socket)" ops_per_sec "$qd64" "$cd64"
fo=$(echo "$floor" | field ops_per_sec)
co=$(echo "$c1" | field ops_per_sec)
echo
echo "Raw floor (unix-socket ping-pong of 32 bytes between two processes): $fo round trips/s,"
echo "p50 $(echo "$floor" | field p50_us) µs. Sequential query-chardev: chardevd at $(ratio "$fo" "$co")× the floor's round-trip time"
echo "(p50 $(echo "$c1" | field p50_us) µs), QEMU at $(ratio "$fo" "$(echo "$q1" | field ops_per_sec)")×."
stop "$qpid"
stop "$cpid"
echo
start_qemu 64
q64=$(L $(qsocks 64) --workload query --sessions 64)
stop "$qpid"
echo "| 64 sessions, sequential (QEMU: 64 sockets) | metric | QEMU 10.0.2 | chardevd | ratio | p99 µs (QEMU / chardevd) |"
echo "|---|---|---|---|---|---|"
for t in 1 2; do
  start_chardevd $t
  c64=$(L --socket "$dir/c.sock" --workload query --sessions 64)
  row "chardevd --threads $t" ops_per_sec "$q64" "$c64"
  stop "$cpid"
done
echo
echo "Raw floor with 64 sessions (64 client threads ping-ponging 32 bytes with an echo server's"
echo "64 threads): $(echo "$floor64" | field ops_per_sec) round trips/s. The client's 64 threads share the 2 vCPUs with the server."
echo

# --- B2: large payloads ------------------------------------------------------
start_qemu 1
start_chardevd 2
echo "## B2: large QMP payloads (1 session; QEMU: 1 socket)"
echo
echo "| scenario | metric | QEMU 10.0.2 | chardevd | ratio | p99 µs (QEMU / chardevd) |"
echo "|---|---|---|---|---|---|"
for p in 4096 49152 1048576; do
  q=$(L --socket "$dir/q0.sock" --workload write --payload $p)
  c=$(L --socket "$dir/c.sock" --workload write --payload $p)
  row "ringbuf-write $p B base64" mb_per_sec "$q" "$c"
done
q=$(L --socket "$dir/q0.sock" --workload write --payload 49152 --depth 8)
c=$(L --socket "$dir/c.sock" --workload write --payload 49152 --depth 8)
row "ringbuf-write 49152 B base64, 8 in flight" mb_per_sec "$q" "$c"
q=$(L --socket "$dir/q0.sock" --workload read --payload 65536)
c=$(L --socket "$dir/c.sock" --workload read --payload 65536)
row "ringbuf-write + ringbuf-read 64 KiB base64" mb_per_sec "$q" "$c"
stop "$qpid"
big=$(L --socket "$dir/c.sock" --workload bigread --payload $((64 << 20)))
echo
echo "chardevd alone (QEMU would need minutes to fill the ring): 64 MiB filled by 1 MiB writes then read"
echo "whole as base64: $(echo "$big" | field mb_per_sec) MB/s, $(echo "$big" | field p50_us) µs per fill+read."
stop "$cpid"
echo

# --- latency isolation ---------------------------------------------------------
echo "## Latency isolation (chardevd)"
echo
echo "| chardevd | query-chardev p50 µs | p99 µs | max µs | meanwhile: 64 MiB ring fill+read MB/s |"
echo "|---|---|---|---|---|"
for t in 1 2; do
  start_chardevd $t
  alone=$(L --socket "$dir/c.sock" --workload query)
  L --socket "$dir/c.sock" --workload bigread --payload $((64 << 20)) >"$dir/big.out" &
  bpid=$!
  sleep 0.3
  busy=$(L --socket "$dir/c.sock" --workload query)
  wait $bpid
  printf '| --threads %s, alone | %s | %s | %s | |\n' $t "$(echo "$alone" | field p50_us)" "$(echo "$alone" | field p99_us)" "$(echo "$alone" | field max_us)"
  printf '| --threads %s, beside a 64 MiB reader | %s | %s | %s | %s |\n' $t "$(echo "$busy" | field p50_us)" "$(echo "$busy" | field p99_us)" "$(echo "$busy" | field max_us)" "$(field mb_per_sec <"$dir/big.out")"
  stop "$cpid"
done
echo

# --- B3: relay -------------------------------------------------------------------
# Relay figures swing by +-15% (more for socat) from one 3 s run to the next
# on this VM, so each cell is the median of REPS runs, the three peers
# (socat, chardevd with 1 arbiter, with 2) taking turns, each run starting
# with the next one.
reps=${CHARDEVD_B3_REPS:-3}
[ $profile = debug ] && reps=1
echo "## B3: relay, socket -> bridge -> socket (chardevd) against socat -b 131072"
echo
echo "Each cell: the median of $reps runs, the peers taking turns (each run starting with the next peer)."
echo
echo "| scenario | metric | socat | chardevd --threads 1 | ratio | chardevd --threads 2 | ratio | p99 µs (socat / 1 / 2) |"
echo "|---|---|---|---|---|---|---|---|"
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else print v[int((NR + 1) / 2)] }'; }
relay() { # NAME UNIT WORKLOAD PAYLOAD
  local r k peer sp line
  local sv=() s99=() v1=() p1=() v2=() p2=()
  for r in $(seq $reps); do
    # Each run starts with the next peer: no peer always runs first.
    for k in 0 1 2; do
      peer=$(((r + k) % 3))
      if [ $peer = 0 ]; then
        rm -f "$dir/sa.sock" "$dir/sb.sock"
        socat -b 131072 "UNIX-LISTEN:$dir/sa.sock" "UNIX-LISTEN:$dir/sb.sock" &
        sp=$!
        pids+=("$sp")
        wait_sock "$dir/sa.sock"
        line=$(L --socket "$dir/sa.sock" --peer "unix:$dir/sb.sock" --workload "$3" --payload "$4")
        stop "$sp"
        sv+=("$(echo "$line" | field "$2")")
        s99+=("$(echo "$line" | field p99_us)")
        continue
      fi
      start_chardevd $peer -chardev "socket,id=a,path=$dir/ca.sock,server=on,wait=off" \
        -chardev "socket,id=b,path=$dir/cb.sock,server=on,wait=off" -device bridge,id=br,chardev=a,peer=b
      line=$(L --socket "$dir/ca.sock" --peer "unix:$dir/cb.sock" --workload "$3" --payload "$4")
      stop "$cpid"
      rm -f "$dir/ca.sock" "$dir/cb.sock"
      if [ $peer = 1 ]; then
        v1+=("$(echo "$line" | field "$2")")
        p1+=("$(echo "$line" | field p99_us)")
      else
        v2+=("$(echo "$line" | field "$2")")
        p2+=("$(echo "$line" | field p99_us)")
      fi
    done
  done
  local ms m1 m2
  ms=$(printf '%s\n' "${sv[@]}" | median)
  m1=$(printf '%s\n' "${v1[@]}" | median)
  m2=$(printf '%s\n' "${v2[@]}" | median)
  printf '| %s | %s | %s | %s | **%s×** | %s | **%s×** | %s / %s / %s |\n' "$1" "$2" "$ms" "$m1" "$(ratio "$m1" "$ms")" \
    "$m2" "$(ratio "$m2" "$ms")" "$(printf '%s\n' "${s99[@]}" | median)" "$(printf '%s\n' "${p1[@]}" | median)" \
    "$(printf '%s\n' "${p2[@]}" | median)"
}
relay "stream, 64 KiB writes" mb_per_sec relay-stream 65536
relay "stream, 1-byte writes" mb_per_sec relay-stream 1
relay "round trip, 1 byte" ops_per_sec relay-ping 1
relay "round trip, 64 KiB" ops_per_sec relay-ping 65536
echo

# --- B7: console fan-out ------------------------------------------------------------
fsecs=20
[ $profile = release ] || fsecs=$secs
echo "## B7: console fan-out, a serial line to 64 TCP clients, one of them stopped (SIGSTOP)"
echo
echo "A producer writes 4 KiB chunks into a pty as fast as the server takes them; the server reads"
echo "the pty's slave as its serial line and serves it on TCP to 64 clients: all reading, or 63"
echo "reading and one client process stopped once connected. The readers share this machine's cores"
echo "with the server and the producer, so the figures with no stopped client are the ceiling."
echo "Each run lasts ${fsecs}s (at chardevd's rate a stopped client's socket buffers fill in the"
echo "first second)."
echo "ser2net 4.x: \`max-connections: 64\`, \`chardelay: false\` (its fastest setting here);"
echo "chardevd: \`-chardev serial\` bridged to a socket with \`__org.chardevd_max-clients=64\` (so"
echo "\`overflow=drop\`, 1 MiB queues)."
echo
echo "| server | stopped clients | producer MB/s | slowest reader kB/s | median reader kB/s | peak RSS kB |"
echo "|---|---|---|---|---|---|"
fanout() { # NAME STOPPED then the server's command line (with @TTY@ and @PORT@)
  local name=$1 stopped=$2 port lp sp hwm out
  shift 2
  port=$((20000 + RANDOM % 20000))
  rm -f "$dir/tty"
  $load --format kv --seconds "$fsecs" --workload fanout --pty-link "$dir/tty" --connect "tcp:127.0.0.1:$port" \
    --sessions $((64 - stopped)) --stopped "$stopped" --payload 4096 >"$dir/fan.out" &
  lp=$!
  pids+=("$lp")
  for _ in $(seq 200); do [ -L "$dir/tty" ] && break; sleep 0.05; done
  local args=()
  for a in "$@"; do a=${a//@TTY@/$dir/tty}; args+=("${a//@PORT@/$port}"); done
  "${args[@]}" >"$dir/fan.log" 2>&1 &
  sp=$!
  pids+=("$sp")
  wait "$lp" || { echo "fanout $name failed:" >&2; cat "$dir/fan.log" >&2; }
  hwm=$(awk '/VmHWM/ {print $2}' /proc/$sp/status 2>/dev/null || echo n/a)
  stop "$sp"
  out=$(cat "$dir/fan.out")
  printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$stopped" "$(echo "$out" | field mb_per_sec)" \
    "$(echo "$out" | field reader_min_kb_per_sec)" "$(echo "$out" | field reader_median_kb_per_sec)" "$hwm"
}
if command -v ser2net >/dev/null 2>&1; then
  cat >"$dir/ser2net.yaml" <<'YAML'
%YAML 1.1
---
connection: &fan
  accepter: tcp,127.0.0.1,PORTNUM
  connector: serialdev,TTYPATH,115200n81,local
  options:
    max-connections: 64
    chardelay: false
YAML
  for st in 0 1; do
    fanout "ser2net $(ser2net -v 2>&1 | awk '{print $3}')" $st sh -c "sed -e 's|TTYPATH|@TTY@|; s|PORTNUM|@PORT@|' $dir/ser2net.yaml >$dir/s2n.yaml && exec ser2net -n -c $dir/s2n.yaml -P $dir/s2n.pid"
  done
else
  echo "| ser2net | not installed (bash .ci/install-deps) | | | | |"
fi
for st in 0 1; do for t in 1 2; do
  fanout "chardevd --threads $t" $st $bin/chardevd --threads $t -qmp "unix:$dir/fan-qmp.sock,server=on,wait=off" \
    -chardev "serial,id=tty,path=@TTY@" \
    -chardev "socket,id=con,host=127.0.0.1,port=@PORT@,server=on,wait=off,__org.chardevd_max-clients=64" \
    -device bridge,id=b,chardev=tty,peer=con
done; done
echo

# --- B5: churn and scale -----------------------------------------------------------
echo "## B5: chardev churn, scale and memory (fresh processes)"
echo
echo "| scenario | metric | QEMU 10.0.2 | chardevd | ratio (chardevd better when > 1) |"
echo "|---|---|---|---|---|"
start_qemu 1
start_chardevd 2
q=$(L --socket "$dir/q0.sock" --workload churn)
c=$(L --socket "$dir/c.sock" --workload churn)
printf '| chardev-add + chardev-remove (null), 1 session | ops_per_sec | %s | %s | **%s×** |\n' \
  "$(echo "$q" | field ops_per_sec)" "$(echo "$c" | field ops_per_sec)" "$(ratio "$(echo "$c" | field ops_per_sec)" "$(echo "$q" | field ops_per_sec)")"
stop "$qpid"
stop "$cpid"
scale() { # KIND COUNT
  start_qemu 1
  start_chardevd 2
  local q c
  q=$(L --socket "$dir/q0.sock" --workload scale --kind "$1" --count "$2" --pid "$qpid")
  c=$(L --socket "$dir/c.sock" --workload scale --kind "$1" --count "$2" --pid "$cpid")
  stop "$qpid"
  stop "$cpid"
  local qa ca qr cr
  qa=$(echo "$q" | field adds_per_sec)
  ca=$(echo "$c" | field adds_per_sec)
  printf '| %s %s chardevs added (pipelined 64) | adds/s | %s | %s | **%s×** |\n' "$2" "$1" "$qa" "$ca" "$(ratio "$ca" "$qa")"
  qr=$(echo "$q" | field rss_per_chardev_b)
  cr=$(echo "$c" | field rss_per_chardev_b)
  printf '| RSS per idle %s chardev | bytes | %s | %s | **%s×** |\n' "$1" "$qr" "$cr" "$(ratio "$qr" "$cr")"
  if [ "$1" = null ]; then
    local qo co
    qo=$(echo "$q" | field ops_per_sec)
    co=$(echo "$c" | field ops_per_sec)
    printf '| query-chardev with %s chardevs | ops_per_sec | %s | %s | **%s×** |\n' "$2" "$qo" "$co" "$(ratio "$co" "$qo")"
  fi
}
scale null $count
scale ringbuf $small
scale socket $small
start_qemu 64
start_chardevd 2
q=$(L $(qsocks 64) --workload idle --sessions 64 --pid "$qpid")
c=$(L --socket "$dir/c.sock" --workload idle --sessions 64 --pid "$cpid")
qr=$(echo "$q" | field rss_per_session_b)
cr=$(echo "$c" | field rss_per_session_b)
printf '| RSS per idle QMP session (64 sessions) | bytes | %s | %s | **%s×** |\n' "$qr" "$cr" "$(ratio "$qr" "$cr")"
printf '| peak RSS of the process after the runs above | kB | %s | %s | |\n' \
  "$(awk '/VmHWM/ {print $2}' /proc/$qpid/status)" "$(awk '/VmHWM/ {print $2}' /proc/$cpid/status)"
stop "$qpid"
stop "$cpid"
echo

# --- B6: event fan-out --------------------------------------------------------------
echo "## B6: VSERPORT_CHANGE fan-out (chardevd; QEMU needs a guest for this event)"
echo
echo "The driver toggles every port in one burst (batches of 64 commands), then waits 1.05 s after"
echo "the burst so QEMU's rate limit (one VSERPORT_CHANGE per id per second) never holds an event;"
echo "each toggle is one event to each of the 64 sessions. Latency is arrival minus the event's"
echo "timestamp."
echo
echo "| ports toggled per burst | events per burst | sessions | chardevd | events delivered/s | p50 µs | p99 µs | max µs |"
echo "|---|---|---|---|---|---|---|---|"
for t in 1 2; do
  start_chardevd $t
  e=$(L --socket "$dir/c.sock" --workload events --sessions 64 --count "$small")
  printf '| %s | %s | 64 | --threads %s | %s | %s | %s | %s |\n' "$small" $((small * 64)) $t "$(echo "$e" | field ops_per_sec)" \
    "$(echo "$e" | field p50_us)" "$(echo "$e" | field p99_us)" "$(echo "$e" | field max_us)"
  stop "$cpid"
done
