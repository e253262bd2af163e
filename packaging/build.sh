#!/usr/bin/env bash
# Builds hq into build/ (or $HQ_BUILD_DIR) with warnings as errors.
# Extra arguments are passed to cmake's configure step.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${HQ_BUILD_DIR:-$root/build}
cmake -S "$root" -B "$build" -DHQ_WERROR=ON "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "build: binaries in $build (hq, hq-broker, hq-worker)"
