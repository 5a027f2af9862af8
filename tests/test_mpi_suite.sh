#!/usr/bin/env bash
# Distributed sweep (mpirun -np 2 lra suite): both ranks take cells, every cell finishes; a rank
# killed with SIGKILL mid-sweep loses no finished result, its running child stops cleanly
# instead of training on as an orphan, and rerunning the same command finishes only what was
# left, resuming interrupted runs from their checkpoints; a child `lra train` killed with SIGKILL
# is recorded as failed while the sweep goes on, and a rerun retries it.
# Usage: test_mpi_suite.sh path/to/lra
set -u
LRA=$1
# shellcheck source=tests/mpi_common.sh
. "$(dirname "$0")/mpi_common.sh"
MPI+=(-np 2)
# status FILE: the run's status attribute (the group is /synthetic/<variant>/seed<N>).
status() { local v s; v=$(basename "$(dirname "$1")"); s=$(basename "$1" .h5)
    h5dump -a "/synthetic/$v/$s/status" "$1" 2>/dev/null | sed -n 's/^ *(0): "\(.*\)"/\1/p'; }
n_status() { local n=0 f; for f in $(find "$1" -name '*.h5' 2>/dev/null | sort); do
    [ "$(status "$f")" = "$2" ] && n=$((n + 1)); done; echo $n; }
# pids of running `lra train` processes whose --out is under $1
trainers() { pgrep -f -- "--out $1/" 2>/dev/null; }
SWEEP=(suite --preset quick --tasks synthetic --attn softmax,linear,local --seeds 2
       --set batch=8 --set seq_len=32 --set task.n_train=200 --set task.n_val=32 --set task.n_test=32
       --threads 1 --quiet)
CELLS=6

# 1. A whole sweep over two ranks.
"${MPI[@]}" "$LRA" "${SWEEP[@]}" --set steps=12 --out-dir "$TMP/a" >"$TMP/a.log" 2>&1
rc=$?
check "sweep over 2 ranks exits 0" '[ $rc -eq 0 ]' || tail -20 "$TMP/a.log"
check "every cell finished" '[ "$(n_status "$TMP/a" finished)" -eq $CELLS ]'
check "both ranks ran cells" 'grep -q "(rank 0)" "$TMP/a.log" && grep -q "(rank 1)" "$TMP/a.log"'
check "the summary counts all cells once" \
    'grep -q "lra suite: $CELLS finished, 0 skipped, 0 diverged, 0 failed, 0 done before" "$TMP/a.log"'

# 2. SIGKILL a rank once some cells finished and others are running with a checkpoint. Cells
# are long enough (hundreds of steps, a checkpoint every 5) that the kill lands while later
# cells still run, however fast a step is.
B=$TMP/b
STEPS_B=400
"${MPI[@]}" "$LRA" "${SWEEP[@]}" --set steps=$STEPS_B --set eval_every=5 --out-dir "$B" \
    >"$TMP/b1.log" 2>&1 &
MP=$!
for _ in $(seq 1200); do
    # cheap polling: children print "test accuracy" when they finish
    grep -q "test accuracy" "$TMP/b1.log" && [ -n "$(find "$B" -name '*.ckpt' 2>/dev/null)" ] &&
        break
    sleep 0.05
done
ranks=$(pgrep -P "$MP")
victim=$(echo "$ranks" | tail -n 1)
check "found the two ranks" '[ "$(echo "$ranks" | wc -w)" -eq 2 ]'
kill -9 "$victim"
wait "$MP"
rc=$?
MP=""
check "mpirun reports the killed rank" '[ $rc -ne 0 ]'
before=$(n_status "$B" finished)
check "some cells had finished, some had not" \
    '[ "$before" -ge 1 ] && [ "$before" -lt $CELLS ]'
for _ in $(seq 100); do [ -z "$(trainers "$B")" ] && break; sleep 0.1; done
check "no orphaned lra train keeps running" '[ -z "$(trainers "$B")" ]'
check "the runs that were cut off stopped cleanly (status interrupted)" \
    '[ "$(n_status "$B" interrupted)" -ge 1 ]'
for f in $(find "$B" -name '*.h5' | sort); do
    [ "$(status "$f")" = finished ] && md5sum "$f"
done >"$TMP/finished.md5"
"${MPI[@]}" "$LRA" "${SWEEP[@]}" --set steps=$STEPS_B --set eval_every=5 --out-dir "$B" \
    >"$TMP/b2.log" 2>&1
rc=$?
check "rerun exits 0" '[ $rc -eq 0 ]' || tail -20 "$TMP/b2.log"
check "rerun completes every cell" '[ "$(n_status "$B" finished)" -eq $CELLS ]'
check "finished results were kept, byte for byte" 'md5sum --quiet -c "$TMP/finished.md5"'
check "rerun skipped exactly the finished cells" \
    'grep -q "$((CELLS - before)) finished, 0 skipped, 0 diverged, 0 failed, $before done before" \
     "$TMP/b2.log"'
check "interrupted runs resumed from their checkpoints" 'grep -q "(resuming)" "$TMP/b2.log"'
check "no checkpoints left" '[ -z "$(find "$B" -name "*.ckpt")" ]'

# 3. SIGKILL a child `lra train`: recorded as failed, the sweep goes on; a rerun retries it.
C=$TMP/c
"${MPI[@]}" "$LRA" "${SWEEP[@]}" --set steps=12 --out-dir "$C" \
    >"$TMP/c1.log" 2>&1 &
MP=$!
child=""
for _ in $(seq 1200); do child=$(trainers "$C" | head -n 1); [ -n "$child" ] && break; sleep 0.02; done
kill -9 $child
wait "$MP"
rc=$?
MP=""
check "a killed child fails the sweep (exit 1), the other cells finish" \
    '[ $rc -eq 1 ] && [ "$(n_status "$C" failed)" -eq 1 ] &&
     [ "$(n_status "$C" finished)" -eq $((CELLS - 1)) ]'
"${MPI[@]}" "$LRA" "${SWEEP[@]}" --set steps=12 --out-dir "$C" >"$TMP/c2.log" 2>&1
rc=$?
check "rerun retries the failed cell and completes" \
    '[ $rc -eq 0 ] && [ "$(n_status "$C" finished)" -eq $CELLS ]'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
