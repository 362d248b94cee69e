/**
 * One speech request, exactly as the reference generates it (spec §3.9, §7; golden README §2.2): per text chunk,
 * a copy of the voice state, the text prefill, the AR loop with the EOS rule, and a fresh Mimi state; the chunks'
 * frames are concatenated. Frames are yielded as soon as they are decoded, while the next latent is generated.
 *
 * The plan's items may arrive over time (`streamText`): the next one is pulled only when the previous one is done.
 * An SSML break is exact silence (whole frames of zeros). A `speculate` item is a chunk the text may be about to
 * close: its prefill runs while the generator would otherwise wait for text, and is kept only if the chunk that
 * then arrives is the same (the prefill ignores its x₀, so the audio is identical either way).
 *
 * @module
 */

import { PocketTtsError } from "../errors.ts";
import type { TextChunk } from "../text/mod.ts";
import type { SpeechItem } from "../text/speech_plan.ts";
import { AsyncQueue } from "./async_queue.ts";
import { untilAborted } from "./text_stream.ts";
import type { RoundRobinScheduler } from "./scheduler.ts";
import type { FlowLmService, MimiService } from "./services.ts";

/** Samples per latent frame (80 ms at 24 kHz). */
export const SAMPLES_PER_FRAME = 1920;

/** Everything one request needs, resolved from the user's options and the config. */
export interface GenerationPlan {
  /** What to speak, in order (an iterable, or items that arrive over time). */
  items: Iterable<PlanItem> | AsyncIterable<PlanItem>;
  voiceId: number;
  /** This request's stream on the FlowLM part (its own state; see `services.ts`). */
  flowStream: number;
  /** This request's stream on the Mimi part. */
  mimiStream: number;
  /** Turns on the shared model: one per chunk prefill and one per frame, round-robin between streams. */
  scheduler: RoundRobinScheduler;
  /** Raw EOS logit threshold (no sigmoid), compared in float32. */
  eosThreshold: number;
  /** Frames after EOS; `undefined` applies each chunk's word-count rule. */
  framesAfterEos?: number;
  lsdSteps: number;
  /** Fills the next FlowLM call's x₀ (32 values, already scaled). */
  nextNoise: (x0: Float32Array) => void;
  onWarning: (message: string) => void;
  signal?: AbortSignal;
  /**
   * Frames the generator may run ahead of the consumer. 0 (single thread): the next latent is made only when the
   * consumer asks for it, so the first frame and an abort are never delayed by work nobody asked for yet. With
   * workers, a small lead lets FlowLM compute the next latent while the decoder works on this one.
   */
  maxAhead: number;
}

/** A step of a plan: a chunk, a break (`frames` of silence), or a chunk the text may be about to close. */
export type PlanItem =
  | Extract<SpeechItem, { type: "chunk" }>
  | { type: "break"; frames: number }
  | { type: "speculate"; chunk: TextChunk };

/** What happened in one chunk (for statistics, captions and tests). */
export interface ChunkReport {
  /** The chunk's text, as prepared and chunked. */
  text: string;
  /** Its token count. */
  tokens: number;
  /** The AR step budget, `ceil((tokens/3 + 2)·12.5)`. */
  maxGenLen: number;
  /** The AR step where the EOS logit first passed the threshold, or `null` when it never did. */
  eosStep: number | null;
  /** Frames emitted (80 ms each). */
  frames: number;
  /** First sample of the chunk's audio in the request's output. */
  start: number;
  /** One past its last sample (`start + frames · 1920`). */
  end: number;
}

function sameChunk(a: TextChunk, b: TextChunk): boolean {
  return a.maxGenLen === b.maxGenLen && a.ids.length === b.ids.length && a.ids.every((id, i) => id === b.ids[i]);
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new PocketTtsError("aborted", "generation was aborted");
}

/**
 * Runs the plan and yields one `Float32Array` of 1920 samples per latent. `reports` receives one entry per chunk.
 */
