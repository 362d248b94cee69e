/**
 * Voice-cloning benchmarks on the full-size synthetic checkpoint, for a 10 s prompt (the golden espeak prompt at
 * 24 kHz, repeated), in the setting of the reference's figures (`performance.md`: Mimi encode of 10 s, voice prefill
 * of 126 positions, whole clone of a 10 s prompt):
 *
 * - `clone.encode` (per wasm variant, one thread): the Mimi encoder alone, ms per second of audio;
 * - `clone.voice_prefill` (per variant): speaker projection + the 126-position FlowLM prefill;
 * - `clone.whole` (through `TTSModel.loadVoice({ samples, sampleRate })`, workers 2 where available and 0): from
 *   samples to a usable voice, the encoder's lazy first load excluded (a warm-up clone comes first);
 *   `clone.cached` the same recording again (the content-hash cache);
 * - `clone.first_audio` (same model, same run): request → first frame with the cloned voice, beside a predefined-style
 *   voice-state file (`voice` and its KV `positions` say which);
 * - `clone.peak_rss` / `clone.rss_over_generation`: peak RSS while cloning, and how far it rises above the peak of a
 *   short generation on the same model just before (clones are freed as they go, so the figure is the cloning
 *   machinery's: encoder weights, its scratch, prefill activations). Workers mode is measured first, in a fresh
 *   process; the one-thread figures come after it in the same process, so their RSS baseline is not clean. The
 *   per-variant figures come last (they load the encoder and FlowLM in this process).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { TTSModel } from "../mod.ts";
import { workersAvailable } from "../src/generate/create_services.ts";
import { isEncoderTensor, MimiEncoder } from "../src/runtime/mimi_encoder.ts";
import { loadWeightsIntoCore } from "../src/runtime/load_weights.ts";
import { openSafetensors } from "../src/model/safetensors.ts";
import { freshCore } from "../tests/support/core.ts";
import { fullModelDir } from "../tests/support/full_weights.ts";
import { loadFlowLM, readCase } from "../tests/flow_lm/support.ts";
import { modelConfig, weightsPath } from "../tests/mimi/support.ts";
import { type BenchResult, benchVariants, msToFirst, rssMb, runtimeName, stats } from "./support.ts";

const SECONDS = 10;
const RUNS = 3;

/** 10 s of speech at 24 kHz: the golden prompt repeated. */
export async function prompt(): Promise<Float32Array> {
  const speech = (await readCase("full/voice_clone.safetensors")).f32("audio_24k");
  const out = new Float32Array(SECONDS * 24000);
  for (let i = 0; i < out.length; i++) out[i] = speech[i % speech.length];
  return out;
}

/** `audio` scaled by `1 − k·10⁻³`: a recording of its own for each `k`, so the content cache never answers. */
export function recordingVariant(audio: Float32Array, k: number): { samples: Float32Array; sampleRate: number } {
  return { samples: audio.map((v) => v * (1 - k * 1e-3)), sampleRate: 24000 };
}

