/**
 * The model flags every subcommand that loads a model shares (`--language`, `--model`, `--simd`, `--workers`,
 * `--threads`, `--quantize`, `--cache-dir`, `--offline`): their `node:util` `parseArgs` specs and their translation, checked, into
 * {@link TTSModelLoadOptions}. One place, so the CLI, `serve` and `export-voice` accept and check them alike.
 *
 * @module
 */

import { ConfigError, PocketTtsError } from "./errors.ts";
import type { TTSModelLoadOptions } from "./generate/tts_model.ts";

/** The `parseArgs` option specs of the model flags; a subcommand spreads the ones it takes. */
export const MODEL_FLAGS = {
  language: { type: "string" },
  model: { type: "string" },
  simd: { type: "string" },
  workers: { type: "string" },
  threads: { type: "string" },
  quantize: { type: "boolean" },
  "cache-dir": { type: "string" },
  offline: { type: "boolean" },
} as const;

/** The `parseArgs` option specs of the generation flags every subcommand that generates takes. */
export const GENERATION_FLAGS = {
  temperature: { type: "string" },
  "lsd-decode-steps": { type: "string" },
  "eos-threshold": { type: "string" },
  "frames-after-eos": { type: "string" },
  "max-tokens": { type: "string" },
} as const;

/** The `--help` lines of {@link GENERATION_FLAGS}. */
export const GENERATION_FLAGS_USAGE = `  --temperature T           Noise temperature (default: the model's, else 0.7)
  --lsd-decode-steps N      Flow-head decoding steps (default 1)
  --eos-threshold X         End-of-speech logit threshold (default -4)
  --frames-after-eos N      Frames generated after the end of speech (default: by word count)
  --max-tokens N            Maximum tokens per text chunk (default 50)`;

/** A numeric flag's value (`undefined` when absent; a {@link ConfigError} naming the flag when not a number). */
export function flagNumber(name: string, v: string | undefined, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new ConfigError(`--${name} must be ${integer ? "an integer" : "a number"}, got "${v}"`);
  }
  return n;
}

/** The generation options of the parsed {@link GENERATION_FLAGS} (checked). */
export function generationFlagOptions(o: Partial<Record<keyof typeof GENERATION_FLAGS, string>>): {
  temperature?: number;
  lsdSteps?: number;
  eosThreshold?: number;
  framesAfterEos?: number;
  maxTokens?: number;
} {
  return {
    temperature: flagNumber("temperature", o.temperature),
    lsdSteps: flagNumber("lsd-decode-steps", o["lsd-decode-steps"], true),
    eosThreshold: flagNumber("eos-threshold", o["eos-threshold"]),
    framesAfterEos: flagNumber("frames-after-eos", o["frames-after-eos"], true),
    maxTokens: flagNumber("max-tokens", o["max-tokens"], true),
  };
}

/** The parsed values of the model flags (any subset). */
export interface ModelFlagValues {
  language?: string;
  model?: string;
  simd?: string;
  workers?: string;
  threads?: string;
  quantize?: boolean;
  "cache-dir"?: string;
  offline?: boolean;
}

/**
 * Load options from the model flags (checked: a bad `--simd` or `--workers` is a {@link ConfigError}), plus what the
 * caller adds (`onNotice`, `onProgress`, a fixed `workers`, …), which wins over the flags.
 *
 * @example
 * ```ts
 * const { values } = parseArgs({ args, options: { ...MODEL_FLAGS } });
 * const tts = await TTSModel.load(modelLoadOptions(values, { onNotice: console.error }));
 * ```
 */
export function modelLoadOptions(o: ModelFlagValues, extra: TTSModelLoadOptions = {}): TTSModelLoadOptions {
  if (o.simd && !["auto", "baseline", "relaxed"].includes(o.simd)) {
    throw new ConfigError(`--simd must be auto, baseline or relaxed, got "${o.simd}"`);
  }
  if (o.workers && !["auto", "0", "1", "2"].includes(o.workers)) {
    throw new ConfigError(`--workers must be auto, 0, 1 or 2, got "${o.workers}"`);
  }
  return {
    language: o.language,
    model: o.model,
    cacheDir: o["cache-dir"],
    offline: o.offline,
    simd: o.simd as TTSModelLoadOptions["simd"],
    workers: o.workers === undefined || o.workers === "auto" ? "auto" : (Number(o.workers) as 0 | 1 | 2),
    threads: flagNumber("threads", o.threads, true),
    quantize: o.quantize,
    ...extra,
  };
}

/**
 * The one-line `error: …` a subcommand prints before exiting with 1: the typed error's message, never a stack.
 *
 * @example
 * ```ts
 * console.error(cliErrorLine(new ConfigError("--seed must be an integer")));
 * ```
 */
export function cliErrorLine(e: unknown): string {
  return `error: ${e instanceof PocketTtsError ? e.message : (e as Error)?.message ?? String(e)}`;
}
