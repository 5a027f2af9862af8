#!/usr/bin/env bash
# lra against the PyTorch reference, side by side on this machine (issue 7's measurement).
# Usage: runners/perf_vs_torch.sh [OUT_DIR]   (default results/perf)
#
# Runs, one after the other so they never share the cores:
#   1. tools/torch_reference.py: the `small` model's training step in PyTorch (softmax, elu+1
#      linear, FAVOR+ performer with 256 features) at L = 1024, 2048, 4096, batch 8, 2 threads;
#   2. lra bench on the same shapes for every variant, and performer with the FAVOR+ kernel
#      (PyTorch's performer workload) in its own file;
#   3. lra bench at L = 16384 (Path-X), batch 8, one step, for the peak memory of every variant;
#   4. the comparison table with issue 7's targets (tools/torch_reference.py --compare).
# It takes about 25 minutes. The machine must be otherwise idle: timings under load are
# meaningless, so the script refuses to start when the load average says something else runs
# (LRA_PERF_FORCE=1 overrides).
# PyTorch and h5py are optional tools, never dependencies of the suite; this script installs
# Debian's python3-torch and python3-h5py if they are missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-results/perf}
cd "$root"
bash runners/setup.sh
lra=build/runners/lra
py=/usr/bin/python3 # Debian's interpreter: a venv python does not see python3-torch

if ! $py -c 'import torch, h5py' 2>/dev/null; then
    echo "perf_vs_torch: installing python3-torch and python3-h5py (optional tools)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        python3-torch python3-h5py >/dev/null
fi

# The 1-minute load average lags: give a just-finished job up to five minutes to fade.
for _ in $(seq 30); do
    load=$(cut -d' ' -f1 /proc/loadavg)
    awk -v l="$load" 'BEGIN { exit !(l > 0.7) }' || break
    [ "${LRA_PERF_FORCE:-0}" = 1 ] && break
    sleep 10
done
if [ "${LRA_PERF_FORCE:-0}" != 1 ] && awk -v l="$load" 'BEGIN { exit !(l > 0.7) }'; then
    echo "perf_vs_torch: load average $load: something else is running; wait until the" \
         "machine is idle (or set LRA_PERF_FORCE=1 to measure anyway)" >&2
    exit 1
fi

mkdir -p "$out"
shapes=(--len 1024,2048,4096 --batch 8 --threads 2)
echo "== 1/4 PyTorch reference"
$py tools/torch_reference.py --attn softmax,linear,performer "${shapes[@]}" --repeats 3 \
    --warmup 1 --quiet --out "$out/torch_reference.csv"
echo "== 2/4 lra bench, every variant"
$lra bench --attn all "${shapes[@]}" --preset small --set pool=mean --repeats 3 --warmup 1 \
    --quiet --out "$out/bench.h5"
$lra bench --attn performer "${shapes[@]}" --preset small --set pool=mean \
    --set attn.performer.kernel=softmax --repeats 3 --warmup 1 --quiet --out "$out/bench_favor.h5"
echo "== 3/4 lra bench at Path-X length (16384), one step, for peak memory"
$lra bench --attn all --len 16384 --batch 8 --threads 2 --preset small --set pool=mean \
    --repeats 1 --warmup 0 --max-seconds 900 --quiet --out "$out/pathx.h5"
echo "== 4/4 comparison"
$py tools/torch_reference.py --compare "$out/bench.h5" "$out/bench_favor.h5" \
    "$out/pathx.h5" --csv "$out/torch_reference.csv" | tee "$out/comparison.txt"
