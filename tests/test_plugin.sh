#!/usr/bin/env bash
# test_plugin.sh — attention variants added without editing the core (attention/README.md).
# Usage: test_plugin.sh path/to/lra SOURCE_ROOT BUILD_ROOT
#
# 1. In the tree: a copy of the source tree gets attention/myattn.c (softmax.c with its prefix
#    renamed, README step 1), is configured and built once (only runners/lra and
#    tests/test_attn), and lists myattn. A second file, attention/myattn2.c (the example plugin
#    tests/plugin/myattn.c renamed), is then dropped in and a plain `ninja` must pick it up:
#    attention/watch_dir.py makes ninja re-run meson when a file is added to attention/.
# 2. Out of the tree: `meson install --destdir` from BUILD_ROOT, then the example plugin
#    tests/plugin/myattn.c is compiled against the installed headers with the flags of the
#    installed pkg-config file, exactly as attention/README.md tells a researcher to:
#        cc $(pkg-config --variable=plugin_cflags lra-plugin) \
#           $(pkg-config --cflags lra-plugin) -shared -o myattn.so myattn.c -lm
#    (here with PKG_CONFIG_SYSROOT_DIR=<destdir>, because the files are not at their prefix).
#    The INSTALLED lra lists it with --plugin and via LRA_PLUGIN_PATH, trains with it, and the
#    generic harness (BUILD_ROOT/tests/test_attn) passes on it.
# 3. Refusals: ABI version 999, a plugin named softmax, the same plugin twice, a .so built
#    without -DLRA_PLUGIN_SHARED, a path that does not exist, a file that is no shared object.
#
# LRA_TEST_PLUGIN_INTREE=0 skips part 1 (the only slow part: one configure and build, about a
# minute on two cores). Output: PASS/FAIL lines, then "N passed, N failed"; exit 1 on failure.
set -u
LRA=$1
SRC=$(cd "$2" && pwd)
BUILD=$(cd "$3" && pwd)
CC=${CC:-cc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

ok() { echo "PASS: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }

# expect STATUS "description" command...: runs the command, checks its exit status. STATUS "!0"
# accepts any failure.
expect() {
    local want=$1 what=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local got=$?
    if [ "$want" = "!0" ] && [ "$got" -ne 0 ] || [ "$want" = "$got" ]; then ok "$what"; else
        bad "$what (exit $got, wanted $want)"
        sed 's/^/    /' "$TMP/err" | head -5
        tail -3 "$TMP/out" | sed 's/^/    /'
    fi
}

# has FILE "text" "description": the file (out or err of the last command) contains text.
has() {
    if grep -qF -- "$2" "$TMP/$1"; then ok "$3"; else
        bad "$3 ($1 lacks '$2')"
        sed 's/^/    /' "$TMP/$1" | head -5
    fi
}

# The variant lines of `lra list attention` output: "name  help [plugin]".
listed() { grep -q "^$1 .*$2\$" "$TMP/out"; }

# ---- 1. In the tree: drop a file into attention/ and rebuild ------------------------------
if [ "${LRA_TEST_PLUGIN_INTREE:-1}" != 0 ]; then
    mkdir "$TMP/src"
    if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # Tracked and untracked files as they are in the working tree, minus ignored ones
        # (build directories); a tracked file deleted in the working tree is skipped.
        (cd "$SRC" && git ls-files -co --exclude-standard -z |
            xargs -0 cp --parents -t "$TMP/src" 2>/dev/null)
    else
        excl=(--exclude=./.git)
        for d in "$SRC"/*/; do
            [ -d "$d/meson-private" ] && excl+=("--exclude=./$(basename "$d")")
        done
        tar -C "$SRC" "${excl[@]}" -cf - . | tar -C "$TMP/src" -xf -
    fi
    [ -f "$TMP/src/meson.build" ] && [ -f "$TMP/src/attention/softmax.c" ] &&
        ok "source tree copied" || bad "source tree copied"

    # README step 1: copy the template and rename its prefix.
    sed 's/softmax_/myattn_/g; s/lra_attn_softmax/lra_attn_myattn/g; s/"softmax"/"myattn"/' \
        "$TMP/src/attention/softmax.c" >"$TMP/src/attention/myattn.c"
    # README step 2: build. -O0 (buildtype plain) keeps this quick; only what the test runs.
    expect 0 "configure the copy with attention/myattn.c" \
        meson setup "$TMP/bld" "$TMP/src" --buildtype=plain
    expect 0 "build the copy" ninja -C "$TMP/bld" -j2 runners/lra tests/test_attn
    TREE_LRA=$TMP/bld/runners/lra
    expect 0 "in-tree: lra list attention" "$TREE_LRA" list attention
    listed myattn "" && ok "dropped-in myattn is listed" || bad "dropped-in myattn is listed"
    listed myattn "\[plugin\]" && bad "built-in myattn is not marked [plugin]" ||
        ok "built-in myattn is not marked [plugin]"

    # A second file, dropped into the configured tree: a plain ninja must notice it.
    sed 's/myattn/myattn2/g' "$SRC/tests/plugin/myattn.c" >"$TMP/src/attention/myattn2.c"
    expect 0 "ninja after dropping attention/myattn2.c (no manual reconfigure)" \
        ninja -C "$TMP/bld" -j2 runners/lra tests/test_attn
    has out "attention_myattn2.c" "ninja compiled the new file"
    expect 0 "in-tree: lra list attention again" "$TREE_LRA" list attention --names
    grep -qx myattn2 "$TMP/out" && ok "myattn2 is listed after a plain ninja" ||
        bad "myattn2 is listed after a plain ninja"
    grep -qx myattn "$TMP/out" && ok "myattn is still listed" || bad "myattn is still listed"

    # README step 3: the generic harness on the new variants.
    expect 0 "in-tree: generic harness on myattn and myattn2" \
        env LRA_ATTN_ONLY=myattn,myattn2 "$TMP/bld/tests/test_attn"
    has out "myattn2 t=2: gradient check params" "harness checked myattn2's temperature gradient"
    has out "myattn t=2: matches double reference" "harness compared myattn with the reference"
    expect 0 "in-tree: train with myattn2" "$TREE_LRA" train --task synthetic --attn myattn2 \
        --preset quick --steps 2 --set seq_len=32 --set task.n_train=64 --set task.n_val=32 \
        --set task.n_test=32 --set eval_every=2 --quiet
    has out "test accuracy" "in-tree training run finishes"
else
    echo "SKIP: in-tree drop-in (LRA_TEST_PLUGIN_INTREE=0)"
fi

# ---- 2. Out of the tree: install, compile one C file, load it -----------------------------
expect 0 "meson install --destdir" meson install -C "$BUILD" --no-rebuild --destdir "$TMP/inst"
ILRA=$(find "$TMP/inst" -path '*/bin/lra' -type f | head -1)
PC=$(find "$TMP/inst" -name lra-plugin.pc | head -1)
[ -x "$ILRA" ] && ok "lra is installed" || { bad "lra is installed"; ILRA=$LRA; }
if [ -z "$PC" ]; then
    bad "lra-plugin.pc is installed"
    echo "$passed passed, $failed failed"
    exit 1
fi
ok "lra-plugin.pc is installed"
INC=$(dirname "$(find "$TMP/inst" -path '*/lra/lra_attention.h' | head -1)")
for h in lra_attention.h lra_rng.h attn_blocks.h attn_kernel.h; do
    [ -f "$INC/$h" ] && ok "header $h is installed" || bad "header $h is installed"
done

# Only the installed .pc file, with its paths moved under the destdir.
pc() {
    PKG_CONFIG_LIBDIR=$(dirname "$PC") PKG_CONFIG_PATH='' PKG_CONFIG_SYSROOT_DIR=$TMP/inst \
        pkg-config "$@"
}
CFLAGS_PC=$(pc --cflags lra-plugin)
PLUGIN_CFLAGS=$(pc --variable=plugin_cflags lra-plugin)
[ "$CFLAGS_PC" = "-I$INC " ] || [ "$CFLAGS_PC" = "-I$INC" ] &&
    ok "pkg-config --cflags names the installed include dir" ||
    bad "pkg-config --cflags names the installed include dir (got '$CFLAGS_PC', wanted -I$INC)"
for f in -fPIC -fvisibility=hidden -DLRA_PLUGIN_SHARED; do
    case " $PLUGIN_CFLAGS " in
    *" $f "*) ok "pkg-config variable plugin_cflags has $f" ;;
    *) bad "pkg-config variable plugin_cflags has $f (got '$PLUGIN_CFLAGS')" ;;
    esac
