#!/usr/bin/env bash
# Builds the two WebAssembly variants of crates/pocket_core into wasm/:
#   pocket_core_simd.wasm     simd128            (every engine with WebAssembly SIMD, Node 20 included)
#   pocket_core_relaxed.wasm  simd128 + relaxed  (Deno, Bun, browsers; picked by feature detection)
# std is rebuilt offline from Debian's rust-web-src (-Zbuild-std), so each variant needs its own target dir.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/wasm}
cd "$ROOT/crates/pocket_core"
# Debian's toolchain, not rustup's shims that come first on PATH.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
CARGO=/usr/bin/cargo
LLVM_MAJOR=$($RUSTC -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="wasm-ld-${LLVM_MAJOR}"
WASM_OPT="$ROOT/node_modules/.bin/wasm-opt"   # npm binaryen: Debian's 108 cannot parse relaxed-SIMD opcodes
[ -x "$WASM_OPT" ] || { echo "build-wasm: $WASM_OPT missing; run scripts/setup.sh" >&2; exit 1; }
# Paths must not leak into the binary, or builds in different folders would differ.
REMAP="--remap-path-prefix=$ROOT=/pocket --remap-path-prefix=/usr/lib/rustlib/src/rust=/rust"
FEAT="--enable-simd --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types --enable-mutable-globals"
mkdir -p "$OUT"
build() { # name rustflags wasm-opt-extra
  local name=$1 flags=$2 extra=$3
  RUSTFLAGS="$flags $REMAP" $CARGO build -q --release --target wasm32-unknown-unknown \
    -Zbuild-std=std,panic_abort --target-dir "target/$name"
  "$WASM_OPT" -O3 $FEAT $extra "target/$name/wasm32-unknown-unknown/release/pocket_core.wasm" \
    -o "$OUT/pocket_core_$name.wasm"
  echo "built $OUT/pocket_core_$name.wasm ($(stat -c %s "$OUT/pocket_core_$name.wasm") bytes)"
}
build simd "-C target-feature=+simd128" ""
build relaxed "-C target-feature=+simd128,+relaxed-simd" "--enable-relaxed-simd"
