#!/usr/bin/env bash
# test.sh - set up, build and run the whole test suite:
#   1. gcc, -Werror, optimised: unit and integration tests (ctest);
#   2. clang, -Werror, AddressSanitizer + UndefinedBehaviorSanitizer, with the
#      libFuzzer targets run briefly over their seed and regression corpora.
# The last line is ctest's summary for the sanitizer run.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

echo "== gcc build (Release, -Werror)"
CC=gcc ./scripts/build.sh build-gcc >/dev/null
(cd build-gcc && ctest --output-on-failure -j2)

echo "== clang build (ASan + UBSan, libFuzzer)"
CC=clang ./scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAIRLOCK_SANITIZE=ON -DAIRLOCK_FUZZ=ON >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j2)
