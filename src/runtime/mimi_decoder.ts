/**
 * The Mimi decoder in the wasm core: latent frames (12.5 Hz, 32 values each) → 24 kHz audio, 1920 samples per
 * frame, streaming.
 *
 * A {@link MimiDecoder} owns the packed weights (taken once from the core's weight store, which must hold the
 * checkpoint's `mimi.*` tensors); each {@link MimiDecoderState} is one audio stream (one text chunk in the
 * reference) with its own carried convolution state and transformer KV ring. Decoding frame by frame or several
 * frames at once gives the same audio (up to float rounding).
 *
 * **Input space.** `decode` takes **de-normalised** latents `z = latent · emb_std + emb_mean` (what upstream's
 * `mimi.decode_from_latent` takes, the golden `latent` tensor), unless the decoder was created with
 * `latentStats`: then it takes **normalised** latents (FlowLM's output space) and de-normalises them itself.
 *
 * @example
 * ```ts
 * const core = await loadCore();
 * await loadWeightsIntoCore(core, reader, (n) => n.startsWith("mimi."));
 * const decoder = MimiDecoder.create(core, config, {
 *   latentStats: { mean: await reader.float32("flow_lm.emb_mean"), std: await reader.float32("flow_lm.emb_std") },
 * });
 * const stream = decoder.createState();
 * const audio = stream.decode(latent); // one frame in (32 values), 1920 samples out
 * ```
 *
 * @module
 */

import { ConfigError, WasmCoreError } from "../errors.ts";
import type { PocketTtsConfig } from "../model/config.ts";
import type { PocketCore } from "./wasm.ts";
import { CoreStream, readTapList } from "./core_stream.ts";

export type { MimiTap } from "./core_stream.ts";

/** The core exports this wrapper uses (see `crates/pocket_core/src/exports/mimi.rs`). */
interface MimiExports {
  mimi_decoder_new(params: number, len: number): number;
  mimi_decoder_free(h: number): void;
  mimi_decoder_plan(params: number, len: number): number;
  mimi_decoder_set_latent_stats(h: number, mean: number, std: number): number;
  mimi_decoder_frame_samples(h: number): number;
  mimi_decoder_latent_dim(h: number): number;
  mimi_decoder_in_len(h: number): number;
  mimi_plan_new(params: number, len: number): number;
  mimi_plan_ptr(h: number): number;
  mimi_plan_len(h: number): number;
  mimi_plan_free(h: number): void;
  mimi_decoder_weight_bytes(h: number): number;
  mimi_decoder_macs_per_frame(h: number): number;
  mimi_decoder_tap_names_ptr(h: number): number;
  mimi_decoder_tap_names_len(h: number): number;
  mimi_state_new(h: number, maxFrames: number): number;
  mimi_state_free(s: number): void;
  mimi_state_reset(s: number): number;
  mimi_state_bytes(s: number): number;
  mimi_state_position(s: number): number;
  mimi_state_set_taps(h: number, s: number, on: number): number;
  mimi_state_tap_ptr(s: number, id: number): number;
  mimi_state_tap_len(s: number, id: number): number;
  mimi_decode(h: number, s: number, latents: number, nFrames: number, out: number): number;
}

/** Options of {@link MimiDecoder.create}. */
export interface MimiDecoderOptions {
  /**
   * The latent statistics (`flow_lm.emb_mean`, `flow_lm.emb_std`, `[latent_dim]` each). When given, `decode`
   * takes normalised latents and computes `x · std + mean` itself; otherwise it takes de-normalised latents.
   */
  latentStats?: { mean: Float32Array; std: Float32Array };
  /**
   * Only the stages `from..to` of {@link mimiDecoderPlan}'s list: one part of a decoder split between threads. It
   * takes only its stages' weights; its input is the previous part's output (latents for the first part) and its
   * output the next part's input (audio for the last). Default: the whole decoder.
   */
  stages?: { from: number; to: number };
}

