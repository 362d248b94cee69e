// The int8 linear kernel (quantised FlowLM) and the `limits` benchmark kernels against the wasm build, both
// variants where the runtime runs them: the SIMD int8 GEMV/GEMM (dot_i16x8_s, or the relaxed integer dot) equals the
// core's scalar reference bit for bit (so the quantised mode is deterministic across runtimes, per variant) and an
// independent float64 model of the same quantisation;
// the streaming read returns the words' wrapping sum; the multiply-add chains match a scalar recurrence.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomF32, sharedCore, testVariants } from "../support/core.ts";

/** Symmetric per-row quantisation to ±qmax (ties to even), as documented in `kernels/linear_i8.rs`. */
function quantizeRows(a: Float32Array, rows: number, k: number, qmax: number): { q: Int8Array; scale: Float32Array } {
  const q = new Int8Array(rows * k), scale = new Float32Array(rows);
  const f = Math.fround;
  for (let r = 0; r < rows; r++) {
    let amax = 0;
    for (let i = 0; i < k; i++) amax = Math.max(amax, Math.abs(a[r * k + i]));
    if (amax === 0) continue;
    const inv = f(qmax / amax);
    for (let i = 0; i < k; i++) {
      const v = f(a[r * k + i] * inv);
      const fl = Math.floor(v), frac = v - fl;
      const rounded = frac === 0.5 ? (fl % 2 === 0 ? fl : fl + 1) : Math.round(v);
      q[r * k + i] = Math.max(-qmax, Math.min(qmax, rounded));
    }
    scale[r] = f(amax / qmax);
  }
  return { q, scale };
}

const SHAPES: [number, number, number][] = [
  [1, 3072, 1024], // FlowLM in_proj, AR step (GEMV)
  [12, 1024, 4096], // linear2 in a 12-token prefill
  [3, 37, 19], // odd input width, ragged last panel
];

for (const variant of testVariants) {
  describe(`int8 and limits kernels (${variant})`, () => {
    for (const [m, n, k] of SHAPES) {
      test(`int8 linear ${m}x${k}·${k}x${n}: SIMD = scalar reference bit for bit, = f64 model of the quantisation`, async () => {
        const core = await sharedCore(variant);
        const x = randomF32(m * k, 11), w = randomF32(n * k, 12), b = randomF32(n, 13);
        const xp = core.put(x), wp = core.put(w), bp = core.put(b);
        const yp = core.alloc(m * n * 4), rp = core.alloc(m * n * 4);
        const h = core.raw.linear_i8_new(wp, bp, n, k);
        core.raw.linear_i8_forward(h, xp, yp, m, 0);
        core.raw.linear_i8_forward(h, xp, rp, m, 1);
        const got = core.f32(yp, m * n).slice(), ref = core.f32(rp, m * n).slice();
        core.raw.linear_i8_free(h);
        for (const [p, bytes] of [[xp, x.byteLength], [wp, w.byteLength], [bp, b.byteLength], [yp, got.byteLength]]) {
          core.free(p, bytes);
        }
        core.free(rp, m * n * 4);
        assert.deepEqual(new Uint32Array(got.buffer), new Uint32Array(ref.buffer));
        // independent model: exact integer sums, then the same float rescale
        // activations use 8 bits with dot_i16x8_s, 7 with the relaxed dot (its operand must be non-negative 7-bit)
        const qx = quantizeRows(x, m, k, variant === "relaxed" ? 63 : 127), qw = quantizeRows(w, n, k, 127);
        let worst = 0, exactErr = 0, scale = 0;
        for (let r = 0; r < m; r++) {
          for (let c = 0; c < n; c++) {
            let acc = 0, exact = 0;
            for (let i = 0; i < k; i++) {
              acc += qx.q[r * k + i] * qw.q[c * k + i];
              exact += x[r * k + i] * w[c * k + i];
            }
            const want = Math.fround(Math.fround(acc) * Math.fround(qx.scale[r] * qw.scale[c])) + b[c];
            worst = Math.max(worst, Math.abs(got[r * n + c] - want));
            exactErr = Math.max(exactErr, Math.abs(got[r * n + c] - (exact + b[c])));
            scale = Math.max(scale, Math.abs(exact + b[c]));
          }
        }
        assert.ok(worst <= 1e-6 * scale, `vs f64 model of the quantisation: ${worst} (scale ${scale})`);
        assert.ok(exactErr <= 0.03 * scale, `quantisation error vs the exact product: ${exactErr} (scale ${scale})`);
      });
    }

    test("limits_read returns the wrapping sum of the words it streams", async () => {
      const core = await sharedCore(variant);
      const words = 4096 + 7, passes = 3;
      const data = new Uint32Array(words).map((_, i) => Math.imul(i + 1, 2654435761) >>> 0);
      const p = core.put(data);
      let sum = 0;
      for (const v of data) sum = (sum + v) >>> 0;
      sum = Math.imul(sum, passes) >>> 0;
      assert.equal(core.raw.limits_read(p, words * 4, passes) >>> 0, sum);
      core.free(p, data.byteLength);
    });

    test("limits_madd runs 12 four-lane chains of acc·a + b", async () => {
      const core = await sharedCore(variant);
      const f = Math.fround, iters = 300;
      let want = 0;
      for (let j = 0; j < 12; j++) {
        let acc = j;
        for (let i = 0; i < iters; i++) acc = f(f(acc * f(0.999)) + f(0.001));
        want += 4 * acc;
      }
      const got = core.raw.limits_madd(0.999, 0.001, iters);
      assert.ok(Math.abs(got - want) <= 1e-5 * want, `${got} vs ${want}`);
    });
  });
}
