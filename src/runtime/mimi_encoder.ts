/**
 * The Mimi encoder in the wasm core (voice cloning): 24 kHz mono audio → raw latents at 12.5 Hz (`inner_dim` values
 * per 1920 samples).
 *
 * A {@link MimiEncoder} owns the packed weights (taken once from the core's weight store, which must hold the
 * checkpoint's `mimi.encoder.*`, `mimi.encoder_transformer.*` and `mimi.downsample.*` tensors). {@link
 * MimiEncoder.encodeAll} does what the reference's `encode_to_latent` does for a whole prompt: right-pads it with
 * zeros to whole frames and encodes it from a fresh state, block by block, so memory does not grow with its length.
 * {@link promptBlocks} cuts a prompt into those same blocks, so a caller can encode one block per call (voice cloning
 * does, one scheduler turn each, so other streams advance between blocks) and get exactly `encodeAll`'s latents.
 * The latents are **raw** (not normalised): voice conditioning takes them through `speaker_proj_weight`.
 *
 * @example
 * ```ts
 * const core = await loadCore();
 * await loadWeightsIntoCore(core, reader, isEncoderTensor);
 * const encoder = MimiEncoder.create(core, config);
 * const latents = encoder.encodeAll(audio24k); // [frames × 32], frames = ceil(samples / 1920)
 * ```
 *
 * @module
 */

import { WasmCoreError } from "../errors.ts";
import type { PocketTtsConfig } from "../model/config.ts";
import { mimiDecoderParams } from "./mimi_decoder.ts";
import { CoreStream, readTapList } from "./core_stream.ts";
import type { PocketCore } from "./wasm.ts";

/** The core exports this wrapper uses (see `crates/pocket_core/src/exports/mimi_encoder.rs`). */
interface MimiEncoderExports {
  mimi_encoder_new(params: number, len: number): number;
  mimi_encoder_free(h: number): void;
  mimi_encoder_frame_samples(h: number): number;
  mimi_encoder_inner_dim(h: number): number;
  mimi_encoder_weight_bytes(h: number): number;
  mimi_encoder_macs_per_frame(h: number): number;
  mimi_encoder_tap_names_ptr(h: number): number;
  mimi_encoder_tap_names_len(h: number): number;
  mimi_encoder_state_new(h: number, maxFrames: number): number;
  mimi_encoder_state_free(s: number): void;
  mimi_encoder_state_reset(s: number): number;
  mimi_encoder_state_bytes(s: number): number;
  mimi_encoder_state_position(s: number): number;
  mimi_encoder_state_set_taps(h: number, s: number, on: number): number;
  mimi_encoder_state_tap_ptr(s: number, id: number): number;
  mimi_encoder_state_tap_len(s: number, id: number): number;
  mimi_encode(h: number, s: number, audio: number, nFrames: number, out: number): number;
}

/** Whether a checkpoint tensor belongs to the encoder side of Mimi. */
export function isEncoderTensor(name: string): boolean {
  return /^mimi\.(encoder\.|encoder_transformer\.|downsample\.)/.test(name);
}

/** Frames per encoder block (one call): bounds scratch memory (about 6 MB per frame at full size) and call time. */
export const ENCODE_BLOCK_FRAMES = 2;

/**
 * The blocks a prompt is encoded in, in order: `ENCODE_BLOCK_FRAMES` frames each (the last one may be shorter), right-
 * padded with zeros to whole frames as the reference pads. Whole blocks are views of `audio`; only the last, padded
 * block is a copy. Encoding them in order on one fresh state is {@link MimiEncoder.encodeAll}.
 *
 * @example
 * ```ts
 * const state = encoder.createState({ maxFrames: ENCODE_BLOCK_FRAMES });
 * for (const block of promptBlocks(audio, encoder.frameSamples)) latents.push(state.encode(block));
 * ```
 */
