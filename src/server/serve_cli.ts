/**
 * The `serve` subcommand: `serve [--host 127.0.0.1] [--port 8000] [--voices DIR] [--api-key KEY] [model flags]`.
 * Loads the model, registers every voice file in DIR under its file stem, prints the URL, and on SIGINT/SIGTERM ends
 * the streams in flight, stops listening and frees the model, so nothing is left running.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ConfigError } from "../errors.ts";
import { TTSModel } from "../generate/tts_model.ts";
import {
  GENERATION_FLAGS,
  GENERATION_FLAGS_USAGE,
  generationFlagOptions,
  MODEL_FLAGS,
  modelLoadOptions,
} from "../model_flags.ts";
import { createHandler } from "./handler.ts";
import { DEFAULT_LIMITS, type ServerLimits } from "./limits.ts";
import { serve } from "./serve.ts";

/** The `serve --help` text. */
export const SERVE_USAGE = `Usage: pocket-tts serve [options]

Serve the web page, OpenAI's POST /v1/audio/speech, the reference's POST /tts, GET /v1/voices and GET /health.

Options:
  --host HOST               Interface to bind (default 127.0.0.1)
  --port N                  Port (default 8000; 0 picks a free one)
  --voices DIR              Register every voice file in DIR under its file stem (e.g. DIR/anna.safetensors → "anna")
  --default-voice NAME      Voice of requests that name none (default: the model's for /tts; none for the speech API)
  --api-key KEY             Require "Authorization: Bearer KEY" (default $POCKET_TTS_API_KEY; none if unset)
  --cors-origin ORIGIN      Allow browser calls from ORIGIN (repeatable; "*" for any; default none)
  --voice-url-origin ORIGIN Let requests name voice files by URL on ORIGIN (repeatable; default none)
  --voice-uploads           Let clients add and delete custom voices (POST/DELETE /v1/voices)
  --max-streams N           Streams generated at once (default ${DEFAULT_LIMITS.maxStreams})
  --max-queue N             Requests waiting beyond that (default ${DEFAULT_LIMITS.maxQueue}; then 503)
  --max-input-chars N       Longest input text (default ${DEFAULT_LIMITS.maxInputChars})
  --max-stall-seconds N     Drop a client that stops reading after N s (default ${DEFAULT_LIMITS.maxStallSeconds})
  --language NAME | --model DIR|URL, --simd, --workers, --threads, --quantize, --cache-dir, --offline   As for generation
Generation settings for every request (requests may still set seed, temperature, lsd_steps):
${GENERATION_FLAGS_USAGE}
  -h, --help                Show this help`;

const OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  voices: { type: "string" },
  "default-voice": { type: "string" },
  "api-key": { type: "string" },
  "cors-origin": { type: "string", multiple: true },
  "voice-url-origin": { type: "string", multiple: true },
  "voice-uploads": { type: "boolean" },
  "max-streams": { type: "string" },
  "max-queue": { type: "string" },
  "max-input-chars": { type: "string" },
  "max-stall-seconds": { type: "string" },
  ...MODEL_FLAGS,
  ...GENERATION_FLAGS,
  help: { type: "boolean", short: "h" },
} as const;

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

function count(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`--${name} must be an integer ≥ ${min}, got "${v}"`);
  return n;
}

/** Every voice file of `dir` by file stem (hidden files and subdirectories are skipped). */
async function readVoiceDir(dir: string, warn: (s: string) => void): Promise<Record<string, Uint8Array>> {
  const fs = await import("node:fs/promises");
  const { join, extname, basename } = await import("node:path");
  const out: Record<string, Uint8Array> = {};
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new ConfigError(`--voices ${dir}: ${(e as Error).message}`);
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (!e.isFile() || e.name.startsWith(".")) continue;
    const stem = basename(e.name, extname(e.name));
    if (stem in out) {
      warn(`warning: voice "${stem}" appears twice in ${dir}; keeping the first file`);
      continue;
    }
    out[stem] = new Uint8Array(await fs.readFile(join(dir, e.name)));
  }
  return out;
}

function onSignals(fn: () => void): void {
  for (const sig of ["SIGINT", "SIGTERM"]) {
    if (g.Deno) g.Deno.addSignalListener(sig, fn);
    else g.process.on(sig, fn);
  }
}

/**
 * Runs `serve` with its arguments; resolves with the exit code once the server has stopped.
 *
 * @example
 * ```ts
 * await runServe(["--model", "models/tiny", "--port", "8000"], { stdout: console.log, stderr: console.error });
 * ```
 */
export async function runServe(
  argv: string[],
  io: { stdout: (s: string) => void; stderr: (s: string) => void },
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false, strict: true });
  } catch (e) {
    throw new ConfigError(`${(e as Error).message} (see serve --help)`);
  }
  const o = parsed.values;
  if (o.help) {
    io.stdout(SERVE_USAGE);
    return 0;
  }
  const port = count("port", o.port, 0) ?? 8000;
  if (port > 65535) throw new ConfigError(`--port must be at most 65535`);
  const limits: Partial<ServerLimits> = {};
  const set = (k: keyof ServerLimits, v: number | undefined) => v !== undefined && (limits[k] = v);
  set("maxStreams", count("max-streams", o["max-streams"], 1));
  set("maxQueue", count("max-queue", o["max-queue"], 0));
  set("maxInputChars", count("max-input-chars", o["max-input-chars"], 1));
  set("maxStallSeconds", count("max-stall-seconds", o["max-stall-seconds"], 1));
  const loadOptions = modelLoadOptions(o, { onNotice: io.stderr });
  const generation = Object.fromEntries(
    Object.entries(generationFlagOptions(o)).filter(([, v]) => v !== undefined),
  );
  const apiKey = o["api-key"] ?? (g.Deno ? g.Deno.env.get("POCKET_TTS_API_KEY") : g.process?.env?.POCKET_TTS_API_KEY);
  const voices = o.voices !== undefined ? await readVoiceDir(o.voices, io.stderr) : {};

  const tts = await TTSModel.load(loadOptions);
  try {
    const handler = createHandler(tts, {
      apiKey: apiKey || undefined,
      cors: o["cors-origin"] ? { origins: o["cors-origin"] } : undefined,
      voiceUrlOrigins: o["voice-url-origin"],
      voiceUploads: o["voice-uploads"] ?? false,
      defaultVoice: o["default-voice"],
      voices,
      limits,
      generation,
      onError: (e) => io.stderr(`error: ${(e as Error)?.stack ?? e}`),
    });
    await handler.ready;
    const server = await serve(handler, { host: o.host, port });
    const names = Object.keys(voices);
    io.stdout(`listening on ${server.url}` + (names.length ? ` (voices: ${names.join(", ")})` : ""));
    await new Promise<void>((resolve) => onSignals(resolve));
    io.stderr("stopping: ending streams in flight");
    await handler.close();
    await server.close();
    return 0;
  } finally {
    tts.dispose();
  }
}
