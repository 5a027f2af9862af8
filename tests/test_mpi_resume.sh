#!/usr/bin/env bash
# Data-parallel resume: `mpirun -np 2 lra train` stopped with SIGTERM after a checkpoint (Open
# MPI forwards the signal; every rank stops after its step, rank 0 keeps the checkpoint), then
# resumed with `mpirun -np 2 ... --resume`, ends with exactly the parameters, curves and test
# accuracy of an uninterrupted two-rank run: rank 0 reads the checkpoint and broadcasts
# parameters, Adam moments and the data position, so nothing may differ by a single bit.
# The run is 2,000 steps (about 5 s) so that SIGTERM, sent as soon as the first checkpoint
# exists, lands well before the end even on a loaded machine.
# Usage: test_mpi_resume.sh path/to/lra
set -u
LRA=$1
# shellcheck source=tests/mpi_common.sh
. "$(dirname "$0")/mpi_common.sh"
MPI+=(-np 2)
G=/synthetic/softmax/seed1
attr() { h5dump -m '%.17g' -a "$G/$2" "$1" 2>/dev/null | sed -n 's/^ *(0): //p'; }
curve() { h5dump -m '%.17g' -d "$G/$2" "$1" 2>/dev/null | sed -n '/DATA/,/}/p'; }
RUN=(train --task synthetic --attn softmax --preset quick --steps 2000 --set seq_len=32
     --set batch=8 --set task.n_train=500 --set task.n_val=64 --set task.n_test=64
     --set eval_every=10 --set log_every=5 --threads 1 --quiet)

"${MPI[@]}" "$LRA" "${RUN[@]}" --out "$TMP/a.h5" >"$TMP/a.log" 2>&1
check "uninterrupted two-rank run finishes" '[ "$(attr "$TMP/a.h5" status)" = "\"finished\"" ]' ||
    tail -5 "$TMP/a.log"

"${MPI[@]}" "$LRA" "${RUN[@]}" --out "$TMP/b.h5" >"$TMP/b1.log" 2>&1 &
MP=$!
for _ in $(seq 1200); do [ -f "$TMP/b.h5.ckpt" ] && break; sleep 0.05; done
kill -TERM "$MP" 2>/dev/null
wait "$MP"
MP=""
check "a checkpoint was kept after SIGTERM" '[ -f "$TMP/b.h5.ckpt" ]'
check "the stopped run is recorded as interrupted" \
    '[ "$(attr "$TMP/b.h5" status)" = "\"interrupted\"" ]'
"${MPI[@]}" "$LRA" "${RUN[@]}" --out "$TMP/b.h5" --resume >"$TMP/b2.log" 2>&1
check "resumed two-rank run finishes" '[ "$(attr "$TMP/b.h5" status)" = "\"finished\"" ]' ||
    tail -5 "$TMP/b2.log"
check "it really resumed" '[ -n "$(attr "$TMP/b.h5" resumed_at_step)" ]'
check "same parameters as the uninterrupted run" \
    '[ "$(attr "$TMP/a.h5" param_checksum)" = "$(attr "$TMP/b.h5" param_checksum)" ]'
check "same test accuracy" '[ "$(attr "$TMP/a.h5" test_acc)" = "$(attr "$TMP/b.h5" test_acc)" ]'
check "same validation curve" '[ "$(curve "$TMP/a.h5" val/acc)" = "$(curve "$TMP/b.h5" val/acc)" ]'
check "same training-loss curve" \
    '[ "$(curve "$TMP/a.h5" train/loss)" = "$(curve "$TMP/b.h5" train/loss)" ]'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
