/**
 * Kernel microbenchmarks: the packed GEMV (batch 1) and GEMM (16 rows) every model part is built from (f32, BF16 and
 * int8 panels), and BF16 widening, per wasm variant. GEMV streams several distinct weight matrices so the figure is
 * memory-bound like a real AR step rather than a cache-resident best case.
 *
 * @module
 */

import { loadCore } from "../src/runtime/wasm.ts";
import { type BenchResult, benchVariants, measure, runtimeName } from "./support.ts";
import { randomF32 } from "../tests/support/core.ts";

type Weights = "f32" | "bf16" | "int8";
const SHAPES: { name: string; m: number; k: number; n: number; matrices: number; weights: Weights }[] = [
  { name: "gemv.1x1024x3072", m: 1, k: 1024, n: 3072, matrices: 24, weights: "f32" }, // 302 MB: beyond the caches
  { name: "gemv.1x4096x1024", m: 1, k: 4096, n: 1024, matrices: 24, weights: "f32" },
  { name: "gemm.16x512x2048", m: 16, k: 512, n: 2048, matrices: 1, weights: "f32" },
  // BF16 panels (what FlowLM uses for BF16 checkpoints): half the bytes per weight
  { name: "gemv_bf16.1x1024x3072", m: 1, k: 1024, n: 3072, matrices: 48, weights: "bf16" },
  { name: "gemv_bf16.1x4096x1024", m: 1, k: 4096, n: 1024, matrices: 48, weights: "bf16" },
  { name: "gemm_bf16.16x512x2048", m: 16, k: 512, n: 2048, matrices: 1, weights: "bf16" },
  // int8 panels (the quantised FlowLM): a quarter of the f32 bytes, integer dot products
  { name: "gemv_i8.1x1024x3072", m: 1, k: 1024, n: 3072, matrices: 96, weights: "int8" },
  { name: "gemv_i8.1x4096x1024", m: 1, k: 4096, n: 1024, matrices: 96, weights: "int8" },
  { name: "gemm_i8.16x512x2048", m: 16, k: 512, n: 2048, matrices: 1, weights: "int8" },
];
const BYTES_PER_WEIGHT = { f32: 4, bf16: 2, int8: 1 };

/** Runs the kernel benchmarks for every variant this runtime supports. */
export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const variant of benchVariants()) {
    const core = await loadCore({ simd: variant });
    for (const s of SHAPES) {
      const w = randomF32(s.n * s.k, 7);
      if (s.weights === "bf16") new Uint32Array(w.buffer).forEach((b, i, a) => a[i] = b & 0xffff0000);
      const int8 = s.weights === "int8";
      const handles: number[] = [];
      const wp = core.put(w);
      for (let i = 0; i < s.matrices; i++) {
        const h = int8 ? core.raw.linear_i8_new(wp, 0, s.n, s.k) : core.raw.linear_new(wp, 0, s.n, s.k);
        if (s.weights === "bf16") core.raw.linear_compact(h);
        handles.push(h);
      }
      core.free(wp, w.byteLength);
      const xp = core.put(randomF32(s.m * s.k, 8));
      const yp = core.alloc(s.m * s.n * 4);
      const t = measure(() => {
        for (const h of handles) {
          int8 ? core.raw.linear_i8_forward(h, xp, yp, s.m, 0) : core.raw.linear_forward(h, xp, yp, s.m);
        }
      }, 5);
      for (const h of handles) int8 ? core.raw.linear_i8_free(h) : core.raw.linear_free(h);
      const per = { median: t.median / s.matrices, min: t.min / s.matrices, max: t.max / s.matrices };
      const flops = 2 * s.m * s.n * s.k;
      results.push({
        name: s.name,
        runtime: runtimeName(),
        variant,
        weights: s.weights,
        ...per,
        unit: "ms",
        gflops: +(flops / per.median / 1e6).toFixed(2),
        gbps: +((s.n * s.k * BYTES_PER_WEIGHT[s.weights]) / per.median / 1e6).toFixed(2),
      });
    }
    const n = 4 * 1024 * 1024;
    const src = core.alloc(n * 2), dst = core.alloc(n * 4);
    const t = measure(() => core.raw.bf16_to_f32(src, dst, n));
    results.push({
      name: "bf16_to_f32.4m",
      runtime: runtimeName(),
      variant,
      weights: "-",
      ...t,
      unit: "ms",
      gbps: +((n * 6) / t.median / 1e6).toFixed(2),
    });
  }
  return results;
}

if (import.meta.main) console.log(JSON.stringify(await run()));
