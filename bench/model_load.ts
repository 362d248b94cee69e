/**
 * Model loading benchmarks on the full-size synthetic checkpoint (219,029,196 bytes, 214 BF16 tensors, 109.5 M
 * parameters; generated on demand by `ensureFullWeights`).
 *
 * - `model.load_full`: open the file (header only), validate it against the config, then read every tensor with a
 *   positioned read into a reused scratch buffer and widen BF16→F32 into one resident F32 arena (438 MB), as the
 *   wasm loader will do with wasm memory. Reports time and peak RSS (`process.memoryUsage().rss`, sampled after
 *   every tensor). Loading into the wasm core itself is wired by the lead later.
 * - `model.header_full`: open + header parse + check against the config only.
 * - `model.synthesize_full`: generate the synthetic checkpoint in memory (SYNTHETIC-WEIGHTS.md).
 *
 * `deno run -A bench/model_load.ts` (or `bun bench/model_load.ts`) prints the results as JSON.
 *
 * @module
 */
import process from "node:process";
import { readFile } from "node:fs/promises";
import { ensureFullWeights, fullConfigPath } from "../tests/support/full_weights.ts";
import { parseConfigText, type PocketTtsConfig } from "../src/model/config.ts";
import { validateTensors } from "../src/model/layout.ts";
import { openSafetensors, toFloat32Into } from "../src/model/safetensors.ts";
import { syntheticCheckpoint } from "../src/model/synthetic_weights.ts";
import { loadCore } from "../src/runtime/wasm.ts";
import { LocalFlowLm, LocalMimi } from "../src/generate/local_services.ts";
import { type BenchResult, benchVariants, rssMb, runtimeName, stats } from "./support.ts";

const MB = 1024 * 1024;

/**
 * Loads the whole model into a fresh wasm core as the generator does (FlowLM and the Mimi decoder: read, widen,
 * pack), sampling RSS every 10 ms; returns the time and the peak RSS in MB.
 */
async function loadIntoCore(path: string, config: PocketTtsConfig, variant: "baseline" | "relaxed") {
  let peak = rssMb();
  const sampler = setInterval(() => peak = Math.max(peak, rssMb()), 10);
  const t0 = performance.now();
  const core = await loadCore({ simd: variant });
  const reader = await openSafetensors(path);
  const flow = await LocalFlowLm.create(core, reader, config);
  const mimi = await LocalMimi.create(core, reader, config);
  await reader.close();
  const ms = performance.now() - t0;
  clearInterval(sampler);
  peak = Math.max(peak, rssMb());
  const memoryMb = core.memoryBytes / MB;
  await flow.dispose();
  await mimi.dispose();
  return { ms, peak, memoryMb };
}

async function loadOnce(path: string, config: PocketTtsConfig, arena: Float32Array, scratch: Uint8Array) {
  let peak = process.memoryUsage().rss;
  const st = await openSafetensors(path);
  try {
    validateTensors(config, st.tensors, path);
    let offset = 0;
    for (const t of st.tensors) {
      const bytes = scratch.subarray(0, t.byteLength);
      await st.readInto(t, bytes);
      offset += toFloat32Into({ dtype: t.dtype, bytes }, arena.subarray(offset));
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    if (offset !== arena.length) throw new Error(`loaded ${offset} parameters, expected ${arena.length}`);
  } finally {
    await st.close();
  }
  return peak;
}

/** Run the model-loading benchmarks. */
export async function run(): Promise<BenchResult[]> {
  const path = await ensureFullWeights();
  const config = parseConfigText(await readFile(fullConfigPath(), "utf8"), { source: fullConfigPath() });
  const results: BenchResult[] = [];

  // into the wasm core, first (before this benchmark's own buffers inflate the RSS)
  for (const variant of benchVariants()) {
    const rssBefore = rssMb();
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await loadIntoCore(path, config, variant));
    results.push({
      name: "model.load_core_full",
      runtime: runtimeName(),
      variant,
      weights: "f32 (synthetic full)",
      ...stats(runs.map((r) => r.ms)),
      unit: "ms",
      rss_before_mb: Math.round(rssBefore),
      peak_rss_mb: Math.round(runs[0].peak),
      wasm_memory_mb: Math.round(runs[0].memoryMb),
    });
  }

  // header only
  const headerTimes: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    const st = await openSafetensors(path);
    validateTensors(config, st.tensors, path);
    await st.close();
    headerTimes.push(performance.now() - t0);
  }
  const probe = await openSafetensors(path);
  const params = probe.tensors.reduce((a, t) => a + t.numel, 0);
  const largest = Math.max(...probe.tensors.map((t) => t.byteLength));
  const fileBytes = probe.header.byteLength;
  const tensors = probe.tensors.length;
  await probe.close();
  results.push({
    name: "model.header_full",
    ...stats(headerTimes),
    unit: "ms",
    tensors,
    header_bytes: probe.header.headerLength,
  });

  // full load: parse + read + BF16→F32 into a resident arena
  const rssBefore = process.memoryUsage().rss;
  const arena = new Float32Array(params);
  const scratch = new Uint8Array(largest);
  const loadTimes: number[] = [];
  let peak = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    peak = Math.max(peak, await loadOnce(path, config, arena, scratch));
    loadTimes.push(performance.now() - t0);
  }
  const s = stats(loadTimes);
  results.push({
    name: "model.load_full",
    ...s,
    unit: "ms",
    file_bytes: fileBytes,
    tensors,
    parameters: params,
    f32_arena_mb: Math.round(params * 4 / MB),
    throughput_mb_s: Math.round(fileBytes / MB / (s.median / 1000)),
    rss_before_mb: Math.round(rssBefore / MB),
    peak_rss_mb: Math.round(peak / MB),
  });

  // synthetic generation (what ensureFullWeights costs when the file is absent)
  const synthTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const bytes = syntheticCheckpoint(config);
    synthTimes.push(performance.now() - t0);
    if (bytes.length !== fileBytes) throw new Error("synthetic checkpoint size changed");
  }
  results.push({ name: "model.synthesize_full", ...stats(synthTimes), unit: "ms", file_bytes: fileBytes });
  return results;
}

if (import.meta.main) {
  console.log(JSON.stringify(await run(), null, 2));
}
