#!/usr/bin/env bash
# Runs every parse combination under /usr/bin/time -v, RUNS times (round-robin),
# appending one CSV line per run to $OUT. Usage: bench/yaml-libs/bench.sh [DIR] [RUNS]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:-/tmp/yamlbench}
RUNS=${2:-3}
OUT=$DIR/results.csv
LOG=$DIR/bench.log
BIN=$HERE/target/release/yaml-libs-bench
cargo build --release -j1 --manifest-path "$HERE/Cargo.toml" >/dev/null 2>&1 || exit 1
[ -f "$DIR/pods-stream.yaml" ] || "$BIN" gen "$DIR"
echo "label,lib,shape,target,extra,run,exit,parse_secs,wall,maxrss_kb" > "$OUT"

run() { # label run lib shape target [extra...]
  local label=$1 r=$2 lib=$3 shape=$4 target=$5; shift 5
  local tf; tf=$(mktemp)
  /usr/bin/time -v "$BIN" parse "$lib" "$shape" "$target" "$DIR/pods-$shape.yaml" "$@" >"$tf.out" 2>"$tf"
  local rc=$?
  local ps; ps=$(grep -o 'parse_secs=[0-9.]*' "$tf.out" | cut -d= -f2)
  local rss; rss=$(grep 'Maximum resident' "$tf" | awk '{print $NF}')
  local wall; wall=$(grep 'Elapsed (wall' "$tf" | awk '{print $NF}')
  echo "$label,$lib,$shape,$target,$*,$r,$rc,${ps:-NA},$wall,$rss" >> "$OUT"
  { echo "### $label run $r: $lib $shape $target $*"; cat "$tf.out"; grep -v '^\s' "$tf" | grep -v '^Command' ; } >> "$LOG"
  rm -f "$tf" "$tf.out"
}

: > "$LOG"
# 1. serde-saphyr with default Options: record the budget error (once each).
for shape in stream list; do for target in value typed; do
  run saphyr-default 1 saphyr $shape $target
done; done
# 2. main matrix, round-robin.
for r in $(seq 1 "$RUNS"); do
  for lib in yaml norway saphyr; do for shape in stream list; do for target in value typed; do
    if [ $lib = saphyr ]; then run main $r $lib $shape $target --budget none
    else run main $r $lib $shape $target; fi
  done; done; done
  # 3. extras: budget enforcement cost, streaming consumption (drop each doc).
  run extra $r saphyr stream typed --budget large
  run extra $r saphyr list typed --budget large
  run extra $r yaml stream typed --drop
  run extra $r saphyr stream typed --budget none --drop
  run extra $r saphyr-read stream typed --drop
done
echo done >> "$LOG"
