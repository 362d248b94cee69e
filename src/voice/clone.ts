/**
 * Voice cloning inputs: telling a recording from a voice-state file by its content, turning any recording into the
 * 24 kHz mono prompt the Mimi encoder takes (the reference's order: decode, average channels, truncate, resample),
 * and a content key for the per-model clone cache. Browser-safe (no Node APIs): hashing uses `crypto.subtle`.
 *
 * @module
 */
import { InvalidAudioError } from "../errors.ts";
import { decodeAudio } from "../audio/decode.ts";
import { resample } from "../audio/resample.ts";

/** Audio already decoded: mono float samples and their rate. */
export interface AudioSamples {
  /** Mono samples (float, nominally in [−1, 1]). */
  samples: Float32Array;
  /** Samples per second. */
  sampleRate: number;
}

/** Options of cloning a voice from audio. */
export interface CloneOptions {
  /**
   * Longest prompt used, in seconds (default 30, the reference's `truncate=True`); longer recordings are cut
   * there. The reference's own voices use about 10 s; more than 30 s adds little.
   */
  maxSeconds?: number;
  /**
   * Called after each encoder block with the frames (80 ms each) encoded so far and the prompt's total. Not called
   * when the clone comes from the cache.
   */
  onProgress?: (framesEncoded: number, frames: number) => void;
}

/** The default {@link CloneOptions.maxSeconds}. */
export const DEFAULT_MAX_SECONDS = 30;

/** Whether `x` is decoded audio (`{ samples, sampleRate }`) rather than bytes, a path or a URL. */
export function isAudioSamples(x: unknown): x is AudioSamples {
  return typeof x === "object" && x !== null && (x as AudioSamples).samples instanceof Float32Array;
}

/**
 * Whether `bytes` start like a safetensors file (an 8-byte little-endian header length that fits the file, then a
 * JSON object): voice-state files are safetensors; no supported audio format starts this way.
 */
export function isSafetensorsFile(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = v.getUint32(0, true) + v.getUint32(4, true) * 2 ** 32;
  return n >= 2 && n <= bytes.length - 8 && bytes[8] === 0x7b; // '{'
}

function checkMaxSeconds(maxSeconds: number): void {
  if (!(maxSeconds > 0) || !Number.isFinite(maxSeconds)) {
    throw new InvalidAudioError("invalid_audio", `maxSeconds must be a positive number, got ${maxSeconds}`);
  }
}

/**
 * The encoder's input from a recording: decoded (format from the bytes), channels averaged, cut to `maxSeconds`,
 * resampled to `sampleRate` as `scipy.signal.resample_poly` does.
 *
 * @throws {UnsupportedAudioError} a format that is not supported (or not audio at all)
 * @throws {InvalidAudioError} a damaged or cut file, no samples, non-finite samples or a bad `sampleRate`
 */
export async function promptAudio(
  input: Uint8Array | AudioSamples,
  sampleRate: number,
  options: CloneOptions = {},
): Promise<Float32Array> {
  const maxSeconds = options.maxSeconds ?? DEFAULT_MAX_SECONDS;
  checkMaxSeconds(maxSeconds);
  const audio = input instanceof Uint8Array ? await decodeAudio(input, { maxSeconds }) : input; // decodes no further
  if (!Number.isInteger(audio.sampleRate) || audio.sampleRate < 1) {
    throw new InvalidAudioError("invalid_audio", `sampleRate must be a positive integer, got ${audio.sampleRate}`);
  }
  const samples = audio.samples.subarray(0, Math.floor(maxSeconds * audio.sampleRate));
  if (samples.length === 0) throw new InvalidAudioError("invalid_audio", "the recording holds no samples");
  for (const s of samples) {
    if (!Number.isFinite(s)) {
      throw new InvalidAudioError("invalid_audio", "the recording holds NaN or infinite samples");
    }
  }
  if (audio.sampleRate !== sampleRate) return resample(samples, audio.sampleRate, sampleRate);
  // Decoded here: ours already. The caller's samples: copied, so changing them later cannot change the clone.
  return input instanceof Uint8Array ? samples : samples.slice();
}

/** A hex SHA-256 key of a clone's input and options (the same recording and options give the same key). */
export async function cloneKey(input: Uint8Array | AudioSamples, options: CloneOptions = {}): Promise<string> {
  const maxSeconds = options.maxSeconds ?? DEFAULT_MAX_SECONDS;
  const head = new TextEncoder().encode(
    input instanceof Uint8Array ? `bytes ${maxSeconds}\n` : `samples ${input.sampleRate} ${maxSeconds}\n`,
  );
  const body = input instanceof Uint8Array
    ? input
    : new Uint8Array(input.samples.buffer, input.samples.byteOffset, input.samples.byteLength);
  // A digest of the head and the body's digest: the body (the whole recording) is never copied into one buffer.
  // (WebCrypto takes no views of shared memory: those are copied.)
  const plain = body.buffer instanceof ArrayBuffer ? body as Uint8Array<ArrayBuffer> : body.slice();
  const inner = new Uint8Array(await crypto.subtle.digest("SHA-256", plain));
  const all = new Uint8Array(head.length + inner.length);
  all.set(head);
  all.set(inner, head.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A small least-recently-used map: at most `limit` entries, the oldest dropped first. */
export class BoundedCache<V> {
  #limit: number;
  #map = new Map<string, V>();

  /** A cache of at most `limit` entries. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** The entry for `key` (now the most recently used), if present. */
  get(key: string): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  /** Stores `value` under `key`, dropping the least recently used entry when full. */
  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#limit) this.#map.delete(this.#map.keys().next().value!);
  }

  /** Forgets `key`. */
  delete(key: string): void {
    this.#map.delete(key);
  }

  /** Entries held. */
  get size(): number {
    return this.#map.size;
  }
}