export function* promptBlocks(audio: Float32Array, frameSamples: number): Generator<Float32Array> {
  const step = ENCODE_BLOCK_FRAMES * frameSamples;
  for (let i = 0; i < audio.length; i += step) {
    const end = i + step;
    if (end <= audio.length) {
      yield audio.subarray(i, end);
    } else {
      const block = new Float32Array(Math.ceil((audio.length - i) / frameSamples) * frameSamples);
      block.set(audio.subarray(i));
      yield block;
    }
  }
}

/** The Mimi encoder's weights inside one core instance. */
export class MimiEncoder {
  /** The core instance the encoder lives in. */
  readonly core: PocketCore;
  /** Values per latent frame (`inner_dim`, 32). */
  readonly innerDim: number;
  /** Audio samples per latent frame (1920). */
  readonly frameSamples: number;
  /** Names of the intermediate outputs a state records with `setTaps(true)`, in order. */
  readonly tapNames: readonly string[];
  /** Channels of each tap, by name. */
  readonly tapChannels: ReadonlyMap<string, number>;
  #raw: MimiEncoderExports;
  #handle: number;
  #states = new Set<MimiEncoderState>();

  private constructor(core: PocketCore, handle: number) {
    this.core = core;
    this.#raw = core.raw as unknown as MimiEncoderExports;
    this.#handle = handle;
    this.innerDim = this.#raw.mimi_encoder_inner_dim(handle);
    this.frameSamples = this.#raw.mimi_encoder_frame_samples(handle);
    const taps = readTapList(
      core,
      this.#raw.mimi_encoder_tap_names_ptr(handle),
      this.#raw.mimi_encoder_tap_names_len(handle),
    );
    this.tapNames = taps.names;
    this.tapChannels = taps.channels;
  }

  /**
   * Builds the encoder from the encoder-side `mimi.*` tensors in `core`'s weight store (they are taken out of the
   * store) and the config's hyper-parameters.
   *
   * @throws {ConfigError} for an unsupported config
   * @throws {WasmCoreError} when a tensor is missing or has the wrong shape (the message names it)
   */
  static create(core: PocketCore, config: PocketTtsConfig): MimiEncoder {
    const raw = core.raw as unknown as MimiEncoderExports;
    const inner = config.mimi.inner_dim ?? config.mimi.seanet.dimension;
    const [pp, pn] = core.putString(`${mimiDecoderParams(config)} inner_dim=${inner}`);
    try {
      return new MimiEncoder(core, core.check(raw.mimi_encoder_new(pp, pn), "creating the Mimi encoder"));
    } finally {
      if (pn) core.free(pp, pn);
    }
  }

  /** Bytes of packed weights in wasm memory. */
  get weightBytes(): number {
    return this.#raw.mimi_encoder_weight_bytes(this.#live());
  }

  /** Multiply-accumulates per frame in the projections and convolutions (attention scores excluded). */
  get macsPerFrame(): number {
    return this.#raw.mimi_encoder_macs_per_frame(this.#live());
  }

