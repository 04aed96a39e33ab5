#!/usr/bin/env bash
# build.sh [DIR] [cmake args...] - configure and build airlock into DIR (default build/).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build}"
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