done

# build OUT.so SOURCE [extra flags]: the README's compile line, warnings on.
build() {
    local out=$1 src=$2
    shift 2
    # shellcheck disable=SC2086  # the flags are lists of words
    "$CC" $PLUGIN_CFLAGS $CFLAGS_PC -Wall -Wextra -Wpedantic "$@" -shared -o "$out" "$src" -lm
}
expect 0 "compile tests/plugin/myattn.c into myattn.so" build "$TMP/myattn.so" \
    "$SRC/tests/plugin/myattn.c"
[ -s "$TMP/err" ] && bad "myattn.so compiles without warnings" ||
    ok "myattn.so compiles without warnings"
syms=$(nm -D --defined-only "$TMP/myattn.so" 2>/dev/null | awk '{print $3}' | grep -v '^_' |
    tr '\n' ' ')
[ "$syms" = "lra_plugin_descriptor " ] && ok "myattn.so exports only lra_plugin_descriptor" ||
    bad "myattn.so exports only lra_plugin_descriptor (exports: $syms)"

expect 0 "installed lra list attention --plugin myattn.so" \
    "$ILRA" list attention --plugin "$TMP/myattn.so"
listed myattn "\[plugin\]" && ok "myattn is listed with [plugin]" ||
    bad "myattn is listed with [plugin]"
