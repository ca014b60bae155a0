#!/usr/bin/env bash
# Build the fuzz targets with libFuzzer's coverage instrumentation on stable
# Rust (what `cargo fuzz build -s none` does, without needing cargo-fuzz) and
# run one, or all, for a while.
#
#   fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#   fuzz/run.sh all SECONDS          each target in turn (the CI smoke run)
#
# Findings go to fuzz/artifacts/TARGET/, the corpus to fuzz/corpus/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?target or all}
secs=${2:?seconds}
shift 2
host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
cargo build --locked --release --target "$host" --bins
targets=$target
if [ "$target" = all ]; then
    targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v chardevd-fuzz)
fi
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "== fuzz $t for ${secs}s"
    "target/$host/release/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 "$@"
done
