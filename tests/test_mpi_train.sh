#!/usr/bin/env bash
# Data-parallel training (mpirun -np 2 lra train) gives the single-process run with the same
# global batch, up to floating-point reduction order. Usage: test_mpi_train.sh path/to/lra
#
# What is compared, and the tolerance:
#   - `mpirun -np 1` against plain `lra train`: bit-identical (an MPI world of one rank takes
#     the single-process path: no sharding, no reduction).
#   - `mpirun -np 2` against plain `lra train`, global batch 7, so the shards are unequal (3 and
#     4 rows) and the n_r/B weighting of the gradient average matters: every logged training
#     loss and gradient norm within a relative 1e-4, the tested parameters' checksum within a
#     relative 1e-5, and validation and test accuracy within one example. Measured on the
#     development machine: 1e-7 on losses and 4e-10 on the checksum, so the bounds leave room
#     for other BLAS kernels but not for a wrong gradient: the last check runs the same
#     comparison on a run that really differs and requires it to fail.
#   - Dropout and attention dropout are on (0.1): every mask is keyed by the example's place in
#     the global batch (lra_model_set_shard, lra_attn_ctx.seq_id), so each rank draws the masks
#     one process over the whole batch draws for its rows. The run that really differs is the
#     same -np 2 run compared with a single process without dropout.
set -u
LRA=$1
# shellcheck source=tests/mpi_common.sh
. "$(dirname "$0")/mpi_common.sh"
G=/synthetic/softmax/seed1
attr() { h5dump -m '%.17g' -a "$G/$2" "$1" 2>/dev/null | sed -n 's/^ *(0): //p'; }
# One value a line.
curve() { h5dump -m '%.17g' -d "$G/$2" "$1" 2>/dev/null | sed -n '/DATA {/,/}/p' |
    sed 's/([0-9]*)://; s/[{}]//g; s/DATA//' | tr ', ' '\n\n' | grep -v '^$'; }
# close A B TOL: every pair of values within TOL relative (to max(|a|, |b|, 1e-12)); same count.
close() { paste <(echo "$1") <(echo "$2") | awk -v tol="$3" '
    NF != 2 { bad = 1 }
    { d = $1 - $2; d = d < 0 ? -d : d; m = $1 < 0 ? -$1 : $1; n = $2 < 0 ? -$2 : $2;
      m = m > n ? m : n; m = m > 1e-12 ? m : 1e-12; if (d / m > tol) bad = 1; seen++ }
    END { exit (bad || !seen) }'; }
# within A B D: every pair within D absolute.
within() { paste <(echo "$1") <(echo "$2") | awk -v tol="$3" '
    NF != 2 { bad = 1 } { d = $1 - $2; if (d < -tol || d > tol) bad = 1; seen++ }
    END { exit (bad || !seen) }'; }
RUN=(train --task synthetic --attn softmax --preset quick --steps 24 --set seq_len=32
     --set batch=7 --set task.n_train=300 --set task.n_val=60 --set task.n_test=60
     --set eval_every=8 --set log_every=1 --threads 1 --quiet)
DROP=(--set dropout=0.1 --set attn_dropout=0.1)

"$LRA" "${RUN[@]}" "${DROP[@]}" --out "$TMP/single.h5" >/dev/null
"${MPI[@]}" -np 1 "$LRA" "${RUN[@]}" "${DROP[@]}" --out "$TMP/np1.h5" >/dev/null 2>"$TMP/np1.err"
"${MPI[@]}" -np 2 "$LRA" "${RUN[@]}" "${DROP[@]}" --out "$TMP/np2.h5" >/dev/null 2>"$TMP/np2.err"
check "single-process run finishes" '[ "$(attr "$TMP/single.h5" status)" = "\"finished\"" ]'
check "-np 2 run finishes" '[ "$(attr "$TMP/np2.h5" status)" = "\"finished\"" ]' ||
    cat "$TMP/np2.err"
check "-np 2 run records 2 ranks and the allreduce volume" \
    '[ "$(attr "$TMP/np2.h5" mpi_ranks)" = 2 ] && [ "$(attr "$TMP/np2.h5" local_batch)" = 4 ] &&
     awk "BEGIN { exit !($(attr "$TMP/np2.h5" allreduce_floats_per_step) > 1000) }"'
check "-np 1 gives bit-identical training losses" \
    '[ -n "$(curve "$TMP/single.h5" train/loss)" ] &&
     [ "$(curve "$TMP/single.h5" train/loss)" = "$(curve "$TMP/np1.h5" train/loss)" ]'
check "-np 1 gives bit-identical parameters" \
    '[ "$(attr "$TMP/single.h5" param_checksum)" = "$(attr "$TMP/np1.h5" param_checksum)" ]'

# same A B: the comparisons of the header, -np 2 run B against single-process run A.
same() {
    close "$(curve "$1" train/loss)" "$(curve "$2" train/loss)" 1e-4 &&
    close "$(curve "$1" train/grad_norm)" "$(curve "$2" train/grad_norm)" 1e-4 &&
    close "$(attr "$1" param_checksum)" "$(attr "$2" param_checksum)" 1e-5 &&
    within "$(curve "$1" val/acc)" "$(curve "$2" val/acc)" 0.0167 &&
    within "$(attr "$1" test_acc)" "$(attr "$2" test_acc)" 0.0167
}
check "-np 2 has one loss per step" '[ "$(curve "$TMP/np2.h5" train/loss | wc -l)" -eq 24 ]'
check "-np 2 equals the single-process run within the tolerance, dropout on" \
    'same "$TMP/single.h5" "$TMP/np2.h5"'

# The comparison can fail: a single process without dropout really differs.
"$LRA" "${RUN[@]}" --set dropout=0 --set attn_dropout=0 --out "$TMP/single_nodrop.h5" >/dev/null
check "the comparison detects a real difference (the same run without dropout)" \
    '[ "$(attr "$TMP/single_nodrop.h5" status)" = "\"finished\"" ] &&
     ! same "$TMP/single_nodrop.h5" "$TMP/np2.h5"'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
