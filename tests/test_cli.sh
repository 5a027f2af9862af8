#!/usr/bin/env bash
# Command-line behaviour: help, errors on stderr with non-zero status, a short training run
# that writes a readable results file. Usage: test_cli.sh path/to/lra
set -u
LRA=$1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

ok() { echo "PASS: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }

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

# stderr_has "text" "description": the last command's stderr contains text.
stderr_has() {
    if grep -qF -- "$1" "$TMP/err"; then ok "$2"; else
        bad "$2 (stderr lacks '$1')"
        sed 's/^/    /' "$TMP/err" | head -5
    fi
}

expect 0 "lra --help" "$LRA" --help
for cmd in list train; do expect 0 "lra $cmd --help" "$LRA" "$cmd" --help; done
expect 2 "no command is a usage error" "$LRA"
expect 2 "unknown command" "$LRA" frobnicate
stderr_has "unknown command 'frobnicate'" "unknown command is named"
expect 0 "list attention" "$LRA" list attention
grep -q '^softmax ' "$TMP/out" && ok "softmax is listed" || bad "softmax is listed"
expect 0 "list tasks" "$LRA" list tasks
expect 0 "list presets" "$LRA" list presets
grep -q '^quick ' "$TMP/out" && ok "quick preset is listed" || bad "quick preset is listed"
expect 2 "list needs a subject" "$LRA" list
expect 2 "train without --task" "$LRA" train --attn softmax
stderr_has "--task is required" "missing --task is explained"
expect 2 "unknown variant" "$LRA" train --task synthetic --attn nosuch
stderr_has "unknown attention variant 'nosuch'" "unknown variant is named"
expect 2 "unknown preset" "$LRA" train --task synthetic --attn softmax --preset nosuch
stderr_has "unknown preset 'nosuch'" "unknown preset is named"
expect 2 "unknown config key" "$LRA" train --task synthetic --attn softmax --set lrr=1
stderr_has "unknown option 'lrr'" "unknown key is named"
expect 2 "out-of-range value" "$LRA" train --task synthetic --attn softmax --set heads=0
stderr_has "option 'heads' wants an integer" "range is explained"
expect 1 "unknown plugin option fails the run" "$LRA" train --task synthetic --attn softmax \
    --set attn.nosuch=1 --steps 1 --quiet
stderr_has "unknown option 'nosuch'" "unknown plugin option is named"
expect 1 "inconsistent shape is refused" "$LRA" train --task synthetic --attn softmax \
    --set qkv_dim=10 --set heads=3 --steps 1 --quiet
stderr_has "not divisible by heads" "shape error is explained"

printf 'layers = 1\nbogus_key = 3\n' >"$TMP/p.ini"
expect 2 "bad preset file" "$LRA" train --task synthetic --attn softmax --preset "$TMP/p.ini"
stderr_has "p.ini:2: unknown option 'bogus_key'" "preset error names file and line"

expect 0 "print-config resolves preset and --set in order" "$LRA" train --task synthetic \
    --attn softmax --preset quick --set layers=3 --steps 7 --print-config
grep -q '^layers = 3$' "$TMP/out" && grep -q '^steps = 7$' "$TMP/out" &&
    grep -q '^seq_len = 256$' "$TMP/out" && ok "resolved config" || bad "resolved config"

expect 0 "a short training run" "$LRA" train --task synthetic --attn softmax --preset quick \
    --steps 20 --set seq_len=64 --set task.n_train=640 --set task.n_val=100 \
    --set task.n_test=100 --set eval_every=10 --out "$TMP/run.h5" --quiet
grep -q "test accuracy" "$TMP/out" && ok "run prints its test accuracy" || bad "run summary"
if command -v h5dump >/dev/null; then
    h5dump -a /synthetic/softmax/seed1/status "$TMP/run.h5" 2>/dev/null | grep -q finished &&
        ok "results file records status finished" || bad "results file status"
    h5dump -d /synthetic/softmax/seed1/val/acc "$TMP/run.h5" >/dev/null 2>&1 &&
        ok "results file holds the validation curve" || bad "results validation curve"
else
    bad "h5dump (hdf5-tools) is not installed"
fi
expect 1 "unwritable results path" "$LRA" train --task synthetic --attn softmax --preset quick \
    --steps 1 --set seq_len=16 --set task.n_train=32 --out /nonexistent/dir/r.h5 --quiet
stderr_has "/nonexistent/dir/r.h5" "unwritable path is named"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
