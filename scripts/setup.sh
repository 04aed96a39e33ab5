#!/usr/bin/env bash
# setup.sh - install every Debian package airlock needs to build and test.
# Non-interactive and idempotent: does nothing when all are present.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  clang libclang-rt-14-dev          # second compiler, sanitizers, libFuzzer
  libcmocka-dev                      # test framework
  libutf8proc-dev                    # Unicode tables for the tokenizers
  libedit-dev                        # line editing in airlock chat
  libmicrohttpd-dev                  # HTTP server (airlock serve)
  libjansson-dev                     # JSON parsing and output for the API
  libssl-dev                         # SHA-256 of API keys (libcrypto)
  curl                               # server tests: SSE framing
  python3 python3-numpy python3-jinja2  # reference implementations for tests
  python3-torch                      # import tests: PyTorch forward pass of a Hugging Face checkpoint
)

# Node.js and npm for the server tests (the official openai client); a
# machine may already have them from another source (nodesource's nodejs
# bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# npm packages for the server tests (the official openai client), pinned by
# tests/server/package-lock.json
install_npm() {
  if [ ! -f tests/server/node_modules/openai/package.json ]; then
    echo "setup: npm ci in tests/server"
    (cd tests/server && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}
cd "$(dirname "$0")/.."
if [ ${#missing[@]} -eq 0 ]; then
  install_npm
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_npm
