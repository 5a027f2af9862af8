#!/usr/bin/env bash
# `lra bench`: the benchmark file has every group and attribute the schema promises, ratios to
# softmax, skipped and timed-out configurations recorded without stopping the others, merging
# across invocations, usage errors. Nothing about speed is asserted: the machine may be loaded.
# Usage: test_bench.sh path/to/lra source_root build_root
set -u
LRA=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

ok() { echo "PASS: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

if ! command -v h5dump >/dev/null; then
    echo "SKIP: h5dump (hdf5-tools) is not installed"
    echo "0 passed, 0 failed"
    exit 77
fi

# A model small enough that every configuration takes well under a second.
TINY=(--batch 2 --repeats 2 --warmup 1 --set layers=1 --set emb_dim=16 --set qkv_dim=16
      --set mlp_dim=32 --quiet)
OUT=$TMP/bench.h5

# attr GROUP NAME: the value of one attribute, as h5dump prints it (strings without quotes).
attr() {
    h5dump -a "$1/$2" "$OUT" 2>/dev/null | sed -n 's/^ *(0): //p' | head -1 | tr -d '"'
}
has_attr() { h5dump -a "$1/$2" "$OUT" >/dev/null 2>&1; }
# configs: the group names in the file attribute /configs, one a line.
configs() { h5dump -a /configs "$OUT" | grep -o '/bench/[^" ]*'; }

# expect STATUS "description" command...: runs the command, checks its exit status.
expect() {
    local want=$1 what=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local got=$?
    if [ "$got" -eq "$want" ]; then ok "$what"; else
        bad "$what (exit $got, wanted $want)"
        sed 's/^/    /' "$TMP/err" | head -5
    fi
}
stderr_has() {
    if grep -qF -- "$1" "$TMP/err"; then ok "$2"; else bad "$2 (stderr lacks '$1')"; fi
}

# linformer with init=identity needs k = max_len: it refuses these lengths, the others run.
expect 0 "tiny benchmark runs" "$LRA" bench --attn softmax,linear,linformer --len 64,128 \
    "${TINY[@]}" --set attn.linformer.init=identity --out "$OUT"
grep -q '^softmax ' "$TMP/out" && grep -q 'steps/s' "$TMP/out" && ok "table is printed" ||
    bad "table is printed"

for name in cpu blas threads code_version compiler preset config sgemm_gflops start_time \
    end_time command_line configs status; do
    check "file attribute $name" "has_attr / $name"
done
check "file status is finished" '[ "$(attr / status)" = finished ]'

NUMS="length batch repeats warmup threads peak_rss_bytes baseline_rss_bytes config_rss_bytes
      flops_per_step steps_per_s_median steps_per_s_min steps_per_s_max step_seconds_median
      useful_gflops fraction_of_ceiling speed_ratio_to_softmax memory_ratio_to_softmax"
for v in softmax linear; do
    for L in 64 128; do
        G=/bench/train/$v/L$L
        check "$G is ok" '[ "$(attr $G status)" = ok ]'
        missing=""
        for name in $NUMS variant mode reason config measured_at; do
            has_attr "$G" "$name" || missing="$missing $name"
        done
        check "$G has every attribute${missing:+ (missing:$missing)}" '[ -z "$missing" ]'
        check "$G holds 2 step times" \
            'h5ls "$OUT$G/step_seconds" 2>/dev/null | grep -q "{2}"'
        check "$G peak RSS > 0" 'awk -v x="$(attr $G peak_rss_bytes)" "BEGIN{exit !(x > 0)}"'
        check "$G lists itself in /configs" 'configs | grep -qx "$G"'
    done
done
for L in 64 128; do
    G=/bench/train/softmax/L$L
    check "softmax speed ratio is 1 at $L" '[ "$(attr $G speed_ratio_to_softmax)" = 1 ]'
    check "softmax memory ratio is 1 at $L" '[ "$(attr $G memory_ratio_to_softmax)" = 1 ]'
    G=/bench/train/linformer/L$L
    check "linformer is skipped at $L" '[ "$(attr $G status)" = skipped ]'
    check "the skip says why" 'attr $G reason | grep -q "init=identity"'
    check "no speed for a skipped config" '! has_attr $G steps_per_s_median'
done

# A second invocation with another length and mode adds groups and keeps the earlier ones.
expect 0 "second run merges" "$LRA" bench --attn softmax --len 96 --mode infer "${TINY[@]}" \
    --out "$OUT"
check "new group written" '[ "$(attr /bench/infer/softmax/L96 status)" = ok ]'
check "earlier groups kept" '[ "$(attr /bench/train/linear/L128 status)" = ok ]'
check "earlier ratios kept" 'has_attr /bench/train/linear/L64 speed_ratio_to_softmax'
check "/configs lists old and new" \
    '[ "$(configs | sort -u | wc -l)" -eq 7 ]'

# A configuration over its time limit is recorded as timeout and the sweep goes on.
expect 0 "timeout is recorded" "$LRA" bench --attn softmax,linear --len 64 --batch 1 \
    --repeats 1000 --max-seconds 0.001 --quiet --set layers=1 --out "$TMP/t.h5"
OUT=$TMP/t.h5
check "both configs recorded as timeout" '[ "$(attr /bench/train/softmax/L64 status)" = timeout ] &&
    [ "$(attr /bench/train/linear/L64 status)" = timeout ]'

expect 2 "bad length" "$LRA" bench --len 0
stderr_has "--len" "bad length names --len"
expect 2 "unknown variant" "$LRA" bench --attn nosuch
stderr_has "unknown attention variant 'nosuch'" "unknown variant is named"
expect 2 "bad mode" "$LRA" bench --mode fast
stderr_has "--mode" "bad mode names --mode"
expect 2 "bad batch" "$LRA" bench --batch x
stderr_has "--batch" "bad batch names --batch"
expect 2 "bad max-seconds" "$LRA" bench --max-seconds -1
stderr_has "--max-seconds" "bad max-seconds names --max-seconds"
expect 2 "unknown key" "$LRA" bench --set nokey=1
stderr_has "--set nokey=1" "unknown key names --set"
expect 2 "unknown preset" "$LRA" bench --preset nosuch
stderr_has "--preset" "unknown preset names --preset"
echo "not hdf5" >"$TMP/text.h5"
expect 2 "an existing non-HDF5 --out is refused" "$LRA" bench --attn softmax --len 64 \
    --out "$TMP/text.h5"
check "and left untouched" '[ "$(cat "$TMP/text.h5")" = "not hdf5" ]'
expect 2 "unexpected argument" "$LRA" bench --frobnicate
stderr_has "--frobnicate" "unexpected argument is named"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
