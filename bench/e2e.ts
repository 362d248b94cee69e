/**
 * End-to-end benchmarks on the full-size synthetic checkpoint, through the public API, in the setting of the
 * reference's figures (`performance.md`): a 126-position voice, EOS disabled, 150 frames (12 s of audio) from a
 * ~30-token text; time to first audio for a 12-token text; peak RSS; load time (a fresh `TTSModel.load`, the first of
 * the process). First audio is measured twice: with the voice file (`e2e.first_audio`), and right after a voice is
 * cloned from a 10 s recording (`e2e.first_audio_cloned`: per run, a recording of its own is cloned and kept, as a
 * server keeps the voices it registers, the request is timed, then the voice-file request right after it, whose ratio
 * `over_voice_file` is run by run; the peak RSS is read before the clones). For two pipelined workers (`workers: 2`,
 * where the runtime has workers; with `threads: 2`, the default where shared memory exists: the FlowLM worker's
 * prefills and first frames use a helper thread), one worker on the threads build with one helper (`workers: 1, threads: 2`, where
 * shared memory exists) and one thread (`workers: 0`), BF16 weights and `quantize` (int8
 * FlowLM), with the runtime's best wasm variant: each of the six in a process of its own.
 *
 * `runSplit` (`e2e_split`, BF16 and int8) compares the two-worker designs in one process, interleaved run by run so a
 * loaded machine's drift falls on both: the Mimi decoder split between the workers (`mimi_split: "auto"`, the
 * default) and whole in the second worker (`mimi_split: 0`, the design before); `e2e.split_gain` is the ratio of
 * their median real-time factors and first-audio times.
 *
 * @module
 */

import { TTSModel, type Voice } from "../mod.ts";
import { serializeSafetensors } from "../src/model/safetensors.ts";
import { fullModelDir } from "../tests/support/full_weights.ts";
import { randomF32 } from "../tests/support/core.ts";
import { workersAvailable } from "../src/generate/create_services.ts";
import { type BenchResult, benchThreads, msToFirst, peakRssMb, rssMb, runtimeName, stats } from "./support.ts";
import { prompt, recordingVariant } from "./clone.ts";

const LONG_TEXT =
  "The weather is lovely today, so we will take a long walk in the park near the river, and then we can rest.";
const SHORT_TEXT = "Good morning, how are you doing on this day?"; // 12 tokens with the fixture tokenizer
const FRAMES = 150;
const CLONE_RUNS = 3;

/** A v1.0-style audio-prompt voice of 125 frames: with BOS it fills 126 positions, like the reference's run. */
export function voiceFile(dModel: number): Uint8Array {
  const rows = randomF32(125 * dModel, 99).map((v) => v * 0.5);
  return serializeSafetensors([{ name: "audio_prompt", dtype: "F32", shape: [1, 125, dModel], data: rows }]);
}

/** Where a mode runs the model (`TTSModelLoadOptions.workers` and `threads`). */
interface Placement {
  workers: 0 | 1 | 2;
  threads: number;
}

const TWO_WORKERS: Placement = { workers: 2, threads: benchThreads().includes(2) ? 2 : 1 };
const ONE_THREAD: Placement = { workers: 0, threads: 1 };
const THREADS: Placement = { workers: 1, threads: 2 };

/** The end-to-end benchmarks with BF16 weights and two workers (one thread where the runtime has no workers). */
export function run(): Promise<BenchResult[]> {
  return runMode(false, workersAvailable() ? TWO_WORKERS : ONE_THREAD);
}

/** The same in one thread. */
export function runOneThread(): Promise<BenchResult[]> {
  return runMode(false, ONE_THREAD);
}

/** The same on the threads build in one worker (none where shared memory is missing). */
export function runThreads(): Promise<BenchResult[]> {
  return benchThreads().includes(2) ? runMode(false, THREADS) : Promise.resolve([]);
}

/** The same with the int8 FlowLM, two workers. */
export function runInt8(): Promise<BenchResult[]> {
  return runMode(true, workersAvailable() ? TWO_WORKERS : ONE_THREAD);
}

/** The int8 FlowLM in one thread. */
export function runInt8OneThread(): Promise<BenchResult[]> {
  return runMode(true, ONE_THREAD);
}

/** The int8 FlowLM on the threads build in one worker. */
export function runInt8Threads(): Promise<BenchResult[]> {
  return benchThreads().includes(2) ? runMode(true, THREADS) : Promise.resolve([]);
}

/**
 * One mode, which `bench/runner.ts` runs in a process of its own: its peak RSS (the kernel's high-water mark where
 * there is one, else sampled) is then this mode's alone, load included, and not what an earlier mode left behind.
 */
