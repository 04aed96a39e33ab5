#!/usr/bin/env bash
# demo.sh [--model FILE] [airlock run options...] - set up, build, and generate
# text with a real model (default: the stories260K model in ../shared/models).
set -euo pipefail
cd "$(dirname "$0")/.."
model="../shared/models/llm/stories260K.gguf"
if [ "${1:-}" = "--model" ] || [ "${1:-}" = "-m" ]; then model="$2"; shift 2; fi
./scripts/setup.sh
./scripts/build.sh build >/dev/null
if [ $# -eq 0 ]; then set -- -p "Once upon a time" -n 200 --temp 0 -c 512; fi
exec ./build/airlock run -m "$model" "$@"
