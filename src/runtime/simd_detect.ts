/**
 * Which WebAssembly vector instruction sets this runtime accepts, probed with `WebAssembly.validate` on tiny
 * modules (no instantiation, so the probe costs microseconds).
 *
 * @module
 */

/** The wasm build variants shipped in `wasm/`. */
export type SimdVariant = "baseline" | "relaxed";

/** A module with one function that computes `v128.const 0; v128.const 0; f32x4.add` (needs SIMD128). */
const SIMD128_PROBE = new Uint8Array([
  0,
  97,
  115,
  109,
  1,
  0,
  0,
  0,
  1,
  5,
  1,
  96,
  0,
  1,
  123,
  3,
  2,
  1,
  0,
  10,
  43,
  1,
  41,
  0, //
  253,
  12,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0, //
  253,
  12,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0, //
  253,
  228,
  1,
  11,
]);

/** The same with three operands and `f32x4.relaxed_madd` (needs relaxed SIMD). */
const RELAXED_PROBE = new Uint8Array([
  0,
  97,
  115,
  109,
  1,
  0,
  0,
  0,
  1,
  5,
  1,
  96,
  0,
  1,
  123,
  3,
  2,
  1,
  0,
  10,
  61,
  1,
  59,
  0, //
  253,
  12,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0, //
  253,
  12,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0, //
  253,
  12,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0, //
  253,
  133,
  2,
  11,
]);

function validates(bytes: Uint8Array): boolean {
  try {
    return typeof WebAssembly === "object" && WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>);
  } catch {
    return false;
  }
}

/** True when the runtime validates WebAssembly SIMD128 (required by every variant). */
export function supportsSimd128(): boolean {
  return validates(SIMD128_PROBE);
}

/** True when the runtime validates relaxed SIMD (`f32x4.relaxed_madd`). */
export function supportsRelaxedSimd(): boolean {
  return validates(RELAXED_PROBE);
}

/** The fastest variant this runtime can run, or `null` when it has no WebAssembly SIMD at all. */
export function bestSimdVariant(): SimdVariant | null {
  if (!supportsSimd128()) return null;
  return supportsRelaxedSimd() ? "relaxed" : "baseline";
}
