/**
 * Pitch-preserving time-stretch by WSOLA (waveform-similarity overlap-add; Verhelst & Roelands, 1993), streaming:
 * the OpenAI speech API's `speed` (0.25–4.0).
 *
 * Output is built from Hann-windowed segments of the input, 30 ms long, laid every 15 ms (50 % overlap). Output frame
 * k would take the input at `k · 15 ms · speed`; WSOLA instead takes the segment within ±12.5 ms of that point that
 * best continues the previous segment (highest normalised cross-correlation with the input that naturally followed
 * it), so periods line up and the pitch is kept. Overlap-added samples are divided by the summed window, which is 1
 * inside the stream and exact at its edges.
 *
 * Decisions depend only on the input, never on how it was split into `push` calls: streaming output equals the
 * one-shot output sample for sample. Output length is `round(input length / speed)`.
 *
 * @module
 */
import { InvalidAudioError } from "../errors.ts";

/** Slowest and fastest speeds accepted (the OpenAI speech API's range). */
export const SPEED_RANGE = [0.25, 4.0] as const;

/**
 * Streams audio through a WSOLA time-stretch: `push` input blocks, send what each returns, then `end()`.
 *
 * @example
 * ```ts
 * const stretch = new TimeStretcher(1.5, 24000); // 1.5× faster, same pitch
 * for await (const frame of tts.stream("Hello there.")) send(stretch.push(frame));
 * send(stretch.end());
 * ```
 */
export class TimeStretcher {
  /** The speed factor (output duration = input duration / speed). */
  readonly speed: number;
  #hop: number; // synthesis hop
  #size: number; // window length = 2 · hop
  #tolerance: number; // search range ± around the nominal position
  #window: Float32Array;
  // Input: samples from absolute index #inBase on; #inLength samples pushed in total.
  #input = new Float32Array(0);
  #inBase = 0;
  #inLength = 0;
  // Output accumulators from absolute output index #outBase on (samples before it were emitted).
  #acc = new Float64Array(0);
  #weight = new Float64Array(0);
  #outBase = 0;
  #frame = 0;
  #previous = 0; // input position of the previous frame's segment
  #ended = false;

  /**
   * Create a stretcher for one stream.
   *
   * @param speed output speed factor, 0.25 to 4 (1 passes the audio through unchanged)
   * @param sampleRate samples per second (sets the 30 ms window)
   * @throws {InvalidAudioError} `"invalid_audio"` for a speed outside [0.25, 4] or a bad sample rate
   */
  constructor(speed: number, sampleRate: number) {
    if (!(speed >= SPEED_RANGE[0] && speed <= SPEED_RANGE[1])) {
      throw new InvalidAudioError("invalid_audio", `speed ${speed} is outside ${SPEED_RANGE[0]}–${SPEED_RANGE[1]}`);
    }
    if (!Number.isInteger(sampleRate) || sampleRate < 1000) {
      throw new InvalidAudioError("invalid_audio", `invalid sample rate ${sampleRate} for time-stretching`);
    }
    this.speed = speed;
    this.#hop = Math.round(sampleRate * 0.015);
    this.#size = 2 * this.#hop;
    this.#tolerance = Math.round(sampleRate * 0.0125);
    // Periodic Hann: copies shifted by half its length sum to exactly 1.
    this.#window = Float32Array.from(
      { length: this.#size },
      (_, n) => 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / this.#size),
    );
  }

