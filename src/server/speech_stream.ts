/**
 * One speech response: admission through the {@link StreamGate}, the model's frames encoded as they are generated,
 * and the cleanup every ending shares (normal end, error, client gone, shutdown): the generation is stopped (within
 * one frame), its state freed, the gate slot and the voice released — once.
 *
 * The first frame is generated before the response starts, so a request that fails early gets a JSON error with
 * the right status instead of a broken audio stream.
 *
 * @module
 */

import type { GenerateOptions, TTSModel } from "../generate/tts_model.ts";
import type { ResponseEncoder } from "./formats.ts";
import type { StreamGate } from "./limits.ts";
import type { VoiceLease } from "./voices.ts";

/** What every speech response needs from the server. */
export interface StreamContext {
  tts: TTSModel;
  gate: StreamGate;
  /** The responses in flight: aborting the controller ends one, the promise settles once it has cleaned up. */
  inflight: Map<AbortController, Promise<void>>;
  /** Errors that are not the client's fault (the operator's log). */
  onError: (e: unknown) => void;
  /** The operator's generation settings, under each request's own. */
  generation: GenerateOptions;
}

/** One request's speech job. */
export interface SpeechJob {
  text: string;
  voice: VoiceLease;
  seed?: number;
  temperature?: number;
  lsdSteps?: number;
  encoder: ResponseEncoder;
  /** Wrap the audio in OpenAI's server-sent events (`speech.audio.delta` / `speech.audio.done`). */
  sse?: boolean;
  /** Extra response headers. */
  headers?: Record<string, string>;
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const utf8 = new TextEncoder();
const event = (body: unknown) => utf8.encode(`data: ${JSON.stringify(body)}\n\n`);

/**
 * Streams `job` as the response to `req`. Throws (for the caller's error response) when the request cannot start:
 * a full queue (503), bad input found by the model, or a client that left while waiting.
 */
export async function streamSpeech(ctx: StreamContext, req: Request, job: SpeechJob): Promise<Response> {
  let releaseSlot: () => void;
  try {
    releaseSlot = await ctx.gate.enter(req.signal);
  } catch (e) {
    job.voice.release();
    throw e;
  }
  const ac = new AbortController();
  const onClientGone = () => ac.abort();
  req.signal.addEventListener("abort", onClientGone, { once: true });
  let cleaned!: () => void;
  ctx.inflight.set(ac, new Promise<void>((r) => cleaned = r));
  let tokens = 0, frameCount = 0;
  const frames = ctx.tts.stream(job.text, {
    ...ctx.generation,
    voice: job.voice.voice,
    seed: job.seed,
    temperature: job.temperature ?? ctx.generation.temperature,
    lsdSteps: job.lsdSteps ?? ctx.generation.lsdSteps,
    signal: ac.signal,
    onWarning: () => {}, // a chunk without end of speech is the model's normal behaviour on odd input
    onChunk: (r) => tokens += r.tokens,
  });

  let finished: Promise<void> | null = null;
  const finish = (): Promise<void> => {
    finished ??= (async () => {
      ac.abort();
      try {
        await frames.return(undefined); // waits for the generator to stop and free the stream's state
      } catch { /* it already failed */ }
      req.signal.removeEventListener("abort", onClientGone);
      ctx.inflight.delete(ac);
      releaseSlot();
      job.voice.release();
      cleaned();
    })();
    return finished;
  };
  ac.signal.addEventListener("abort", () => void finish(), { once: true });

  let first: IteratorResult<Float32Array>;
  try {
    first = await frames.next();
  } catch (e) {
    await finish();
    throw e;
  }

  const enc = job.encoder;
  const wrap = (bytes: Uint8Array) =>
    job.sse ? (bytes.length ? event({ type: "speech.audio.delta", audio: base64(bytes) }) : bytes) : bytes;
  const ending = () => {
    const tail = enc.end();
    if (!job.sse) return tail;
    const usage = { input_tokens: tokens, output_tokens: frameCount, total_tokens: tokens + frameCount };
    return concat(wrap(tail), event({ type: "speech.audio.done", usage }));
  };
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      let head = enc.start();
      if (!first.done) {
        frameCount++;
        head = concat(head, enc.frame(first.value));
      }
      controller.enqueue(wrap(head));
      if (first.done) {
        controller.enqueue(ending());
        await finish(); // before close: Deno aborts `req.signal` once the response is complete
        controller.close();
      }
    },
    async pull(controller) {
      try {
        const next = await frames.next();
        if (next.done) {
          controller.enqueue(ending());
          await finish();
          controller.close();
          return;
        }
        frameCount++;
        controller.enqueue(wrap(enc.frame(next.value)));
      } catch (e) {
        if (!ac.signal.aborted) ctx.onError(e);
        controller.error(e);
        await finish();
      }
    },
    async cancel() {
      await finish();
    },
  }, { highWaterMark: 0 });
  return new Response(body, {
    headers: {
      "content-type": job.sse ? "text/event-stream" : enc.contentType,
      "cache-control": "no-store",
      ...job.headers,
    },
  });
}
