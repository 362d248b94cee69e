/**
 * Mimi decoder benchmark on the full-size synthetic checkpoint: `mimi.decode_frame` is the time to decode one
 * latent frame (80 ms of audio) in a steady stream, one frame per call on one thread, per wasm variant. Frames are
 * timed one by one after the attention window has filled (250 steps ≈ 16 frames), so every timed frame attends over
 * the full window. `gmac_per_s` is the multiply-accumulate rate of the projections and convolutions
 * (`macs_per_frame`, ≈ 262 M) at the median time.
 *
 * `mimi.stage` times each stage of the decoder's pipeline (`mimiDecoderPlan`: input, the transformer's half-layers,
 * SEANet's ops) as a one-stage part of a split decoder, chained frame after frame: the per-stage costs the
 * two-worker split is chosen from (`src/generate/mimi_split.ts`).
 *
 * `deno run -A bench/mimi.ts` (or `bun bench/mimi.ts`) prints the results as JSON.
 *
 * @module
 */

import { type BenchResult, benchThreads, benchVariants, runtimeName, stats } from "./support.ts";
import { MimiDecoder, mimiDecoderPlan } from "../src/runtime/mimi_decoder.ts";
import { decoderCore, goldenCase } from "../tests/mimi/support.ts";
import { threadedCore } from "../tests/support/core.ts";

const WARMUP_FRAMES = 20;
const TIMED_FRAMES = 40;

/** Runs the Mimi decoder benchmark for every variant this runtime supports. */
export async function run(): Promise<BenchResult[]> {
  const golden = await goldenCase("full");
  const latents = await golden.float32("latent_norm"); // 8 real frames, cycled
  await golden.close();
  const results: BenchResult[] = [];
  for (const variant of benchVariants()) {
    for (const threads of benchThreads()) results.push(await decodeFrame(variant, threads, latents));
    results.push(...await stageTimes(variant, latents));
  }
  return results;
}

/** Whole frames on `threads` threads (the threads build with helpers beyond one). */
async function decodeFrame(
  variant: "baseline" | "relaxed",
  threads: number,
  latents: Float32Array,
): Promise<BenchResult> {
  const { core: threaded, stop } = await threadedCore(variant, threads);
  const { core, config, mean, std } = await decoderCore("full", variant, threaded);
  const decoder = MimiDecoder.create(core, config, { latentStats: { mean, std } });
  const state = decoder.createState();
  const n = decoder.latentDim, frames = latents.length / n;
  const out = new Float32Array(decoder.frameSamples);
  const frame = (i: number) => state.decodeInto(latents.subarray((i % frames) * n, (i % frames + 1) * n), out);
  for (let i = 0; i < WARMUP_FRAMES; i++) frame(i);
  const times: number[] = [];
  for (let i = 0; i < TIMED_FRAMES; i++) {
    const t0 = performance.now();
    frame(WARMUP_FRAMES + i);
    times.push(performance.now() - t0);
  }
  const t = stats(times);
  const macs = decoder.macsPerFrame;
  const result = {
    name: "mimi.decode_frame",
    runtime: runtimeName(),
    variant,
    threads,
    weights: "full-synthetic (bf16 → f32)",
    median: +t.median.toFixed(3),
    min: +t.min.toFixed(3),
    max: +t.max.toFixed(3),
    unit: "ms",
    gmac_per_s: +(macs / t.median / 1e6).toFixed(2),
    macs_per_frame: macs,
    realtime_factor: +(80 / t.median).toFixed(2),
    weight_mb: +(decoder.weightBytes / 1e6).toFixed(1),
    state_mb: +(state.bytes / 1e6).toFixed(2),
  };
  decoder.free();
  await stop();
  return result;
}

/** Each stage alone (a part of one stage), chained over a steady stream of frames. */
async function stageTimes(variant: "baseline" | "relaxed", latents: Float32Array): Promise<BenchResult[]> {
  const { core, config, mean, std } = await decoderCore("full", variant);
  const plan = mimiDecoderPlan(core, config);
  const parts = plan.map((_, i) =>
    MimiDecoder.create(core, config, {
      latentStats: i === 0 ? { mean, std } : undefined,
      stages: { from: i, to: i + 1 },
    })
  );
  const states = parts.map((p) => p.createState());
  const n = parts[0].latentDim, frames = latents.length / n;
  const times: number[][] = plan.map(() => []);
  for (let i = 0; i < WARMUP_FRAMES + TIMED_FRAMES; i++) {
    let x = latents.subarray((i % frames) * n, (i % frames + 1) * n);
    states.forEach((st, k) => {
      const t0 = performance.now();
      x = st.decode(x);
      if (i >= WARMUP_FRAMES) times[k].push(performance.now() - t0);
    });
  }
  parts.forEach((p) => p.free());
  return plan.map((stage, k) => {
    const t = stats(times[k]);
    return {
      name: "mimi.stage",
      stage: stage.name,
      runtime: runtimeName(),
      variant,
      median: +t.median.toFixed(3),
      min: +t.min.toFixed(3),
      max: +t.max.toFixed(3),
      unit: "ms",
      macs_per_frame: stage.macs,
      gmac_per_s: +(stage.macs / t.median / 1e6).toFixed(2),
    };
  });
}

if (import.meta.main) console.log(JSON.stringify(await run()));