listed softmax "" && ok "built-ins are still listed" || bad "built-ins are still listed"
expect 0 "list --verbose shows the plugin's options" \
    "$ILRA" list attention --verbose --plugin "$TMP/myattn.so"
has out "attn.init_temp" "the plugin's option table is listed"

# The same with the standalone Makefile shipped next to the example.
if command -v make >/dev/null; then
    mkdir "$TMP/mk"
    expect 0 "make -f tests/plugin/Makefile builds myattn.so" env \
        PKG_CONFIG_LIBDIR="$(dirname "$PC")" PKG_CONFIG_PATH='' PKG_CONFIG_SYSROOT_DIR="$TMP/inst" \
        make -C "$TMP/mk" -f "$SRC/tests/plugin/Makefile"
    expect 0 "the Makefile's myattn.so loads" "$ILRA" list attention --plugin "$TMP/mk/myattn.so"
    listed myattn "\[plugin\]" && ok "the Makefile's plugin is listed" ||
        bad "the Makefile's plugin is listed"
fi

# The installed engine headers compile, and the engines' functions resolve against lra.
cat >"$TMP/engines.c" <<'EOF'
#include "attn_blocks.h"
#include "attn_kernel.h"
#include "lra_attention.h"
static void sizes(const lra_attn_ctx *c, lra_attn_sizes *o)
{
    lra_kernel_spec sp = {.T = c->shape.len, .r = 4, .dv = c->shape.dim};
    *o = (lra_attn_sizes){.n_scratch = lra_kernel_work_floats(&sp)};
}
static double flops(const lra_attn_ctx *c) { return lra_blocks_threads(c); }
static int init(lra_attn_ctx *c, char *e, size_t n) { (void)c, (void)e, (void)n; return 0; }
static void fwd(lra_attn_ctx *c, const float *q, const float *k, const float *v, float *o)
{ (void)c, (void)q, (void)k, (void)v, (void)o; }
static void bwd(lra_attn_ctx *c, const float *q, const float *k, const float *v, const float *o,
                const float *d, float *dq, float *dk, float *dv)
{ (void)c, (void)q, (void)k, (void)v, (void)o, (void)d, (void)dq, (void)dk, (void)dv; }
static const lra_attention engines = {.abi_version = LRA_ATTN_ABI_VERSION, .name = "engines",
    .help = "load test", .sizes = sizes, .flops = flops, .init = init, .forward = fwd,
    .backward = bwd};
LRA_ATTENTION_EXPORT(engines)
EOF
expect 0 "compile a plugin that calls both engines" build "$TMP/engines.so" "$TMP/engines.c"
expect 0 "it loads into the installed lra" "$ILRA" list attention --plugin "$TMP/engines.so"
listed engines "\[plugin\]" && ok "the engine plugin is listed" || bad "the engine plugin is listed"

# A directory in LRA_PLUGIN_PATH: every .so in it is loaded.
mkdir "$TMP/plugdir"
cp "$TMP/myattn.so" "$TMP/plugdir/"
sed 's/myattn/myattn3/g' "$SRC/tests/plugin/myattn.c" >"$TMP/myattn3.c"
expect 0 "compile a second plugin, myattn3.so" build "$TMP/plugdir/myattn3.so" "$TMP/myattn3.c"
echo "not a plugin" >"$TMP/plugdir/README.txt"
expect 0 "LRA_PLUGIN_PATH=dir lra list attention" \
    env LRA_PLUGIN_PATH="$TMP/plugdir" "$ILRA" list attention
listed myattn "\[plugin\]" && listed myattn3 "\[plugin\]" &&
    ok "every .so of the directory is loaded" || bad "every .so of the directory is loaded"

expect 0 "train with the plugin" "$ILRA" train --task synthetic --attn myattn \
    --plugin "$TMP/myattn.so" --preset quick --steps 3 --set seq_len=32 --set task.n_train=64 \
    --set task.n_val=32 --set task.n_test=32 --set eval_every=3 --set attn.init_temp=2 \
    --out "$TMP/run.h5" --quiet
has out "test accuracy" "the plugin's training run finishes"
if command -v h5dump >/dev/null; then
    h5dump -a /synthetic/myattn/seed1/status "$TMP/run.h5" 2>/dev/null | grep -q finished &&
        ok "results file records the plugin's run" || bad "results file records the plugin's run"
