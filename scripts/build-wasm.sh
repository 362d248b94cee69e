#!/usr/bin/env bash
# Builds the two WebAssembly variants of crates/pocket_core into wasm/:
#   pocket_core_simd.wasm     simd128            (every engine with WebAssembly SIMD, Node 20 included)
#   pocket_core_relaxed.wasm  simd128 + relaxed  (Deno, Bun, browsers; picked by feature detection)
#   pocket_core_*_threads.wasm  the same + atomics over an imported shared memory, for helper threads (pool.rs);
#                               the memory limits here are THREADS_MEMORY in src/runtime/wasm.ts
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
# Threads: std rebuilt with atomics; the memory is imported (JS creates it shared), and each helper instance gets
# its own stack (__stack_pointer) and thread-local block (__wasm_init_tls) from JS.
THREADS="-C target-feature=+atomics,+bulk-memory,+mutable-globals"
for a in shared-memory import-memory initial-memory=2097152 max-memory=2147483648 export=__stack_pointer \
  export=__wasm_init_tls export=__tls_size export=__tls_align; do THREADS="$THREADS -C link-arg=--$a"; done
build simd "-C target-feature=+simd128" ""
build relaxed "-C target-feature=+simd128,+relaxed-simd" "--enable-relaxed-simd"
build simd_threads "-C target-feature=+simd128 $THREADS" "--enable-threads"
build relaxed_threads "-C target-feature=+simd128,+relaxed-simd $THREADS" "--enable-relaxed-simd --enable-threads"
