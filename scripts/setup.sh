#!/usr/bin/env bash
# One-time, idempotent machine setup (run as root on Debian 12): the Rust→wasm32 toolchain from Debian, and Deno,
# Bun, esbuild and binaryen from npm, with deno/bun linked into .tools/bin. Nothing is fetched outside Debian's
# archive and the npm registry.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."

need_apt=0
for pkg in rustc-web cargo-web rust-web-src wabt binaryen chromium sox flac lame; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" = 1 ] || ! ls /usr/bin/wasm-ld-* >/dev/null 2>&1; then
  apt-get update -qq
  # rustc-web conflicts with Debian's old 'rustc' 1.63 packages: drop them if present.
  if dpkg -s rustc >/dev/null 2>&1; then
    apt-get remove -y -qq rustc cargo libstd-rust-dev libstd-rust-dev-wasm32 || true
  fi
  apt-get install -y -qq --no-install-recommends rustc-web cargo-web rust-web-src wabt binaryen chromium sox flac lame >/dev/null
  LLVM_MAJOR=$(/usr/bin/rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
  apt-get install -y -qq --no-install-recommends "lld-${LLVM_MAJOR}" >/dev/null
fi
if ! ls -d /usr/lib/rustlib/src/rust/library/vendor/dlmalloc-* >/dev/null 2>&1; then
  echo "setup: rust-web-src has no vendored std dependencies (library/vendor): building std for wasm32 offline" \
    "is impossible with this version; install rust-web-src 1.96 from bookworm-security" >&2
  exit 1
fi

# Dev binaries from npm, without install scripts (the platform packages need none).
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
mkdir -p .tools/bin
ln -sf ../../node_modules/@deno/linux-x64-glibc/deno .tools/bin/deno
ln -sf ../../node_modules/@oven/bun-linux-x64/bin/bun .tools/bin/bun

echo "setup: $(/usr/bin/rustc --version) | $(.tools/bin/deno --version | head -1) | bun $(.tools/bin/bun --version) | node $(node --version)"
