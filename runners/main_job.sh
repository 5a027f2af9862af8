#!/usr/bin/env bash
# The main job: set up, then the quick preset from start to finish on the embedded default data
# (or the full data when ../shared/data or $LRA_DATA has it): every registered attention variant
# on the five LRA tasks, the speed and memory benchmark, and the report (tables printed here,
# figures in plots/quick/). Finished runs are not repeated when the job is run again.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash runners/setup.sh build
lra=build/runners/lra
out=results/quick
start=$(date +%s)

echo "== training: every variant on every task (lra suite --preset quick)"
"$lra" suite --preset quick --tasks listops,text,retrieval,image,pathfinder --attn all \
    --out-dir "$out" --quiet

echo "== speed and memory (lra bench, LRA Table 2 protocol at CPU-sized lengths)"
"$lra" bench --attn all --len 512,1024,2048 --batch 4 --preset quick --repeats 2 --warmup 1 \
    --out "$out/bench.h5" --quiet

echo "== report (lra report)"
"$lra" report --in "$out" --bench "$out/bench.h5" --out plots/quick
echo "main job: $(( $(date +%s) - start )) s; results in $out/, figures and tables in plots/quick/"