/** One stage of the decoder's pipeline (see {@link mimiDecoderPlan}). */
export interface MimiStage {
  /**
   * `input` (de-normalisation, quantizer projection, upsample), `transformer.{i}.attn` / `transformer.{i}.ff` (the
   * two halves of layer `i`), or `seanet.{idx}.{conv0|up|res|last}` (module `idx` of the SEANet decoder).
   */
  name: string;
  /** Multiply-accumulates per frame (projections and convolutions). */
  macs: number;
  /** Values it outputs per frame (what crosses between threads when the decoder is cut after it). */
  outLen: number;
  /** The narrowest matrix dimension of its GEMMs (channels, hidden width or head size). */
  width: number;
}

/**
 * The decoder's pipeline of stages for `config`, in order, computed by the core from the hyper-parameters alone
 * (no weights): where a caller can cut the decoder into parts, and what each stage costs.
 *
 * @example
 * ```ts
 * const stages = mimiDecoderPlan(await loadCore(), config);
 * const transformerMacs = stages.filter((s) => s.name.startsWith("transformer.")).reduce((a, s) => a + s.macs, 0);
 * ```
 */
export function mimiDecoderPlan(core: PocketCore, config: PocketTtsConfig): MimiStage[] {
  return readPlan(core, mimiDecoderParams(config)).stages;
}

/**
 * The names of the `mimi.*` tensors the decoder's stages `from..to` take (default: all): what to load into a core
 * that builds only that part.
 *
 * @example
 * ```ts
 * const names = new Set(mimiStageTensors(core, config, { from: 0, to: 3 }));
 * await loadWeightsIntoCore(core, reader, (n) => names.has(n));
 * ```
 */
export function mimiStageTensors(
  core: PocketCore,
  config: PocketTtsConfig,
  stages?: { from: number; to: number },
): string[] {
  return readPlan(core, mimiDecoderParams(config, stages)).tensors;
}

/**
 * Plans the packing of the big weights (transformer projections, SEANet convolutions) of the decoder, or of its
 * stages `stages`, before their tensors are added to `core`: each is then packed the moment it arrives (add a
 * convolution's bias before its weight so it goes in with it), and the store never holds them all in their file form
 * beside the packed ones. Wasm memory never shrinks, so that peak would stay for the process's life.
 * {@link MimiDecoder.create} takes them packed, with the same result as unplanned.
 *
 * @example
 * ```ts
 * planMimiDecoderWeights(core, config);
 * await loadWeightsIntoCore(core, reader, mimiStageTensors(core, config));
 * const decoder = MimiDecoder.create(core, config);
 * ```
 */
export function planMimiDecoderWeights(
  core: PocketCore,
  config: PocketTtsConfig,
  stages?: { from: number; to: number },
): void {
  const [pp, pn] = core.putString(mimiDecoderParams(config, stages));
  try {
    core.check((core.raw as unknown as MimiExports).mimi_decoder_plan(pp, pn), "planning the Mimi decoder's weights");
  } finally {
    if (pn) core.free(pp, pn);
  }
}

/** The core's plan text: one `name macs out_len width` line per stage, an empty line, the part's tensor names. */
function readPlan(core: PocketCore, params: string): { stages: MimiStage[]; tensors: string[] } {
  const raw = core.raw as unknown as MimiExports;
  const [pp, pn] = core.putString(params);
  let h: number;
  try {
    h = core.check(raw.mimi_plan_new(pp, pn), "planning the Mimi decoder");
  } finally {
    if (pn) core.free(pp, pn);
  }
  try {
    const text = new TextDecoder().decode(core.u8(raw.mimi_plan_ptr(h), raw.mimi_plan_len(h)).slice());
    const [plan, tensors] = text.split("\n\n");
    const stages = plan.split("\n").map((line) => {
      const [name, macs, outLen, width] = line.split(" ");
      return { name, macs: Number(macs), outLen: Number(outLen), width: Number(width) };
    });
    return { stages, tensors: tensors ? tensors.split("\n") : [] };
  } finally {
    raw.mimi_plan_free(h);
  }
}

