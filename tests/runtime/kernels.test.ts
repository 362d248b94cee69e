// Kernel tests against the wasm build (both variants where the runtime runs them): the packed SIMD GEMV/GEMM
// against the core's scalar reference and an independent float64 reference, and BF16 widening bit for bit.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { maxRelDiff, randomF32, sharedCore, testVariants } from "../support/core.ts";

function matmulF64(x: Float32Array, w: Float32Array, b: Float32Array | null, m: number, n: number, k: number) {
  const y = new Float64Array(m * n);
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < n; c++) {
      let acc = 0;
      for (let i = 0; i < k; i++) acc += x[r * k + i] * w[c * k + i];
      y[r * n + c] = acc + (b ? b[c] : 0);
    }
  }
  return y;
}

const SHAPES: [number, number, number][] = [
  [1, 3072, 1024], // FlowLM in_proj, batch 1 (GEMV)
  [16, 2048, 512], // Mimi transformer FFN over 16 positions (GEMM)
  [1, 1, 1024], // EOS head: one output column
  [3, 37, 19], // odd rows, ragged last panel
];

for (const variant of testVariants) {
  describe(`kernels (${variant})`, () => {
    test("core reports its variant", async () => {
      const core = await sharedCore(variant);
      assert.equal(core.raw.core_variant(), variant === "relaxed" ? 2 : 1);
    });

    for (const [m, n, k] of SHAPES) {
      test(`linear ${m}x${k}·${k}x${n} matches scalar and f64 references (rel 1e-5)`, async () => {
        const core = await sharedCore(variant);
        const x = randomF32(m * k, 1), w = randomF32(n * k, 2), b = randomF32(n, 3);
        const xp = core.put(x), wp = core.put(w), bp = core.put(b);
        const yp = core.alloc(m * n * 4), rp = core.alloc(m * n * 4);
        const h = core.raw.linear_new(wp, bp, n, k);
        core.raw.linear_forward(h, xp, yp, m);
        core.raw.matmul_ref(xp, wp, bp, rp, m, n, k);
        const got = core.f32(yp, m * n).slice(), ref = core.f32(rp, m * n).slice();
        core.raw.linear_free(h);
        for (const [p, bytes] of [[xp, x.byteLength], [wp, w.byteLength], [bp, b.byteLength]]) core.free(p, bytes);
        core.free(yp, m * n * 4);
        core.free(rp, m * n * 4);
        const want = matmulF64(x, w, b, m, n, k);
        assert.ok(maxRelDiff(got, want) < 1e-5, `simd vs f64: ${maxRelDiff(got, want)}`);
        assert.ok(maxRelDiff(ref, want) < 1e-5, `scalar vs f64: ${maxRelDiff(ref, want)}`);
      });
    }

    test("BF16 panels (linear_compact) give bit-identical results for BF16-exact weights, and only then apply", async () => {
      const core = await sharedCore(variant);
      const raw = core.raw;
      for (const [m, n, k] of [[1, 3072, 1024], [5, 37, 19]]) {
        const w = randomF32(n * k, 4);
        const bits = new Uint32Array(w.buffer);
        for (let i = 0; i < bits.length; i++) bits[i] &= 0xffff0000; // BF16-exact values
        const x = randomF32(m * k, 5);
        const wp = core.put(w), xp = core.put(x), yp = core.alloc(m * n * 4);
        const plain = core.raw.linear_new(wp, 0, n, k), compact = core.raw.linear_new(wp, 0, n, k);
        assert.equal(raw.linear_compact(compact), 1);
        core.raw.linear_forward(plain, xp, yp, m);
        const want = core.f32(yp, m * n).slice();
        core.raw.linear_forward(compact, xp, yp, m);
        assert.deepEqual(core.f32(yp, m * n).slice(), want);
        const fp = core.put(randomF32(n * k, 6)); // full f32 values: must stay f32
        const full = core.raw.linear_new(fp, 0, n, k);
        assert.equal(raw.linear_compact(full), 0);
        for (const h of [plain, compact, full]) core.raw.linear_free(h);
        core.free(wp, n * k * 4);
        core.free(fp, n * k * 4);
        core.free(xp, m * k * 4);
        core.free(yp, m * n * 4);
      }
    });

    test("the GEMM tile's multiply-add form: probed per engine, and where it is not fused both forms agree bit for bit", async () => {
      const core = await sharedCore(variant);
      const raw = core.raw;
      const probed = raw.linear_madd_mode();
      // The baseline build's multiply-add is a product then a sum by construction; relaxed SIMD leaves it to the engine.
      assert.ok(variant === "baseline" ? probed === 2 : probed === 1 || probed === 2, `mode ${probed}`);
      // -1 + X·W with W exact in BF16: the product is not an f32, so one and two roundings differ (f64 is exact here).
      const X = 1 + 2 ** -12 + 2 ** -20, W = 1 - 2 ** -8;
      const once = Math.fround(X * W - 1), twice = Math.fround(Math.fround(X * W) - 1);
      assert.notEqual(once, twice);
      const run = (
        mode: number,
        w: Float32Array,
        x: Float32Array,
        m: number,
        n: number,
        k: number,
        compact: boolean,
      ) => {
        raw.linear_set_madd_mode(mode);
        const wp = core.put(w), xp = core.put(x), yp = core.alloc(m * n * 4);
        const h = raw.linear_new(wp, 0, n, k);
        if (compact) raw.linear_compact(h);
        raw.linear_forward(h, xp, yp, m);
        const y = core.f32(yp, m * n).slice();
        raw.linear_free(h);
        core.free(wp, n * k * 4);
        core.free(xp, m * k * 4);
        core.free(yp, m * n * 4);
        return y;
      };
      try {
        for (const compact of [false, true]) {
          const w = new Float32Array(Array.from({ length: 20 }, () => [1, W]).flat());
          const x = new Float32Array([-1, X, -1, X, -1, X]); // a two-row tile, then a one-row tile
          const fused = run(1, w, x, 3, 20, 2, compact), separate = run(2, w, x, 3, 20, 2, compact);
          assert.ok(separate.every((v) => v === twice), `separate form: ${separate[0]} != ${twice}`);
          assert.ok(fused.every((v) => v === (probed === 1 ? once : twice)), `fused form: ${fused[0]}`);
          for (const [m, n, k] of [[16, 48, 256], [5, 37, 19]]) {
            const wr = randomF32(n * k, 7);
            // BF16-exact weights, so that the compacted layer really takes BF16 panels
            if (compact) new Uint32Array(wr.buffer).forEach((b, i, all) => all[i] = b & 0xffff0000);
            const xr = randomF32(m * k, 8);
            const a = run(1, wr, xr, m, n, k, compact), b = run(2, wr, xr, m, n, k, compact);
            if (probed === 2) {
              assert.deepEqual(a, b, `${m}x${k}·${k}x${n}: the forms differ on an engine that does not fuse`);
            }
          }
        }
      } finally {
        raw.linear_set_madd_mode(probed);
      }
    });

    test("bf16 → f32 widening is exact for every bit pattern", async () => {
      const core = await sharedCore(variant);
      const n = 65536 + 3; // a ragged tail after the 8-wide SIMD steps
      const src = new Uint16Array(n).map((_, i) => i & 0xffff);
      const sp = core.put(src), dp = core.alloc(n * 4), rp = core.alloc(n * 4);
      core.raw.bf16_to_f32(sp, dp, n);
      core.raw.bf16_to_f32_ref(sp, rp, n);
      const got = new Uint32Array(core.f32(dp, n).slice().buffer);
      const ref = new Uint32Array(core.f32(rp, n).slice().buffer);
      for (let i = 0; i < n; i++) {
        const want = (src[i] << 16) >>> 0; // independent: the definition of BF16
        if (got[i] !== want || ref[i] !== want) assert.fail(`pattern ${src[i]}: ${got[i]} / ${ref[i]} != ${want}`);
      }
      core.free(sp, n * 2);
      core.free(dp, n * 4);
      core.free(rp, n * 4);
    });

    test("a failing core call becomes a typed error naming the tensor", async () => {
      const core = await sharedCore(variant);
      await assert.rejects(
        core.addWeight("bad.weight", "F32", [3], 8, () => {}),
        (e: Error) => e.name === "WasmCoreError" && /bad\.weight/.test(e.message) && /8 bytes/.test(e.message),
      );
    });
  });
}