/** Runs the voice-cloning benchmarks. */
export async function run(): Promise<BenchResult[]> {
  const audio = await prompt();
  const results: BenchResult[] = [];
  const model = await fullModelDir();
  const modes: (0 | 2)[] = workersAvailable() ? [2, 0] : [0];
  for (const workers of modes) {
    const common = { runtime: runtimeName(), variant: "auto", weights: "full-synthetic", workers };
    let peak = rssMb();
    const sampler = setInterval(() => peak = Math.max(peak, rssMb()), 10);
    const tts = await TTSModel.load({ model, workers });
    let frames = 0;
    for await (const _ of tts.stream("A short sentence to measure generation.", { seed: 1, eosThreshold: Infinity })) {
      if (++frames === 25) break;
    }
    const generationPeak = peak = Math.max(peak, rssMb());
    // Each run clones a slightly different recording, so the content cache never answers.
    const variantOf = (k: number) => recordingVariant(audio, k);
    await tts.freeVoice(await tts.loadVoice(variantOf(RUNS + 1))); // loads the encoder (lazily, on first use)
    const whole: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const input = variantOf(i);
      const t0 = performance.now();
      const v = await tts.loadVoice(input);
      whole.push(performance.now() - t0);
      if (i > 0) await tts.freeVoice(v); // voices kept would count in RSS; one stays for the cache figure
    }
    const cached: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await tts.loadVoice(variantOf(0));
      cached.push(performance.now() - t0);
    }
    clearInterval(sampler);
    peak = Math.max(peak, rssMb());
    // First audio (request → first 80 ms frame) with the cloned voice, then with a predefined-style voice-state
    // file, alternating so both see the same machine.
    const cloned = await tts.loadVoice(variantOf(0)); // cached: the voice cloned above
    const predefined = await tts.loadVoice(
      fileURLToPath(new URL("../tests/fixtures/full/voice_state.safetensors", import.meta.url)),
    );
    const first: Record<"cloned" | "predefined", number[]> = { cloned: [], predefined: [] };
    for (let i = 0; i <= RUNS; i++) {
      for (const [which, voice] of [["cloned", cloned], ["predefined", predefined]] as const) {
        const ms = await msToFirst(tts.stream("Hello there, how are you today?", { voice, seed: 1 }));
        if (i > 0) first[which].push(ms); // the first round warms up
      }
    }
    tts.dispose();
    for (const [which, voice] of [["cloned", cloned], ["predefined", predefined]] as const) {
      results.push({
        name: "clone.first_audio",
        ...common,
        ...stats(first[which]),
        unit: "ms",
        voice: which === "cloned" ? `cloned (${SECONDS} s prompt)` : "predefined (voice-state file)",
        positions: voice.positions,
      });
    }
    results.push({ name: "clone.whole", ...common, ...stats(whole), unit: "ms", audio_s: SECONDS });
    results.push({ name: "clone.cached", ...common, ...stats(cached), unit: "ms" });
    results.push({ name: "clone.peak_rss", ...common, median: peak, min: peak, max: peak, unit: "MB" });
    const over = +(peak - generationPeak).toFixed(1);
    results.push({ name: "clone.rss_over_generation", ...common, median: over, min: over, max: over, unit: "MB" });
  }
  for (const variant of benchVariants()) {
    const common = { runtime: runtimeName(), variant, weights: "full-synthetic (bf16 → f32)" };
    const core = await freshCore(variant);
    const reader = await openSafetensors(await weightsPath("full"));
    await loadWeightsIntoCore(core, reader, isEncoderTensor);
    await reader.close();
    const encoder = MimiEncoder.create(core, await modelConfig("full"));
    let latents = encoder.encodeAll(audio); // warm-up
    const enc: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      latents = encoder.encodeAll(audio);
      enc.push((performance.now() - t0) / SECONDS);
    }
    const e = stats(enc);
    results.push({
      name: "clone.encode",
      ...common,
      ...e,
      unit: "ms per s of audio",
      gmac_per_s: +(encoder.macsPerFrame * 12.5 / e.median / 1e6).toFixed(2),
      weight_mb: +(encoder.weightBytes / 1e6).toFixed(1),
    });
    encoder.free();

    const flow = await loadFlowLM("full", variant);
    const frames = latents.length / encoder.innerDim;
    const pre: number[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const st = flow.createState();
      const t0 = performance.now();
      st.prefillEmbeddings(flow.speakerProject(latents, frames), { bosBeforeVoice: true });
      if (i > 0) pre.push(performance.now() - t0); // the first run is a warm-up
      st.free();
    }
    results.push({ name: "clone.voice_prefill", ...common, ...stats(pre), unit: "ms", positions: frames + 1 });
    flow.free();
  }

  return results;
}

if (import.meta.main) console.log(JSON.stringify(await run()));
