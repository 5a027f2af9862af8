#!/usr/bin/env bash
# The main job: set up, then train the encoder on the embedded default data with the quick
# preset and write the results under results/quick/. Extra arguments go to `lra train`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash runners/setup.sh build
lra=build/runners/lra
out=results/quick
mkdir -p "$out"
for attn in $("$lra" list attention --names); do
    echo "== synthetic / $attn"
    "$lra" train --task synthetic --attn "$attn" --preset quick \
        --out "$out/synthetic-$attn-seed1.h5" "$@"
done
echo "results: $out/"
