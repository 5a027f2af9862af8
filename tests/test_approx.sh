#!/usr/bin/env bash
# `lra approx`: exact variants have zero error; Performer's and (when it is registered)
# KDEformer's errors fall as their sample sizes grow; the file has the documented groups and
# attributes; a variant that rejects the shape is recorded as skipped; a model kept by
# `lra train --keep-model` is measured through --checkpoint; bad --sweep syntax is a usage error. Nothing about speed is asserted.
# Usage: test_approx.sh path/to/lra source_root build_root
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

# Synthetic sequences at 128 tokens (129 with CLS): every run takes a few seconds.
BASE=(--task synthetic --len 128 --batch 2 --quiet)
OUT=$TMP/approx.h5

# attr GROUP NAME [FILE]: one attribute's value as h5dump prints it (strings without quotes).
attr() {
    h5dump -a "$1/$2" "${3:-$OUT}" 2>/dev/null | sed -n 's/^ *(0): //p' | head -1 | tr -d '"'
}
has_attr() { h5dump -a "$1/$2" "${3:-$OUT}" >/dev/null 2>&1; }
# lt A B: A < B as numbers (NaN and empty are never less).
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && b != "" && a + 0 < b + 0) }'; }

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

# --- exact variants: softmax, flash, and local with one block covering the sequence ---------
expect 0 "exact variants run" "$LRA" approx "${BASE[@]}" --attn softmax,flash,local \
    --set attn.local.block=256 --out "$OUT"
grep -q '^flash ' "$TMP/out" && ok "table is printed" || bad "table is printed"
for v in softmax flash local; do
    for m in frob_mean spectral_mean operator_spectral_mean; do
        val=$(attr "/approx/$v/default" "$m")
        check "$v: $m = $val <= 1e-5" "lt '$val' 1e-5 || [ '$val' = 0 ]"
    done
done

# --- the documented schema -------------------------------------------------------------------
for name in lra_approx_version status groups task len tokens batch heads head_dim preset config \
    source checkpoint power_max_iters power_tol linear_tol code_version cpu blas threads \
    command_line; do
    check "file attribute $name" "has_attr / $name"
done
check "file status finished" "[ '$(attr / status)' = finished ]"
check "groups lists every point" \
    "[ \"\$(h5dump -a /groups '$OUT' | grep -c '/approx/')\" -ge 3 ]"
G=/approx/flash/default
for name in variant option value value_num options status reason task len tokens seeds \
    stochastic exact linear power_iters flops frob_mean frob_std spectral_mean spectral_std \
    operator_spectral_mean operator_spectral_std; do
    check "group attribute $name" "has_attr $G $name"
done

# --- Performer (FAVOR+): error falls with the number of random features ----------------------
expect 0 "performer sweep runs" "$LRA" approx "${BASE[@]}" --attn performer \
    --set attn.performer.kernel=softmax --sweep features=16,64,256 --out "$OUT"
for f in 16 64 256; do
    check "group performer/features=$f" "has_attr /approx/performer/features=$f frob_mean"
done
lo=$(attr /approx/performer/features=16 frob_mean)
hi=$(attr /approx/performer/features=256 frob_mean)
check "performer: error at 256 features ($hi) < at 16 ($lo)" "lt '$hi' '$lo'"
check "performer: 3 seeds" "[ '$(attr /approx/performer/features=16 seeds)' = 3 ]"
f16=$(attr /approx/performer/features=16 flops)
f256=$(attr /approx/performer/features=256 flops)
check "performer: flops grow with features ($f16 < $f256)" "lt '$f16' '$f256'"

# --- KDEformer: error falls with the number of samples (when the variant exists) --------------
if "$LRA" list attention --names | grep -qx kdeformer; then
    expect 0 "kdeformer sweep runs" "$LRA" approx "${BASE[@]}" --attn kdeformer \
        --sweep samples=8,64,512 --out "$OUT"
    for m in frob_mean spectral_mean operator_spectral_mean; do
        lo=$(attr /approx/kdeformer/samples=8 $m)
        hi=$(attr /approx/kdeformer/samples=512 $m)
        check "kdeformer: $m at 512 samples ($hi) < at 8 ($lo)" "lt '$hi' '$lo'"
    done
else
    echo "SKIP: kdeformer is not registered"
fi

# --- a variant that rejects the shape is recorded, the others still run -----------------------
expect 0 "rejected point does not stop the run" "$LRA" approx "${BASE[@]}" --attn nystrom \
    --sweep landmarks=8,512 --out "$OUT"
check "landmarks=512 recorded as skipped" \
    "[ '$(attr /approx/nystrom/landmarks=512 status)' = skipped ]"
check "skipped point has a reason" "[ -n '$(attr /approx/nystrom/landmarks=512 reason)' ]"
check "landmarks=8 measured" "[ '$(attr /approx/nystrom/landmarks=8 status)' = ok ]"

# --- trained weights: a finished run kept with --keep-model is measured through --checkpoint ---
expect 0 "train --keep-model finishes" "$LRA" train --task synthetic --attn softmax \
    --preset quick --steps 12 --set seq_len=128 --set eval_every=6 --quiet \
    --out "$TMP/run.h5" --keep-model
check "the finished run kept FILE.h5.model, not FILE.h5.ckpt" \
    "[ -s '$TMP/run.h5.model' ] && [ ! -e '$TMP/run.h5.ckpt' ]"
expect 0 "approx reads the kept model" "$LRA" approx --task synthetic --len 128 --batch 2 \
    --quiet --attn softmax,performer --checkpoint "$TMP/run.h5.model" --out "$TMP/trained.h5"
check "source is the checkpoint" "[ '$(attr / source "$TMP/trained.h5")' = checkpoint ]"
check "trained performer measured" \
    "[ '$(attr /approx/performer/default status "$TMP/trained.h5")' = ok ]"
val=$(attr /approx/softmax/default frob_mean "$TMP/trained.h5")
check "softmax on trained weights: frob_mean = $val <= 1e-5" "lt '$val' 1e-5 || [ '$val' = 0 ]"
expect 2 "--keep-model without --out is a usage error" "$LRA" train --task synthetic \
    --attn softmax --preset quick --steps 1 --keep-model

# --- usage errors ------------------------------------------------------------------------------
for bad_sweep in features features= =16 features=16,,64 nosuch=1 features=abc; do
    expect 2 "--sweep $bad_sweep is a usage error" "$LRA" approx "${BASE[@]}" \
        --attn performer --sweep "$bad_sweep" --out "$TMP/bad.h5"
    check "--sweep $bad_sweep: message" "grep -q 'lra approx:' '$TMP/err'"
done
expect 2 "unknown variant is a usage error" "$LRA" approx "${BASE[@]}" --attn nosuch
check "no file left by usage errors" "[ ! -e '$TMP/bad.h5' ]"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
