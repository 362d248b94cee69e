/**
 * The tiny golden model and its end-to-end cases (golden README §3(e)) for the generator and CLI tests.
 */
import { fileURLToPath } from "node:url";
import { parseSafetensors, toFloat32 } from "../../src/model/safetensors.ts";
import { TTSModel, type TTSModelLoadOptions } from "../../src/generate/tts_model.ts";
import type { ChunkReport } from "../../src/generate/generation.ts";
import { replayNoise } from "../../src/generate/noise.ts";
import { fixtureUrl, readFixture, readFixtureJson } from "./fixtures.ts";

/** Local path of the tiny model directory (config.json + weights + tokenizer). */
export const TINY_MODEL_DIR: string = fileURLToPath(fixtureUrl("model/tiny"));
/** Local path of the tiny voice state the e2e cases start from. */
export const TINY_VOICE: string = fileURLToPath(fixtureUrl("tiny/voice_state.safetensors"));

/** One recorded chunk of an e2e case. */
export interface E2eChunk {
  text: string;
  tokens: number[];
  max_gen_len: number;
  frames_after_eos: number;
  eos_step: number;
  frames_emitted: number;
}

/** One e2e case: inputs, expected counts, and the recorded noise and audio. */
export interface E2eCase {
  name: string;
  text: string;
  temperature: number;
  lsd_decode_steps: number;
  max_tokens: number;
  eos_threshold: number;
  audio_samples: number;
  noise_rows_consumed: number;
  chunks: E2eChunk[];
  /** `[rows, 32]` x₀ rows, in FlowLM call order. */
  noise: Float32Array;
  audio: Float32Array;
  wav: Uint8Array;
  /** Path of the case file (holds the `noise` tensor the CLI's `--noise-file` reads). */
  file: string;
}

/** Loads an e2e case (`short`, `normal` or `long`). */
export async function e2eCase(name: "short" | "normal" | "long"): Promise<E2eCase> {
  const meta = (await readFixtureJson<Record<string, Omit<E2eCase, "name">>>("tiny/e2e_meta.json"))[name];
  const bytes = await readFixture(`tiny/e2e_${name}.safetensors`);
  const st = parseSafetensors(bytes, `e2e_${name}`);
  return {
    ...meta,
    name,
    noise: toFloat32(await st.tensor("noise")),
    audio: toFloat32(await st.tensor("audio")),
    wav: await readFixture(`tiny/e2e_${name}.wav`),
    file: fileURLToPath(fixtureUrl(`tiny/e2e_${name}.safetensors`)),
  };
}

/** The int16 samples of a PCM16 WAV with the 44-byte header. */
export function pcm16(wav: Uint8Array): Int16Array {
  return new Int16Array(wav.buffer.slice(wav.byteOffset + 44, wav.byteOffset + wav.byteLength));
}

/** Largest |a − b| between two int16 sample arrays of equal length. */
export function maxLsbDiff(a: Int16Array, b: Int16Array): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Runs `fn` with the tiny model loaded with `options`, and disposes it afterwards. */
export async function withTinyModel<T>(
  options: Omit<TTSModelLoadOptions, "model">,
  fn: (tts: TTSModel) => Promise<T>,
): Promise<T> {
  const tts = await TTSModel.load({ model: TINY_MODEL_DIR, ...options });
  try {
    return await fn(tts);
  } finally {
    tts.dispose();
  }
}

/**
 * Generates an e2e case with the tiny voice and the case's recorded noise and settings. Returns the audio, the chunk
 * reports and how many noise rows were drawn.
 */
export async function generateCase(
  tts: TTSModel,
  c: E2eCase,
): Promise<{ audio: Float32Array; reports: ChunkReport[]; noiseRowsUsed: number }> {
  const voice = await tts.loadVoice(TINY_VOICE);
  const replay = replayNoise(c.noise);
  const reports: ChunkReport[] = [];
  const audio = await tts.generate(c.text, {
    voice,
    temperature: c.temperature,
    lsdSteps: c.lsd_decode_steps,
    maxTokens: c.max_tokens,
    eosThreshold: c.eos_threshold,
    noise: replay.noise,
    onChunk: (r) => reports.push(r),
  });
  return { audio, reports, noiseRowsUsed: replay.used() };
}