  /**
   * Take the next input samples; returns the output samples that are final now (possibly none).
   *
   * @example
   * ```ts
   * const out = new TimeStretcher(2, 24000).push(new Float32Array(1920)); // ≈ 960 samples, some held back
   * ```
   */
  push(samples: Float32Array): Float32Array {
    if (this.#ended) throw new InvalidAudioError("invalid_audio", "TimeStretcher.push after end()");
    if (this.speed === 1) {
      this.#inLength += samples.length;
      return samples.slice();
    }
    this.#append(samples);
    return this.#run(false);
  }

  /**
   * Flush: the rest of the output (the input is taken as followed by silence), up to `round(input / speed)` samples
   * in all.
   *
   * @example
   * ```ts
   * const stretch = new TimeStretcher(0.5, 24000);
   * const all = [stretch.push(new Float32Array(24000)), stretch.end()]; // 48000 samples in total
   * ```
   */
  end(): Float32Array {
    if (this.#ended) return new Float32Array(0);
    this.#ended = true;
    return this.speed === 1 ? new Float32Array(0) : this.#run(true);
  }

  /** Total output samples for the input so far, once ended. */
  #target(): number {
    return Math.round(this.#inLength / this.speed);
  }

  #append(samples: Float32Array): void {
    // Keep only what future frames can still read: from the earliest of the next search window and the natural
    // continuation of the previous segment.
    const nominal = Math.round(this.#frame * this.#hop * this.speed);
    const keepFrom = Math.max(0, Math.min(nominal - this.#tolerance, this.#previous + this.#hop));
    const drop = Math.max(0, keepFrom - this.#inBase);
    const kept = this.#input.subarray(drop);
    const grown = new Float32Array(kept.length + samples.length);
    grown.set(kept);
    grown.set(samples, kept.length);
    this.#input = grown;
    this.#inBase += drop;
    this.#inLength += samples.length;
  }

  /** Input samples [from, to) as one array, zeros past the end (the stream is followed by silence). */
  #range(from: number, to: number): Float32Array {
    const out = new Float32Array(to - from);
    const a = Math.max(from, this.#inBase);
    const b = Math.min(to, this.#inBase + this.#input.length);
    if (b > a) out.set(this.#input.subarray(a - this.#inBase, b - this.#inBase), a - from);
    return out;
  }

  /** Where frame k's segment starts in the input. */
  #choose(nominal: number): number {
    if (this.#frame === 0) return 0;
    const size = this.#size;
    const natural = this.#range(this.#previous + this.#hop, this.#previous + this.#hop + size);
    const lo = Math.max(0, nominal - this.#tolerance);
    const hi = nominal + this.#tolerance;
    const candidates = this.#range(lo, hi + size);
    // Normalised cross-correlation over every 4th sample of the window: a quarter of the work, the same choice for
    // signals below 3 kHz (which carry the pitch).
    let best = lo;
    let bestScore = -Infinity;
    for (let p = 0; p <= hi - lo; p++) {
      let dot = 0;
      let energy = 0;
      for (let n = 0; n < size; n += 4) {
        const c = candidates[p + n];
        dot += c * natural[n];
        energy += c * c;
      }
      const score = energy > 0 ? dot / Math.sqrt(energy) : 0;
      if (score > bestScore) [best, bestScore] = [lo + p, score];
    }
    return best;
  }

  #run(ending: boolean): Float32Array {
    const target = this.#target();
    for (;;) {
      const nominal = Math.round(this.#frame * this.#hop * this.speed);
      const outStart = this.#frame * this.#hop;
      if (
        ending
          ? outStart >= target
          : Math.max(nominal + this.#tolerance, this.#previous + this.#hop) + this.#size > this.#inLength
      ) {
        break;
      }
      const at = this.#choose(nominal);
      this.#overlapAdd(outStart, at);
      this.#previous = at;
      this.#frame++;
    }
    // Samples before the next frame's start are final (a frame only touches its own 2 hops).
    const final = ending ? target : Math.min(this.#frame * this.#hop, target);
    return this.#emit(Math.max(final, this.#outBase));
  }

  #overlapAdd(outStart: number, at: number): void {
    const end = outStart + this.#size - this.#outBase;
    if (end > this.#acc.length) {
      const acc = new Float64Array(end + this.#size);
      const weight = new Float64Array(end + this.#size);
      acc.set(this.#acc);
      weight.set(this.#weight);
      this.#acc = acc;
      this.#weight = weight;
    }
    const segment = this.#range(at, at + this.#size);
    for (let n = 0, o = outStart - this.#outBase; n < this.#size; n++, o++) {
      const w = this.#window[n];
      this.#acc[o] += w * segment[n];
      this.#weight[o] += w;
    }
  }

  #emit(upTo: number): Float32Array {
    const count = upTo - this.#outBase;
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const w = i < this.#weight.length ? this.#weight[i] : 0;
      // The window sum is 1 inside the stream; near the first sample it is small, and 0 only where nothing was laid.
      out[i] = w > 1e-6 ? this.#acc[i] / w : 0;
    }
    this.#acc = this.#acc.slice(Math.min(count, this.#acc.length));
    this.#weight = this.#weight.slice(Math.min(count, this.#weight.length));
    this.#outBase = upTo;
    return out;
  }
}
