/**
 * Where the memory goes, in one thread on the full-size synthetic checkpoint: the process's RSS, the wasm memory
 * and the bytes of weights the model parts hold, after each stage of a load (core, FlowLM, Mimi decoder, a
 * 126-position voice) and after generating 150 frames of a 30-token chunk (what `e2e` measures). Wasm memory
 * never shrinks, so whatever a stage's peak needed stays for the process's life: `wasm_mb` minus the live
 * `weights_mb` is what loading and state cost beyond the weights. `bench/runner.ts` runs BF16 and int8 in a
 * process each.
 *
 * @module
 */

import { LocalFlowLm, LocalMimi } from "../src/generate/local_services.ts";
import { maxGenLen } from "../src/runtime/flow_lm.ts";
import { resolveModel } from "../src/model/assets.ts";
import { openSafetensors } from "../src/model/safetensors.ts";
import { loadCore } from "../src/runtime/wasm.ts";
import { fullModelDir } from "../tests/support/full_weights.ts";
import { voiceFile } from "./e2e.ts";
import { type BenchResult, peakRssMb, rssMb, runtimeName } from "./support.ts";

const FRAMES = 150;
const TEXT_TOKENS = 30; // about the e2e benchmark's long text

/** Stage by stage memory with BF16 weights. */
export function run(): Promise<BenchResult[]> {
  return stages(false);
}

/** The same with the int8 FlowLM. */
export function runInt8(): Promise<BenchResult[]> {
  return stages(true);
}

async function stages(quantize: boolean): Promise<BenchResult[]> {
  const model = await resolveModel({ model: await fullModelDir() });
  const results: BenchResult[] = [];
  const common = { runtime: runtimeName(), variant: "auto", weights: quantize ? "int8" : "bf16", workers: 0 };
  let weights = 0;
  const record = (stage: string, wasmBytes: number) => {
    const rss = rssMb();
    results.push({
      name: `memory.${stage}`,
      ...common,
      median: rss,
      min: rss,
      max: rss,
      unit: "MB (RSS)",
      peak_rss_mb: +peakRssMb().toFixed(1),
      wasm_mb: +(wasmBytes / 1e6).toFixed(1),
      weights_mb: +(weights / 1e6).toFixed(1),
    });
  };
  record("start", 0);
  const t0 = performance.now();
  const core = await loadCore();
  record("core", core.memoryBytes);
  const reader = await openSafetensors(model.weights.path!);
  const flow = await LocalFlowLm.create(core, reader, model.config, { quantize });
  weights = flow.weightBytes;
  record("flowlm", core.memoryBytes);
  const mimi = await LocalMimi.create(core, reader, model.config, "lazy", model.weights.path!);
  await reader.close();
  weights += (await mimi.parts())[0].weightBytes;
  record("mimi", core.memoryBytes);
  results.at(-1)!.load_ms = +(performance.now() - t0).toFixed(1);
  const dModel = model.config.flow_lm.transformer.d_model;
  const voice = await flow.importVoice(voiceFile(dModel), new Float32Array(32));
  record("voice", core.memoryBytes);
  const fs = await flow.openStream(), ms = await mimi.openStream();
  const ids = Array.from({ length: TEXT_TOKENS }, (_, i) => (i * 97 + 5) % 4000);
  await flow.beginChunk(fs, voice.id, ids, maxGenLen(TEXT_TOKENS), new Float32Array(32));
  let input: Float32Array | null = null;
  for (let i = 0; i < FRAMES; i++) {
    const { latent } = await flow.step(fs, input, new Float32Array(32).fill(0.1), 1);
    await mimi.decode(ms, latent);
    input = latent;
  }
  record("generated", core.memoryBytes);
  await flow.dispose();
  await mimi.dispose();
  return results;
}

if (import.meta.main) console.log(JSON.stringify(await run()));
