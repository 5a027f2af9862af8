#!/usr/bin/env bash
# The test command of the README and CI: set up, build with warnings as errors, run every test
# suite, and end with the line "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash runners/setup.sh build || exit 1
meson test -C build --print-errorlogs "$@"
status=$?
# Meson's summary counts expected failures (the planted-bug runs) separately: they are passes.
log=build/meson-logs/testlog.txt
count() { sed -n "s/^$1: *\([0-9]*\) *$/\1/p" "$log" | tail -1; }
ok=$(count "Ok"); xfail=$(count "Expected Fail"); fail=$(count "Fail")
xpass=$(count "Unexpected Pass"); timeout=$(count "Timeout")
echo "$(( ${ok:-0} + ${xfail:-0} )) passed, $(( ${fail:-0} + ${xpass:-0} + ${timeout:-0} )) failed"
exit $status