  /**
   * A new stream, starting at position 0.
   *
   * @throws {WasmCoreError} when `maxFrames` is out of range (1…256) or memory runs out
   */
  createState(options: { maxFrames?: number } = {}): MimiEncoderState {
    const maxFrames = options.maxFrames ?? 1;
    if (!Number.isInteger(maxFrames) || maxFrames < 1 || maxFrames > 256) {
      throw new WasmCoreError(`maxFrames must be an integer in 1…256, got ${maxFrames}`);
    }
    const s = this.core.check(
      this.#raw.mimi_encoder_state_new(this.#live(), maxFrames),
      "creating a Mimi encoder state",
    );
    const state = new MimiEncoderState(this, this.#raw, this.#handle, s, maxFrames, () => this.#states.delete(state));
    this.#states.add(state);
    return state;
  }

  /**
   * Encodes a whole prompt as the reference's `encode_to_latent` does: right-padded with zeros to a whole number of
   * frames, from a fresh state. Returns `[ceil(samples / frameSamples) × innerDim]` raw latents, frame after frame.
   */
  encodeAll(audio: Float32Array): Float32Array {
    const frames = Math.ceil(audio.length / this.frameSamples);
    const state = this.createState({ maxFrames: Math.max(1, Math.min(ENCODE_BLOCK_FRAMES, frames)) });
    try {
      const out = new Float32Array(frames * this.innerDim);
      let at = 0;
      for (const block of promptBlocks(audio, this.frameSamples)) {
        state.encodeInto(block, out.subarray(at));
        at += (block.length / this.frameSamples) * this.innerDim;
      }
      return out;
    } finally {
      state.free();
    }
  }

  /** Frees the weights and every state still open. The encoder cannot be used afterwards. */
  free(): void {
    if (this.#handle === 0) return;
    for (const s of [...this.#states]) s.free();
    this.#raw.mimi_encoder_free(this.#handle);
    this.#handle = 0;
  }

  #live(): number {
    if (this.#handle === 0) throw new WasmCoreError("the Mimi encoder has been freed");
    return this.#handle;
  }
}

/** One audio stream of a {@link MimiEncoder}: carried state, KV ring and scratch, all in wasm memory. */
export class MimiEncoderState extends CoreStream {
  /** The encoder this stream belongs to. */
  readonly encoder: MimiEncoder;
  #raw: MimiEncoderExports;
  #enc: number;

  /** @internal use {@link MimiEncoder.createState}. */
  constructor(
    encoder: MimiEncoder,
    raw: MimiEncoderExports,
    enc: number,
    handle: number,
    maxFrames: number,
    onFree: () => void,
  ) {
    const calls = {
      free: (s: number) => raw.mimi_encoder_state_free(s),
      reset: (s: number) => raw.mimi_encoder_state_reset(s),
      position: (s: number) => raw.mimi_encoder_state_position(s),
      bytes: (s: number) => raw.mimi_encoder_state_bytes(s),
      setTaps: (s: number, on: number) => raw.mimi_encoder_state_set_taps(enc, s, on),
      tapLen: (s: number, id: number) => raw.mimi_encoder_state_tap_len(s, id),
      tapPtr: (s: number, id: number) => raw.mimi_encoder_state_tap_ptr(s, id),
    };
    const io = { inBytes: maxFrames * encoder.frameSamples * 4, outBytes: maxFrames * encoder.innerDim * 4 };
    const taps = { names: encoder.tapNames, channels: encoder.tapChannels };
    super(encoder.core, calls, handle, maxFrames, io, taps, "Mimi encoder state", onFree);
    this.encoder = encoder;
    this.#raw = raw;
    this.#enc = enc;
  }

  /**
   * Encodes `audio` (a whole number of frames) into a new array of `F × innerDim` raw latents, continuing the stream.
   *
   * @throws {WasmCoreError} when `audio` is not a whole number of frames or the state was freed
   */
  encode(audio: Float32Array): Float32Array {
    const out = new Float32Array(Math.floor(audio.length / this.encoder.frameSamples) * this.encoder.innerDim);
    this.encodeInto(audio, out);
    return out;
  }

  /**
   * As {@link encode}, writing into `out` (at least `F × innerDim` values).
   *
   * @throws {WasmCoreError} when `audio` is not a whole number of frames, `out` is too short or the state was freed
   */
  encodeInto(audio: Float32Array, out: Float32Array): void {
    const h = this.live();
    const { innerDim, frameSamples, core } = this.encoder;
    if (audio.length % frameSamples !== 0) {
      throw new WasmCoreError(
        `audio of ${audio.length} samples is not a whole number of ${frameSamples}-sample frames`,
      );
    }
    const frames = audio.length / frameSamples;
    if (out.length < frames * innerDim) {
      throw new WasmCoreError(`latent buffer of ${out.length} values is too short for ${frames} frames`);
    }
    for (let f0 = 0; f0 < frames; f0 += this.maxFrames) {
      const f = Math.min(this.maxFrames, frames - f0);
      core.f32(this.inPtr, f * frameSamples).set(audio.subarray(f0 * frameSamples, (f0 + f) * frameSamples));
      core.check(this.#raw.mimi_encode(this.#enc, h, this.inPtr, f, this.outPtr), "Mimi encode");
      out.set(core.f32(this.outPtr, f * innerDim), f0 * innerDim);
    }
  }
}
