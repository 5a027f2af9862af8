#!/usr/bin/env bash
# Builds every tests/fuzz/fuzz_*.c with clang's libFuzzer, AddressSanitizer and UBSan, and runs
# each for a short time. A crash, a sanitizer report or a leak fails the test.
# Usage: run.sh SOURCE_ROOT BUILD_DIR [SECONDS]   (SECONDS defaults to $LRA_FUZZ_SECONDS or 15)
# Seed inputs come from tests/fixtures/<name>/ when that folder exists (fuzz_<name>.c).
set -u
src=$(cd "$1" && pwd)
build=$2
seconds=${3:-${LRA_FUZZ_SECONDS:-15}}
out=$(cd "$build" && pwd)/fuzz
mkdir -p "$out"
cc=$(command -v clang || command -v clang-14 || true)
if [ -z "$cc" ]; then
    echo "FAIL: clang is not installed (apt-get install clang)"
    echo "0 passed, 1 failed"
    exit 1
fi
# The parsers live in tasks/ and need only these parts of the core.
srcs=("$src"/tasks/*.c "$src"/suite/util.c "$src"/suite/config.c "$src"/suite/options.c)
flags=(-std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -I"$src/suite" -I"$src/tasks" -I"$build")
libs=($(pkg-config --cflags --libs hdf5 libarchive libpng libjpeg) -lm)
passed=0
failed=0
for harness in "$src"/tests/fuzz/fuzz_*.c; do
    [ -e "$harness" ] || continue
    name=$(basename "$harness" .c)
    if ! "$cc" "${flags[@]}" "$harness" "${srcs[@]}" "${libs[@]}" -o "$out/$name" \
        >"$out/$name.build.log" 2>&1; then
        echo "FAIL: $name does not build"; sed 's/^/    /' "$out/$name.build.log" | head -20
        failed=$((failed + 1))
        continue
    fi
    corpus=$out/$name.corpus
    mkdir -p "$corpus"
    seeds=$src/tests/fixtures/${name#fuzz_}
    [ -d "$seeds" ] || seeds=
    # -seed fixes libFuzzer's own randomness so CI runs are repeatable.
    if (cd "$out" && ASAN_OPTIONS=detect_leaks=1 "./$name" -seed=1 -max_total_time="$seconds" \
        -max_len=65536 -timeout=10 -rss_limit_mb=2048 "$corpus" $seeds >"$name.log" 2>&1); then
        runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$out/$name.log")
        echo "PASS: $name (${runs:-?} inputs in ${seconds}s, no crash)"
        passed=$((passed + 1))
    else
        echo "FAIL: $name found a crash:"; grep -E "ERROR|SUMMARY|runtime error" \
            "$out/$name.log" | head -5 | sed 's/^/    /'
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
