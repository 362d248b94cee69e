/**
 * FlowLM benchmarks on the full-size synthetic checkpoint, per wasm variant and weight format:
 *
 * - `flowlm.voice_prefill_126`: a 126-position voice (bos_before_voice + 125 conditioning rows) prefilled into an
 *   emptied state, one call;
 * - `flowlm.text_prefill_12`, `flowlm.text_prefill_50`: a text chunk of 12 / 50 tokens after that voice (the
 *   state is re-copied from the voice and grown before each run, outside the timing);
 * - `flowlm.ar_step`: one AR step (transformer + 1-step flow head) after the voice and a 12-token prefill, with its
 *   effective bandwidth (`gbps` = weight bytes read per step / time; `bench/main.ts` adds the single-thread read
 *   bound measured by `limits`).
 *
 * Each for the checkpoint's BF16 weights (lossless BF16 panels) and for `quantize` (int8 transformer linears), on
 * one thread and, where shared memory exists, on the threads build with one helper (`threads: 2`).
 *
 * `deno run -A bench/flow_lm.ts` prints the results as JSON.
 *
 * @module
 */

import { FlowLM } from "../src/runtime/flow_lm.ts";
import { openSafetensors } from "../src/model/safetensors.ts";
import { parseConfigText } from "../src/model/config.ts";
import { readFile } from "node:fs/promises";
import { ensureFullWeights, fullConfigPath } from "../tests/support/full_weights.ts";
import { randomF32, threadedCore } from "../tests/support/core.ts";
import { type BenchResult, benchThreads, benchVariants, runtimeName, stats } from "./support.ts";

function time(runs: number, setup: () => void, fn: () => void): number[] {
  setup();
  fn(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    setup();
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return times;
}

function round(t: { median: number; min: number; max: number }) {
  const r = (x: number) => Math.round(x * 100) / 100;
  return { median: r(t.median), min: r(t.min), max: r(t.max) };
}

/** Runs the FlowLM benchmarks for every variant this runtime supports. */
export async function run(): Promise<BenchResult[]> {
  const path = await ensureFullWeights();
  const config = parseConfigText(await readFile(fullConfigPath(), "utf8"), { source: fullConfigPath() });
  const results: BenchResult[] = [];
  for (const variant of benchVariants()) {
    for (const quantize of [false, true]) {
      for (const threads of benchThreads()) {
        results.push(...await runOne(path, config, variant, quantize, threads));
      }
    }
  }
  return results;
}

async function runOne(
  path: string,
  config: ReturnType<typeof parseConfigText>,
  variant: "baseline" | "relaxed",
  quantize: boolean,
  threads: number,
): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const { core, stop } = await threadedCore(variant, threads);
  const reader = await openSafetensors(path);
  const flow = await FlowLM.fromReader(core, reader, config, { quantize });
  await reader.close();
  const d = flow.dims.dModel;
  const base = { runtime: runtimeName(), variant, weights: quantize ? "int8" : "bf16", threads, unit: "ms" };

  const conditioning = randomF32(125 * d, 11).map((x) => x * 0.5);
  const voice = flow.createState();
  const voiceTimes = time(5, () => voice.reset(), () => {
    voice.prefillEmbeddings(conditioning, { bosBeforeVoice: true });
  });
  results.push({ name: "flowlm.voice_prefill_126", ...base, ...round(stats(voiceTimes)), positions: voice.offset });

  const st = flow.createState();
  for (const n of [12, 50]) {
    const ids = Array.from({ length: n }, (_, i) => (i * 977 + 13) % 4000);
    const times = time(5, () => {
      st.copyFrom(voice);
      st.prepareChunk(n);
    }, () => {
      st.prefillText(ids);
    });
    results.push({ name: `flowlm.text_prefill_${n}`, ...base, ...round(stats(times)), tokens: n });
  }

  st.copyFrom(voice);
  const steps = st.prepareChunk(12);
  st.prefillText(Array.from({ length: 12 }, (_, i) => i + 100));
  let input: Float32Array = new Float32Array(32).fill(NaN);
  const x0 = randomF32(32, 5);
  const out = new Float32Array(32);
  const stepTimes: number[] = [];
  for (let j = 0; j < Math.min(steps, 40); j++) {
    const t0 = performance.now();
    st.step(input, x0, out);
    const dt = performance.now() - t0;
    if (j >= 3) stepTimes.push(dt); // the first steps warm the JIT and caches
    input = out.slice();
  }
  const s = round(stats(stepTimes));
  results.push({
    name: "flowlm.ar_step",
    ...base,
    ...s,
    gbps: +(flow.stepWeightBytes / s.median / 1e6).toFixed(2),
    weight_mb: +(flow.stepWeightBytes / 1e6).toFixed(1),
  });
  flow.free();
  await stop();
  return results;
}

if (import.meta.main) console.log(JSON.stringify(await run(), null, 1));
