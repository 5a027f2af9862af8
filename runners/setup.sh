#!/usr/bin/env bash
# Set-up shared by the quick-start commands: install missing Debian packages, configure, build.
# Usage: runners/setup.sh [BUILD_DIR]   (default: build). Safe to run again: it only does what
# is missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
cd "$root"

# Everything the build, the tests and the report use; all from Debian 12's main archive.
packages=(gcc libc6-dev python3 meson ninja-build pkg-config libopenblas-openmp-dev
          libhdf5-dev hdf5-tools gnuplot-nox libarchive-dev libpng-dev libjpeg-dev
          libfftw3-dev clang openmpi-bin libopenmpi-dev procps)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
        echo "setup: need root to run: apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" --buildtype=release -Dwerror=true >/dev/null
fi
ninja -C "$build" >/dev/null
echo "setup: built $build/runners/lra"
