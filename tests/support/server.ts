/**
 * The server under test: the tiny model behind `createHandler`, listening on loopback through `serve` (Deno.serve,
 * Bun.serve or node:http, whichever runtime runs the test), with the tiny voice registered as "tiny".
 */
import { readFileSync } from "node:fs";
import { encodeWav, type GenerateOptions, TTSModel, WavStreamWriter } from "../../mod.ts";
import { createHandler, type HandlerOptions, serve, type SpeechHandler } from "../../src/server/mod.ts";
import { TINY_MODEL_DIR, TINY_VOICE } from "./tiny_model.ts";

/** A running test server. */
export interface TestServer {
  base: string;
  tts: TTSModel;
  handler: SpeechHandler;
}

/**
 * Generation that runs each chunk to its full length (the tiny model otherwise ends after about 3 frames), for tests
 * that need long streams.
 */
export const LONG_STREAMS: GenerateOptions = { eosThreshold: 1e9 };

/** Starts a server on the tiny model with `options`, runs `fn`, stops everything. */
export async function withServer<T>(
  options: HandlerOptions,
  fn: (s: TestServer) => Promise<T>,
  load: { workers?: 0 | 2 | "auto" } = {},
): Promise<T> {
  const tts = await TTSModel.load({ model: TINY_MODEL_DIR, workers: load.workers ?? "auto" });
  try {
    const handler = createHandler(tts, {
      voices: { tiny: new Uint8Array(readFileSync(TINY_VOICE)) },
      onError: (e) => console.error("server error in test:", e),
      ...options,
    });
    await handler.ready;
    const server = await serve(handler, { port: 0 });
    try {
      return await fn({ base: server.url, tts, handler });
    } finally {
      await handler.close();
      await server.close();
    }
  } finally {
    tts.dispose();
  }
}

/**
 * The bytes the server must send for `text` with the tiny voice and `seed` (no trailing silence unless asked).
 * `generation` repeats the server's `generation` option.
 */
export async function expectedAudio(
  tts: TTSModel,
  text: string,
  seed: number,
  format: "wav" | "pcm",
  trailingSilenceMs = 0,
  generation: GenerateOptions = {},
): Promise<Uint8Array> {
  const voice = await tts.loadVoice(new Uint8Array(readFileSync(TINY_VOICE)));
  const audio = await tts.generate(text, { ...generation, voice, seed, onWarning: () => {} });
  await tts.freeVoice(voice);
  if (format === "wav") return encodeWav(audio, tts.sampleRate, { unknownLength: true, trailingSilenceMs });
  const w = new WavStreamWriter(tts.sampleRate);
  const body = w.encode(audio), tail = w.silence(trailingSilenceMs);
  const out = new Uint8Array(body.length + tail.length);
  out.set(body);
  out.set(tail, body.length);
  return out;
}

/** POSTs JSON to the OpenAI speech route. */
export function speech(
  base: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${base}/v1/audio/speech`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal,
  });
}

/** The error object of a JSON error response (asserting its OpenAI shape). */
export async function errorOf(res: Response): Promise<{ message: string; type: string; code: string }> {
  const body = await res.json();
  if (typeof body?.error?.message !== "string" || typeof body.error.code !== "string") {
    throw new Error(`not an OpenAI-style error: ${JSON.stringify(body)}`);
  }
  return body.error;
}
