#!/usr/bin/env bash
# Instructions per QMP command of two chardevd builds, counted by
# callgrind (repeatable whatever else the machine does, unlike seconds on
# a shared VM): each build serves N commands (query-chardev, then 4 KiB
# base64 ringbuf-write) and once none; the difference over N is the cost
# of one command on the whole QMP path (framing, checks, the command,
# rendering, the socket), every thread included.
#
#   bash benches/instructions.sh OLD_BINARY NEW_BINARY [N]
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1
new=$2
n=${3:-2000}
total() { # BIN KIND COUNT -> instructions
  local d vp
  d=$(mktemp -d)
  valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" "$1" --threads 1 \
    -qmp "unix:$d/q.sock,server=on,wait=off" >"$d/log" 2>&1 &
  vp=$!
  python3 benches/qmp_drive.py "$d/q.sock" "$3" "$2"
  wait "$vp"
  grep -E "^(summary|totals):" "$d/cg.out" | head -1 | awk '{print $2}'
  rm -rf "$d"
}
per() { # BIN KIND -> instructions per command
  local zero full
  zero=$(total "$1" "$2" 0)
  full=$(total "$1" "$2" "$n")
  echo $(((full - zero) / n))
}
echo "| command (one at a time, --threads 1) | before: instructions | after: instructions | after/before |"
echo "|---|---|---|---|"
for kind in query write; do
  o=$(per "$old" $kind)
  w=$(per "$new" $kind)
  name=$([ $kind = query ] && echo "query-chardev" || echo "ringbuf-write 4 KiB base64")
  printf '| %s | %s | %s | %s |\n' "$name" "$o" "$w" "$(awk -v a="$w" -v b="$o" 'BEGIN { printf "%.3f", a / b }')"
done