fi
expect 0 "train with the plugin from LRA_PLUGIN_PATH" env LRA_PLUGIN_PATH="$TMP/plugdir" \
    "$ILRA" train --task synthetic --attn myattn3 --preset quick --steps 1 --set seq_len=32 \
    --set task.n_train=32 --set task.n_val=32 --set task.n_test=32 --quiet
expect 2 "without the plugin, myattn is an unknown variant" "$ILRA" train --task synthetic \
    --attn myattn --steps 1 --quiet

# The generic harness on the plugin (LRA_ATTN_ONLY: the built-ins have their own test).
if [ -x "$BUILD/tests/test_attn" ]; then
    expect 0 "generic harness passes on myattn.so" env LRA_PLUGIN_PATH="$TMP/myattn.so" \
        LRA_ATTN_ONLY=myattn "$BUILD/tests/test_attn"
    has out "PASS myattn: descriptor valid" "harness validated the plugin's descriptor"
    has out "PASS myattn t=2: gradient check params (dropout 0.25)" \
        "harness checked the plugin's parameter gradient"
    has out "(softmax limit)" "harness checked the plugin's softmax limit"
    has out " 0 failed" "harness reports no failure"
    expect 1 "harness catches bugs planted in the plugin" env LRA_PLUGIN_PATH="$TMP/myattn.so" \
        "$BUILD/tests/test_attn" --plant myattn
    expect 1 "harness refuses a bad LRA_PLUGIN_PATH" env LRA_PLUGIN_PATH="$TMP/nonexistent.so" \
        "$BUILD/tests/test_attn"
    expect 1 "LRA_ATTN_ONLY with an unknown name fails" env LRA_ATTN_ONLY=nosuch \
        "$BUILD/tests/test_attn"
else
    bad "$BUILD/tests/test_attn exists"
fi

# ---- 3. Refusals ---------------------------------------------------------------------------
sed 's/\.abi_version = LRA_ATTN_ABI_VERSION/.abi_version = 999/' \
    "$SRC/tests/plugin/myattn.c" >"$TMP/abi999.c"
expect 0 "compile a plugin with abi_version 999" build "$TMP/abi999.so" "$TMP/abi999.c"
expect '!0' "ABI mismatch is refused" "$ILRA" list attention --plugin "$TMP/abi999.so"
has err "ABI version 999" "ABI mismatch message names the version"
has err "abi999.so" "ABI mismatch message names the file"
expect '!0' "ABI mismatch from LRA_PLUGIN_PATH is refused" \
    env LRA_PLUGIN_PATH="$TMP/abi999.so" "$ILRA" list attention
has err "ABI version" "LRA_PLUGIN_PATH error explains the ABI version"
expect '!0' "train refuses the ABI mismatch" "$ILRA" train --task synthetic --attn myattn \
    --plugin "$TMP/abi999.so" --steps 1 --quiet
has err "ABI version" "train's error explains the ABI version"

sed 's/"myattn"/"softmax"/' "$SRC/tests/plugin/myattn.c" >"$TMP/dup.c"
expect 0 "compile a plugin named softmax" build "$TMP/dup.so" "$TMP/dup.c"
expect '!0' "a plugin named like a built-in is refused" \
    "$ILRA" list attention --plugin "$TMP/dup.so"
has err "dup.so" "duplicate-name message names the file"
has err "'softmax'" "duplicate-name message names the name"
expect '!0' "the same plugin loaded twice is refused" \
    "$ILRA" list attention --plugin "$TMP/myattn.so" --plugin "$TMP/plugdir/myattn.so"
has err "'myattn' is already registered" "second load names the duplicate"

expect 0 "compile a plugin without -DLRA_PLUGIN_SHARED" build "$TMP/nosym.so" \
    "$SRC/tests/plugin/myattn.c" -ULRA_PLUGIN_SHARED
expect '!0' "a .so without the descriptor symbol is refused" \
    "$ILRA" list attention --plugin "$TMP/nosym.so"
has err "nosym.so: no symbol 'lra_plugin_descriptor'" "missing symbol is explained"
has err "LRA_PLUGIN_SHARED" "missing-symbol message says how to fix it"

expect '!0' "a path that does not exist is refused" \
    "$ILRA" list attention --plugin "$TMP/nosuch.so"
has err "$TMP/nosuch.so does not exist" "missing path is named"
echo "garbage" >"$TMP/notelf.so"
expect '!0' "a file that is no shared object is refused" \
    "$ILRA" list attention --plugin "$TMP/notelf.so"
has err "cannot load plugin $TMP/notelf.so" "unloadable file is named"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