export async function* generateFrames(
  flow: FlowLmService,
  mimi: MimiService,
  plan: GenerationPlan,
  reports: ChunkReport[] = [],
): AsyncGenerator<Float32Array> {
  const frames = new AsyncQueue<Promise<Float32Array>>();
  // Aborted when the consumer leaves or the request's signal aborts: a stream waiting for its turn leaves the line.
  const stop = new AbortController();
  const onAbort = () => stop.abort(abortError(plan.signal!));
  plan.signal?.addEventListener("abort", onAbort, { once: true });
  const x0 = () => {
    const v = new Float32Array(32);
    plan.nextNoise(v);
    return v;
  };
  const threshold = Math.fround(plan.eosThreshold);
  const turn = () => plan.scheduler.turn(stop.signal);

  let position = 0; // samples emitted so far
  let prefilled: TextChunk | null = null; // a speculative prefill still in the FlowLM state
  const prefill = async (chunk: TextChunk, noise: Float32Array) => {
    const release = await turn();
    try {
      // Together: with workers, the decoder resets its state while FlowLM prefills.
      await Promise.all([
        flow.beginChunk(plan.flowStream, plan.voiceId, chunk.ids, chunk.maxGenLen, noise),
        mimi.reset(plan.mimiStream),
      ]);
    } finally {
      release();
    }
  };

  const produce = async () => {
    const items = Symbol.asyncIterator in plan.items
      ? plan.items[Symbol.asyncIterator]()
      : (plan.items as Iterable<PlanItem>)[Symbol.iterator]();
    try {
      for (;;) {
        // Items may wait for text that never comes: a stop must not wait with them.
        const next = await untilAborted(Promise.resolve(items.next()), stop.signal);
        if (next.done) break;
        await produceItem(next.value);
        if (stop.signal.aborted) return;
      }
    } finally {
      void Promise.resolve(items.return?.()).catch(() => {});
    }
  };

  const produceItem = async (item: PlanItem) => {
    if (item.type === "speculate") {
      await prefill(item.chunk, new Float32Array(32)); // the prefill does not use its x₀
      prefilled = item.chunk;
      return;
    }
    if (item.type === "break") {
      prefilled = null;
      for (let i = 0; i < item.frames; i++) {
        await frames.waitForDemand(plan.maxAhead);
        if (stop.signal.aborted) return;
        frames.push(Promise.resolve(new Float32Array(SAMPLES_PER_FRAME)));
        position += SAMPLES_PER_FRAME;
      }
      return;
    }
    const chunk = item.chunk;
    if (prefilled !== null && sameChunk(prefilled, chunk)) x0(); // consumed, as the prefill would have
    else await prefill(chunk, x0());
    prefilled = null;
    const fae = plan.framesAfterEos ?? chunk.framesAfterEos;
    const report: ChunkReport = {
      text: chunk.text,
      tokens: chunk.ids.length,
      maxGenLen: chunk.maxGenLen,
      eosStep: null,
      frames: 0,
      start: position,
      end: position,
    };
    reports.push(report);
    let input: Float32Array | null = null;
    for (let step = 0; step < chunk.maxGenLen; step++) {
      await frames.waitForDemand(plan.maxAhead);
      if (plan.signal?.aborted) throw abortError(plan.signal);
      if (stop.signal.aborted) return;
      const release = await turn();
      const stepped = flow.step(plan.flowStream, input, x0(), plan.lsdSteps);
      // Where FlowLM's worker runs the decoder's first stages, they take the latent there as the step ends; the
      // frame goes on only if the step does not end the chunk (a frame the loop then drops costs one decode of them).
      const ahead = mimi.decodeStep?.(plan.mimiStream, plan.flowStream);
      ahead?.frame.catch(() => {});
      try {
        const { latent, eosLogit } = await stepped;
        if (report.eosStep === null && eosLogit > threshold) report.eosStep = step;
        if (report.eosStep !== null && step >= report.eosStep + fae) break;
        // Decoding runs while the next latent is generated (in a worker), or right here (single thread).
        ahead?.commit();
        const frame = ahead?.frame ?? mimi.decode(plan.mimiStream, latent.slice());
        frame.catch(() => {}); // the consumer sees the rejection when it reaches this frame
        frames.push(frame);
        report.frames++;
        position += SAMPLES_PER_FRAME;
        report.end = position;
        input = latent;
      } finally {
        ahead?.cancel(); // no-op once committed
        release();
      }
    }
    if (report.eosStep === null) {
      plan.onWarning(
        `chunk "${chunk.text.slice(0, 60)}" reached its maximum length of ${chunk.maxGenLen} frames without an ` +
          "end of speech; this very often indicates an error (try another voice, temperature or eosThreshold)",
      );
    }
  };

  const producer = produce().then(() => frames.close(), (e) => frames.fail(e));
  try {
    for await (const frame of frames) {
      if (plan.signal?.aborted) throw abortError(plan.signal);
      yield await frame;
    }
  } finally {
    plan.signal?.removeEventListener("abort", onAbort);
    if (!stop.signal.aborted) stop.abort(new PocketTtsError("aborted", "the consumer left the stream"));
    frames.close(); // wakes a producer waiting for demand, so it sees the stop
    await producer;
  }
}
