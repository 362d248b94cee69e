/**
 * Which WebAssembly vector instruction sets this runtime accepts, probed with `WebAssembly.validate` on tiny
 * modules (no instantiation, so the probe costs microseconds).
 *
 * @module
 */

/** The wasm build variants shipped in `wasm/`. */
export type SimdVariant = "baseline" | "relaxed";

/** `v128.const 0` (opcode 0xfd 12 and 16 immediate bytes). */
const V128_ZERO = [253, 12, ...new Array<number>(16).fill(0)];

/** A module with one function `() -> v128` whose body is `ops` (no locals). */
function probeModule(ops: number[]): Uint8Array {
  const body = [0, ...ops, 11]; // no locals, ops, end
  return new Uint8Array([
    ...[0, 97, 115, 109, 1, 0, 0, 0], // "\0asm", version 1
    ...[1, 5, 1, 96, 0, 1, 123], // type section: () -> v128
    ...[3, 2, 1, 0], // function section: one function of type 0
    ...[10, body.length + 2, 1, body.length, ...body], // code section
  ]);
}

/** `f32x4.add` of two constants: needs SIMD128. */
const SIMD128_PROBE = probeModule([...V128_ZERO, ...V128_ZERO, 253, 228, 1]);

/** `f32x4.relaxed_madd` of three constants: needs relaxed SIMD. */
const RELAXED_PROBE = probeModule([...V128_ZERO, ...V128_ZERO, ...V128_ZERO, 253, 133, 2]);

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