/** Options of {@link MimiDecoder.createState}. */
export interface MimiStateOptions {
  /**
   * Frames the state processes per internal step (default 1; 1…256). Scratch memory grows with it (about 4 MB per
   * frame for the full-size model); longer `decode` calls are split into steps of this many frames.
   */
  maxFrames?: number;
}

/**
 * The hyper-parameter string the core's `mimi_decoder_new` takes, from a model config.
 *
 * @throws {ConfigError} for a config this decoder does not support (non-causal padding, transformer projections,
 *   mismatched widths)
 */
export function mimiDecoderParams(config: PocketTtsConfig, stages?: { from: number; to: number }): string {
  const m = config.mimi, sn = m.seanet, tr = m.transformer;
  const outer = m.outer_dim ?? sn.dimension;
  if (sn.pad_mode !== "constant") {
    throw new ConfigError(
      `mimi.seanet.pad_mode "${sn.pad_mode}" is not supported (only "constant")`,
      "mimi.seanet.pad_mode",
    );
  }
  if (tr.input_dimension !== tr.d_model || tr.output_dimensions.some((d) => d !== tr.d_model)) {
    throw new ConfigError(
      "Mimi transformer input/output projections are not supported (input_dimension and output_dimensions must " +
        "equal d_model)",
      "mimi.transformer.input_dimension",
    );
  }
  if (m.quantizer.output_dimension !== outer) {
    throw new ConfigError(
      `mimi.quantizer.output_dimension ${m.quantizer.output_dimension} differs from outer_dim ${outer}`,
      "mimi.quantizer.output_dimension",
    );
  }
  const hop = sn.ratios.reduce((a, b) => a * b, 1);
  const stride = m.sample_rate / hop / m.frame_rate;
  if (!Number.isInteger(stride) || stride < 1) {
    throw new ConfigError(
      `sample_rate ${m.sample_rate} / hop ${hop} / frame_rate ${m.frame_rate} is not a whole upsampling stride`,
      "mimi.frame_rate",
    );
  }
  const p: Record<string, string | number> = {
    latent_dim: m.quantizer.dimension,
    outer_dim: outer,
    stride,
    d_model: tr.d_model,
    num_heads: tr.num_heads,
    num_layers: tr.num_layers,
    dim_feedforward: tr.dim_feedforward,
    context: tr.context,
    max_period: tr.max_period,
    layer_scale: tr.layer_scale === null ? 0 : 1,
    dimension: sn.dimension,
    channels: sn.channels,
    n_filters: sn.n_filters,
    ratios: sn.ratios.join(","),
    kernel_size: sn.kernel_size,
    residual_kernel_size: sn.residual_kernel_size,
    last_kernel_size: sn.last_kernel_size,
    n_residual_layers: sn.n_residual_layers,
    dilation_base: sn.dilation_base,
    compress: sn.compress,
  };
  if (stages) p.stages = `${stages.from},${stages.to}`;
  return Object.entries(p).map(([k, v]) => `${k}=${v}`).join(" ");
}

/** The Mimi decoder's weights inside one core instance. */
export class MimiDecoder {
  /** The core instance the decoder lives in. */
  readonly core: PocketCore;
  /** Values per latent frame (32). */
  readonly latentDim: number;
  /** Values in per frame: `latentDim`, or for a later part of a split decoder the activation at its cut. */
  readonly inLen: number;
  /** Audio samples per latent frame (1920); for an earlier part of a split decoder, the activation at its cut. */
  readonly frameSamples: number;
  /** The stages this decoder runs (indices into {@link mimiDecoderPlan}'s list). */
  readonly stages: { from: number; to: number } | null;
  /** Whether `decode` takes normalised latents (created with `latentStats`). */
  readonly normalisedInput: boolean;
  /** Names of the intermediate outputs a state records with `setTaps(true)`, in order. */
  readonly tapNames: readonly string[];
  /** Channels of each tap, by name. */
  readonly tapChannels: ReadonlyMap<string, number>;
  #raw: MimiExports;
  #handle: number;
  #states = new Set<MimiDecoderState>();