async function runMode(quantize: boolean, { workers, threads }: Placement): Promise<BenchResult[]> {
  const model = await fullModelDir();
  const results: BenchResult[] = [];
  let peak = peakRssMb();
  const sampler = setInterval(() => peak = Math.max(peak, peakRssMb()), 20);
  const t0 = performance.now();
  const tts = await TTSModel.load({ model, workers, threads, quantize });
  const loadMs = performance.now() - t0;
  const loadedRss = rssMb();
  const voice = await tts.loadVoice(voiceFile(tts.config.flow_lm.transformer.d_model));
  const common = { runtime: runtimeName(), variant: "auto", weights: quantize ? "int8" : "bf16", workers, threads };
  results.push({ name: "e2e.load", ...common, median: loadMs, min: loadMs, max: loadMs, unit: "ms" });

  const rtf: number[] = [];
  for (let run = 0; run < 3; run++) rtf.push(await realTimeFactor(tts, voice, run));
  const r = stats(rtf);
  results.push({ name: "e2e.rtf", ...common, ...r, unit: "x", frames: FRAMES });

  const first: number[] = [];
  for (let run = 0; run < 5; run++) first.push(await firstAudio(tts, voice, run));
  const shortText = { text_tokens: 12, positions: voice.positions };
  results.push({ name: "e2e.first_audio", ...common, ...stats(first), unit: "ms", ...shortText });
  clearInterval(sampler);
  peak = Math.max(peak, peakRssMb()); // generation's peak: cloning (the encoder, its scratch) comes after

  const audio = await prompt();
  const cloned: number[] = [], ratio: number[] = [];
  let positions = 0;
  for (let run = 0; run < CLONE_RUNS; run++) {
    const clone = await tts.loadVoice(recordingVariant(audio, run));
    positions = clone.positions;
    cloned.push(await firstAudio(tts, clone, run));
    ratio.push(cloned[run] / await firstAudio(tts, voice, run));
  }
  results.push({
    name: "e2e.first_audio_cloned",
    ...common,
    ...stats(cloned),
    unit: "ms",
    ...shortText,
    positions,
    recording_s: audio.length / 24000,
    over_voice_file: +stats(ratio).median.toFixed(3),
  });
  tts.dispose();
  results.push({
    name: "e2e.peak_rss",
    ...common,
    median: peak,
    min: peak,
    max: peak,
    unit: "MB",
    after_load_mb: +loadedRss.toFixed(1),
  });
  return results;
}

/** Real-time factor of 150 frames of the long text (EOS off). */
async function realTimeFactor(tts: TTSModel, voice: Voice, seed: number): Promise<number> {
  const t0 = performance.now();
  let frames = 0;
  for await (const _ of tts.stream(LONG_TEXT, { voice, seed, eosThreshold: Infinity })) {
    if (++frames === FRAMES) break;
  }
  return (FRAMES * 0.08) / ((performance.now() - t0) / 1000);
}

/** Milliseconds to the first frame of the 12-token text, on an idle model (the previous request's work is done). */
async function firstAudio(tts: TTSModel, voice: Voice, seed: number): Promise<number> {
  await new Promise((r) => setTimeout(r, 150)); // frames a left stream had in flight finish before the clock starts
  return await msToFirst(tts.stream(SHORT_TEXT, { voice, seed }));
}

/** The Mimi decoder split between the workers vs whole in the second one, BF16 and int8, interleaved run by run. */
export async function runSplit(): Promise<BenchResult[]> {
  if (!workersAvailable()) return [];
  const model = await fullModelDir();
  const results: BenchResult[] = [];
  for (const quantize of [false, true]) {
    const splits = ["auto", 0] as const;
    const models = [];
    for (const mimiSplit of splits) models.push(await TTSModel.load({ model, workers: 2, quantize, mimiSplit }));
    const voices = await Promise.all(models.map((m) => m.loadVoice(voiceFile(m.config.flow_lm.transformer.d_model))));
    const rtf: number[][] = [[], []], first: number[][] = [[], []];
    for (let run = 0; run < 4; run++) {
      for (const i of [0, 1]) rtf[i].push(await realTimeFactor(models[i], voices[i], run));
    }
    for (let run = 0; run < 6; run++) {
      for (const i of [0, 1]) first[i].push(await firstAudio(models[i], voices[i], run));
    }
    models.forEach((m) => m.dispose());
    const common = { runtime: runtimeName(), variant: "auto", weights: quantize ? "int8" : "bf16", workers: 2 };
    for (const i of [0, 1]) {
      const tag = { ...common, mimi_split: splits[i] };
      results.push({ name: "e2e.split.rtf", ...tag, ...stats(rtf[i]), unit: "x", frames: FRAMES });
      results.push({ name: "e2e.split.first_audio", ...tag, ...stats(first[i]), unit: "ms", text_tokens: 12 });
    }
    // Run by run ratios (split over whole), so each compares two runs made one after the other.
    const gain = stats(rtf[0].map((v, j) => v / rtf[1][j]));
    results.push({ name: "e2e.split_gain.rtf", ...common, ...gain, unit: "ratio" });
    const faster = stats(first[1].map((v, j) => v / first[0][j]));
    results.push({ name: "e2e.split_gain.first_audio", ...common, ...faster, unit: "ratio (whole / split)" });
  }
  return results;
}

if (import.meta.main) console.log(JSON.stringify(await run()));
