/**
 * Test helpers for the wasm core: which variants this runtime can run, seeded random data, and the golden
 * tolerance measure.
 */
import { loadCore, type PocketCore, type SimdVariant } from "../../src/runtime/wasm.ts";
import { supportsRelaxedSimd } from "../../src/runtime/simd_detect.ts";
import { startCoreHelpers } from "../../src/generate/core_helpers.ts";
import { defaultWorkerUrl } from "../../src/generate/create_services.ts";

/** Variants to test in this runtime: baseline always, relaxed where the runtime validates it. */
export const testVariants: SimdVariant[] = supportsRelaxedSimd() ? ["baseline", "relaxed"] : ["baseline"];

const cores = new Map<SimdVariant, Promise<PocketCore>>();

/** A fresh core instance of `variant` (each call instantiates anew: state never leaks between tests). */
export function freshCore(variant: SimdVariant): Promise<PocketCore> {
  return loadCore({ simd: variant });
}

/**
 * A threads-build core of `variant` with `threads − 1` helper threads (`threads: 1`: the plain build, no helpers);
 * `stop` ends the helpers.
 */
export async function threadedCore(
  variant: SimdVariant,
  threads: number,
): Promise<{ core: PocketCore; stop: () => Promise<void> }> {
  if (threads === 1) return { core: await freshCore(variant), stop: () => Promise.resolve() };
  const core = await loadCore({ simd: variant, threads: true });
  const helpers = await startCoreHelpers(core, threads - 1, defaultWorkerUrl());
  return { core, stop: () => helpers.terminate() };
}

/** One shared instance per variant, for stateless kernel tests. */
export function sharedCore(variant: SimdVariant): Promise<PocketCore> {
  let c = cores.get(variant);
  if (!c) cores.set(variant, c = loadCore({ simd: variant }));
  return c;
}

/** Seeded values in [-1, 1) (mulberry32), identical in every runtime. */
export function randomF32(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
    out[i] = ((t ^ (t >>> 14)) >>> 8) / 8388608 - 1;
  }
  return out;
}

/** `max|got − want| / max|want|`, the golden README's per-tensor measure. NaNs must sit at the same positions. */
export function maxRelDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} != ${want.length}`);
  let scale = 0, diff = 0;
  for (let i = 0; i < want.length; i++) {
    const w = want[i], g = got[i];
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) !== Number.isNaN(g)) return Infinity;
      continue;
    }
    scale = Math.max(scale, Math.abs(w));
    diff = Math.max(diff, Math.abs(g - w));
  }
  return scale === 0 ? diff : diff / scale;
}