  private constructor(
    core: PocketCore,
    handle: number,
    normalised: boolean,
    stages: { from: number; to: number } | null,
  ) {
    this.core = core;
    this.#raw = core.raw as unknown as MimiExports;
    this.#handle = handle;
    this.normalisedInput = normalised;
    this.stages = stages;
    this.latentDim = this.#raw.mimi_decoder_latent_dim(handle);
    this.inLen = this.#raw.mimi_decoder_in_len(handle);
    this.frameSamples = this.#raw.mimi_decoder_frame_samples(handle);
    const taps = readTapList(
      core,
      this.#raw.mimi_decoder_tap_names_ptr(handle),
      this.#raw.mimi_decoder_tap_names_len(handle),
    );
    this.tapNames = taps.names;
    this.tapChannels = taps.channels;
  }

  /**
   * Builds the decoder from the `mimi.*` tensors in `core`'s weight store (they are taken out of the store) and
   * the config's hyper-parameters.
   *
   * @throws {ConfigError} for an unsupported config (see {@link mimiDecoderParams})
   * @throws {WasmCoreError} when a tensor is missing or has the wrong shape (the message names it), or the latent
   *   statistics have the wrong length
   */
  static create(core: PocketCore, config: PocketTtsConfig, options: MimiDecoderOptions = {}): MimiDecoder {
    const raw = core.raw as unknown as MimiExports;
    const params = mimiDecoderParams(config, options.stages);
    const stats = options.latentStats, n = config.mimi.quantizer.dimension;
    if (stats && (stats.mean.length !== n || stats.std.length !== n)) {
      throw new WasmCoreError(
        `latentStats need ${n} values each (got mean ${stats.mean.length}, std ${stats.std.length})`,
      );
    }
    // The core checks every tensor before taking any: a failed create leaves the store as it was.
    const [pp, pn] = core.putString(params);
    let handle: number;
    try {
      handle = core.check(raw.mimi_decoder_new(pp, pn), "creating the Mimi decoder");
    } finally {
      if (pn) core.free(pp, pn);
    }
    if (stats) {
      const mp = core.put(stats.mean), sp = core.put(stats.std);
      try {
        core.check(raw.mimi_decoder_set_latent_stats(handle, mp, sp), "setting the latent statistics");
      } catch (e) {
        raw.mimi_decoder_free(handle);
        throw e;
      } finally {
        core.free(mp, n * 4);
        core.free(sp, n * 4);
      }
    }
    return new MimiDecoder(core, handle, stats !== undefined, options.stages ?? null);
  }

  /** Bytes of packed weights in wasm memory. */
  get weightBytes(): number {
    return this.#raw.mimi_decoder_weight_bytes(this.#live());
  }

  /** Multiply-accumulates per frame in the projections and convolutions (attention scores excluded). */
  get macsPerFrame(): number {
    return this.#raw.mimi_decoder_macs_per_frame(this.#live());
  }

