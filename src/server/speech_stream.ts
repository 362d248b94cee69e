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
import type { ServerLimits, StreamGate } from "./limits.ts";
import { HttpError } from "./errors.ts";
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
  /** `maxStallSeconds`: how long a stream waits for a client that stopped reading. */
  limits: Pick<ServerLimits, "maxStallSeconds">;
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
  // Every ending of the body but an error is a clean end: the encoder's tail (so MP3/Ogg/FLAC/WAV data is whole),
  // the slot freed before the close (tests and clients see it free once the body has ended). A stream cut short by
  // shutdown ends the same way, without SSE's `speech.audio.done`, so an SSE client can tell it was cut.
  let ended = false, pulling = false;
  let bodyController: ReadableStreamDefaultController<Uint8Array> | null = null;
  const endBody = async (controller: ReadableStreamDefaultController<Uint8Array>, complete: boolean) => {
    if (ended) return;
    ended = true;
    try {
      controller.enqueue(complete ? ending() : wrap(enc.end()));
    } catch { /* the body was cancelled */ }
    await finish(); // before close: Deno aborts `req.signal` once the response is complete
    try {
      controller.close();
    } catch { /* the body was cancelled */ }
  };
  // Shutdown while no frame is being pulled (the client reads slowly): end the body now.
  ac.signal.addEventListener("abort", () => {
    if (!pulling && bodyController) void endBody(bodyController, false);
  }, { once: true });
  // A client that stops reading stops the pulls (the runtime asks for more only when its buffers have room). If no
  // pull comes for `maxStallSeconds`, the stream errors (the runtime drops the connection) and its slot is freed.
  let stall: ReturnType<typeof setTimeout> | undefined;
  const armStall = () => {
    clearTimeout(stall);
    stall = setTimeout(() => {
      if (ended || pulling || !bodyController) return;
      ended = true;
      bodyController.error(
        new HttpError(408, "client_stalled", `the client read nothing for ${ctx.limits.maxStallSeconds} s`),
      );
      void finish();
    }, ctx.limits.maxStallSeconds * 1000);
  };
  ac.signal.addEventListener("abort", () => clearTimeout(stall), { once: true });
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      bodyController = controller;
      let head = enc.start();
      if (!first.done) {
        frameCount++;
        head = concat(head, enc.frame(first.value));
      }
      controller.enqueue(wrap(head));
      if (first.done) await endBody(controller, true);
      else if (ac.signal.aborted) await endBody(controller, false);
      else armStall();
    },
    async pull(controller) {
      if (ended) return;
      clearTimeout(stall);
      pulling = true;
      try {
        const next = await frames.next();
        if (next.done || ac.signal.aborted) return await endBody(controller, next.done === true && !ac.signal.aborted);
        frameCount++;
        controller.enqueue(wrap(enc.frame(next.value)));
        armStall();
      } catch (e) {
        if (ac.signal.aborted) return await endBody(controller, false); // shutdown or the client left
        ctx.onError(e);
        ended = true;
        controller.error(e);
        await finish();
      } finally {
        pulling = false;
      }
    },
    async cancel() {
      ended = true;
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
