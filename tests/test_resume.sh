#!/usr/bin/env bash
# Checkpoint and resume: a run killed with SIGKILL after a checkpoint, then resumed, ends with
# exactly the parameters, validation curve and test accuracy of an uninterrupted run with the
# same seed and threads; the results file stays readable after the kill; SIGINT stops cleanly
# with status "interrupted" and exit 130. Usage: test_resume.sh path/to/lra
set -u
LRA=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0
check() { if eval "$2"; then echo "PASS: $1"; passed=$((passed + 1)); else
    echo "FAIL: $1"; failed=$((failed + 1)); fi; }
G=/synthetic/softmax/seed1
attr() { h5dump -m '%.17g' -a "$G/$2" "$1" 2>/dev/null | sed -n 's/^ *(0): //p'; }
curve() { h5dump -m '%.17g' -d "$G/$2" "$1" 2>/dev/null | sed -n '/DATA/,/}/p'; }
RUN=(train --task synthetic --attn softmax --preset quick --steps 60 --set seq_len=32
     --set task.n_train=500 --set task.n_val=100 --set task.n_test=100 --set eval_every=10
     --set log_every=5 --threads 2 --quiet)

"$LRA" "${RUN[@]}" --out "$TMP/a.h5" >/dev/null
check "uninterrupted run finishes" '[ "$(attr "$TMP/a.h5" status)" = "\"finished\"" ]'

"$LRA" "${RUN[@]}" --out "$TMP/b.h5" >/dev/null &
pid=$!
for _ in $(seq 600); do [ -f "$TMP/b.h5.ckpt" ] && break; sleep 0.05; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
check "a checkpoint was written before the kill" '[ -f "$TMP/b.h5.ckpt" ]'
check "results file readable after SIGKILL" 'h5dump -a "$G/status" "$TMP/b.h5" >/dev/null 2>&1'
"$LRA" "${RUN[@]}" --out "$TMP/b.h5" --resume >/dev/null
check "resumed run finishes" '[ "$(attr "$TMP/b.h5" status)" = "\"finished\"" ]'
check "resumed run really resumed" '[ -n "$(attr "$TMP/b.h5" resumed_at_step)" ]'
check "same parameters as the uninterrupted run" \
    '[ "$(attr "$TMP/a.h5" param_checksum)" = "$(attr "$TMP/b.h5" param_checksum)" ]'
check "same test accuracy" '[ "$(attr "$TMP/a.h5" test_acc)" = "$(attr "$TMP/b.h5" test_acc)" ]'
check "same validation curve" '[ "$(curve "$TMP/a.h5" val/acc)" = "$(curve "$TMP/b.h5" val/acc)" ]'
check "same training-loss curve" \
    '[ "$(curve "$TMP/a.h5" train/loss)" = "$(curve "$TMP/b.h5" train/loss)" ]'
check "checkpoint removed at the end" '[ ! -f "$TMP/b.h5.ckpt" ]'

"$LRA" "${RUN[@]}" --steps 100000 --out "$TMP/c.h5" >/dev/null &
pid=$!
for _ in $(seq 600); do [ -f "$TMP/c.h5.ckpt" ] && break; sleep 0.05; done
kill -INT "$pid"
wait "$pid"
status=$?
check "SIGINT exits with 130" '[ "$status" -eq 130 ]'
check "SIGINT records status interrupted" '[ "$(attr "$TMP/c.h5" status)" = "\"interrupted\"" ]'
check "SIGINT keeps the checkpoint" '[ -f "$TMP/c.h5.ckpt" ]'

"$LRA" "${RUN[@]}" --set lr=0.5 --out "$TMP/b2.h5" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do [ -f "$TMP/b2.h5.ckpt" ] && break; sleep 0.05; done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
"$LRA" "${RUN[@]}" --set lr=0.25 --out "$TMP/b2.h5" --resume >/dev/null 2>"$TMP/err"
check "resume with another configuration is refused" \
    'grep -q "another configuration" "$TMP/err"'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