  /**
   * A new stream, starting at position 0 with zero state.
   *
   * @throws {WasmCoreError} when `maxFrames` is out of range or memory runs out
   */
  createState(options: MimiStateOptions = {}): MimiDecoderState {
    const maxFrames = options.maxFrames ?? 1;
    if (!Number.isInteger(maxFrames) || maxFrames < 1 || maxFrames > 256) {
      throw new WasmCoreError(`maxFrames must be an integer in 1…256, got ${maxFrames}`);
    }
    const s = this.core.check(this.#raw.mimi_state_new(this.#live(), maxFrames), "creating a Mimi decoder state");
    const state = new MimiDecoderState(this, this.#raw, this.#handle, s, maxFrames, () => this.#states.delete(state));
    this.#states.add(state);
    return state;
  }

  /** Frees the weights and every state still open. The decoder cannot be used afterwards. */
  free(): void {
    if (this.#handle === 0) return;
    for (const s of [...this.#states]) s.free();
    this.#raw.mimi_decoder_free(this.#handle);
    this.#handle = 0;
  }

  #live(): number {
    if (this.#handle === 0) throw new WasmCoreError("the Mimi decoder has been freed");
    return this.#handle;
  }
}

/** One audio stream of a {@link MimiDecoder}: carried state, KV ring and scratch, all in wasm memory. */
export class MimiDecoderState extends CoreStream {
  /** The decoder this stream belongs to. */
  readonly decoder: MimiDecoder;
  #raw: MimiExports;
  #dec: number;

  /** @internal use {@link MimiDecoder.createState}. */
  constructor(
    decoder: MimiDecoder,
    raw: MimiExports,
    dec: number,
    handle: number,
    maxFrames: number,
    onFree: () => void,
  ) {
    const calls = {
      free: (s: number) => raw.mimi_state_free(s),
      reset: (s: number) => raw.mimi_state_reset(s),
      position: (s: number) => raw.mimi_state_position(s),
      bytes: (s: number) => raw.mimi_state_bytes(s),
      setTaps: (s: number, on: number) => raw.mimi_state_set_taps(dec, s, on),
      tapLen: (s: number, id: number) => raw.mimi_state_tap_len(s, id),
      tapPtr: (s: number, id: number) => raw.mimi_state_tap_ptr(s, id),
    };
    const io = { inBytes: maxFrames * decoder.inLen * 4, outBytes: maxFrames * decoder.frameSamples * 4 };
    const taps = { names: decoder.tapNames, channels: decoder.tapChannels };
    super(decoder.core, calls, handle, maxFrames, io, taps, "Mimi decoder state", onFree);
    this.decoder = decoder;
    this.#raw = raw;
    this.#dec = dec;
  }

  /**
   * Decodes `latents` (`F × latentDim` values, frame after frame; normalised or de-normalised as the decoder was
   * created, see the module docs) into a new array of `F × frameSamples` samples, continuing the stream.
   *
   * @throws {WasmCoreError} when `latents` is not a whole number of frames or the state was freed
   */
  decode(latents: Float32Array): Float32Array {
    const frames = Math.floor(latents.length / this.decoder.inLen);
    const out = new Float32Array(frames * this.decoder.frameSamples);
    this.decodeInto(latents, out);
    return out;
  }

  /**
   * As {@link decode}, writing into `out` (at least `F × frameSamples` values): no allocation at all.
   *
   * @throws {WasmCoreError} when `latents` is not a whole number of frames, `out` is too short or the state was
   *   freed
   */
  decodeInto(latents: Float32Array, out: Float32Array): void {
    const h = this.live();
    const { inLen, frameSamples, core } = this.decoder;
    if (latents.length % inLen !== 0) {
      throw new WasmCoreError(`latents hold ${latents.length} values, not a multiple of ${inLen} per frame`);
    }
    const frames = latents.length / inLen;
    if (out.length < frames * frameSamples) {
      throw new WasmCoreError(`audio buffer of ${out.length} samples is too short for ${frames} frames`);
    }
    for (let f0 = 0; f0 < frames; f0 += this.maxFrames) {
      const f = Math.min(this.maxFrames, frames - f0);
      core.f32(this.inPtr, f * inLen).set(latents.subarray(f0 * inLen, (f0 + f) * inLen));
      core.check(this.#raw.mimi_decode(this.#dec, h, this.inPtr, f, this.outPtr), "Mimi decode");
      out.set(core.f32(this.outPtr, f * frameSamples), f0 * frameSamples);
    }
  }
}
