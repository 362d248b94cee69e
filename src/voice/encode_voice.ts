/**
 * A voice from a 24 kHz prompt on a model serving other streams: the Mimi encoder and the FlowLM voice prefill run
 * in bounded pieces, each in its own turn of the model's scheduler, so a concurrent stream advances between pieces
 * (its frames keep coming while a 30 s recording is cloned) instead of waiting for the whole clone.
 *
 * Pieces change nothing in the result: the encoder's blocks are those of `MimiEncoder.encodeAll` on one state, and
 * FlowLM projects and attends to each row alone, so prefilling in pieces gives the voice one prefill gives (bit for
 * bit). Each turn encodes one block while FlowLM prefills the latents of earlier blocks: in worker mode the two parts
 * work at the same time, and the latents are never all held at once.
 *
 * @module
 */

import type { RoundRobinScheduler } from "../generate/scheduler.ts";
import type { FlowLmService, MimiService, VoiceRef } from "../generate/services.ts";
import { promptBlocks } from "../runtime/mimi_encoder.ts";

/** Latent frames prefilled per FlowLM call: enough rows that the prefill stays a GEMM, few enough for a short turn. */
export const PREFILL_PIECE_FRAMES = 16;

/** The model parts a clone runs on, and the scheduler their other streams share. */
export interface CloneParts {
  flow: FlowLmService;
  mimi: MimiService;
  scheduler: RoundRobinScheduler;
  /** Audio samples per latent frame (1920). */
  frameSamples: number;
}

/**
 * Encodes `audio` (24 kHz mono) block by block and prefills its latents into a new voice of `parts.flow`, one
 * scheduler turn per block. `onProgress(framesEncoded, frames)` follows each block. On failure nothing is left
 * behind (the partial voice and the encoder state are freed).
 *
 * @example
 * ```ts
 * const ref = await encodeVoice({ flow, mimi, scheduler, frameSamples: 1920 }, audio24k);
 * ```
 */
export async function encodeVoice(
  parts: CloneParts,
  audio: Float32Array,
  onProgress?: (framesEncoded: number, frames: number) => void,
): Promise<VoiceRef> {
  const { flow, mimi, scheduler, frameSamples } = parts;
  const frames = Math.ceil(audio.length / frameSamples);
  const encoding = await mimi.openEncoding();
  let voice: VoiceRef | undefined;
  let pending: Float32Array[] = []; // latents encoded, not yet prefilled
  let pendingFrames = 0;
  const takePending = () => {
    const rows = new Float32Array(pending.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of pending) {
      rows.set(p, at);
      at += p.length;
    }
    pending = [];
    pendingFrames = 0;
    return rows;
  };
  const prefill = async (rows: Float32Array | null) => {
    if (rows) voice = await flow.importLatents(rows, voice?.id);
  };
  /** One turn: `work` in it; both parts' calls settle before the turn ends, whichever fails. */
  const inTurn = async <T>(work: () => Promise<T>[]): Promise<T[]> => {
    const release = await scheduler.turn();
    try {
      const settled = await Promise.allSettled(work());
      const failed = settled.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
    } finally {
      release();
    }
  };
  try {
    let encoded = 0;
    for (const block of promptBlocks(audio, frameSamples)) {
      const ready = pendingFrames >= PREFILL_PIECE_FRAMES ? takePending() : null;
      const [latents] = await inTurn<Float32Array | void>(() => [mimi.encodeBlock(encoding, block), prefill(ready)]);
      pending.push(latents as Float32Array);
      pendingFrames += block.length / frameSamples;
      encoded += block.length / frameSamples;
      onProgress?.(encoded, frames);
    }
    if (pendingFrames > 0) {
      const rows = takePending();
      await inTurn(() => [prefill(rows)]);
    }
    return voice!;
  } catch (e) {
    if (voice) await flow.freeVoice(voice.id).catch(() => {});
    throw e;
  } finally {
    await mimi.closeEncoding(encoding).catch(() => {});
  }
}
