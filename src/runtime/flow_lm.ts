/**
 * FlowLM on the wasm core: the typed wrapper over `crates/pocket_core/src/exports/flow_lm.rs`.
 *
 * A {@link FlowLM} holds the weights (taken from the core's weight store) and the flow head; each stream has its
 * own {@link FlowLMState} (the KV caches, with an offset and a capacity). One FlowLM call feeds text tokens,
 * conditioning rows (a voice) or one latent, and the flow head turns the caller's starting point x₀ into the next
 * latent with LSD (`lsdSteps` steps; the reference's default is 1):
 *
 * ```ts
 * const flow = await FlowLM.fromReader(core, reader, config);
 * const voice = flow.createState();
 * voice.loadVoice(await readVoiceFile("alba.safetensors"));
 * const st = voice.clone();                       // per chunk: copies only the used positions
 * const maxGenLen = st.prepareChunk(ids.length);  // capacity → offset + N + max_gen_len
 * st.prefillText(ids);
 * let input = new Float32Array(32).fill(NaN);     // BOS
 * for (let j = 0; j < maxGenLen; j++) {
 *   const { latent, eosLogit } = st.step(input, noise.next());
 *   input = latent;
 * }
 * ```
 *
 * Every call of T rows runs each linear layer as one GEMM; an AR step allocates nothing in the core (buffers grow
 * only with a larger prefill or a larger cache), and the wrapper reuses one I/O buffer.
 *
 * @module
 */
import { InvalidVoiceError, WasmCoreError } from "../errors.ts";
import { type ModelDimensions, modelDimensions, type PocketTtsConfig } from "../model/config.ts";
import type { SafetensorsReader } from "../model/safetensors.ts";
import { checkVoiceFits, serializeVoiceStateWith, type VoiceFile, type VoiceKvState } from "../voice/voice_state.ts";
import { loadWeightsIntoCore } from "./load_weights.ts";
import type { PocketCore } from "./wasm.ts";

/** The FlowLM exports of the core (see `exports/flow_lm.rs` for each contract). */
interface FlowLMExports {
  flow_lm_plan(params: number, len: number): number;
  flow_lm_new(params: number, len: number): number;
  flow_lm_free(h: number): void;
  flow_lm_step_weight_bytes(h: number): number;
  flow_lm_weight_bytes(h: number): number;
  flow_lm_has_bos_before_voice(h: number): number;
  flow_lm_set_trace(h: number, on: number): void;
  flow_lm_trace_len(h: number): number;
  flow_lm_trace_ptr(h: number): number;
  flow_lm_last_c(h: number, c: number, v: number): void;
  flow_lm_state_new(h: number, capacity: number): number;
  flow_lm_state_free(s: number): void;
  flow_lm_state_offset(s: number): number;
  flow_lm_state_capacity(s: number): number;
  flow_lm_state_reserve(s: number, capacity: number): void;
  flow_lm_state_reset(s: number): void;
  flow_lm_state_copy(dst: number, src: number): number;
  flow_lm_state_load_layer(s: number, layer: number, kv: number, t: number): number;
  flow_lm_state_read_layer(s: number, layer: number, out: number): number;
  flow_lm_prefill_tokens(
    h: number,
    s: number,
    ids: number,
    n: number,
    x0: number,
    steps: number,
    latent: number,
    eos: number,
  ): number;
  flow_lm_prefill_embeddings(
    h: number,
    s: number,
    rows: number,
    n: number,
    bosFirst: number,
    x0: number,
    steps: number,
    latent: number,
    eos: number,
  ): number;
  flow_lm_step(h: number, s: number, input: number, x0: number, steps: number, latent: number, eos: number): number;
  flow_head_forward(h: number, c: number, s: number, t: number, x: number, b: number, v: number, trace: number): void;
  flow_head_lsd(h: number, c: number, x: number, b: number, steps: number): number;
  flow_lm_bos_kv(h: number, out: number): number;
  flow_lm_speaker_project(h: number, rows: number, f: number, inner: number, out: number): number;
}

/** FlowLM dimensions: the config's model dimensions plus the latent width and frame rate. */
export interface FlowLMDims extends
  Pick<
    ModelDimensions,
    "dModel" | "numHeads" | "headDim" | "numLayers" | "ffnDim" | "flowDim" | "flowDepth" | "vocabSize"
  > {
  /** Latent width (32). */
  latentDim: number;
  /** Latent frames per second (12.5), for `max_gen_len`. */
  frameRate: number;
}

/** Result of a prefill call. */
export interface FlowLMCallResult {
  /** Raw EOS logit of the last row (ignored by the reference after a prefill). */
  eosLogit: number;
  /** The decoded latent when x₀ was given (the reference computes and discards it), else `null`. */
  latent: Float32Array | null;
}

/** Result of an AR step. */
export interface FlowLMStepResult {
  /** The next latent (normalised space; feed it back as the next input). */
  latent: Float32Array;
  /** Raw EOS logit `out_eos(c)` (no sigmoid; the reference compares it with −4 by default). */
  eosLogit: number;
}

/** Options of {@link FlowLM.create}. */
export interface FlowLMOptions {
  /** LSD steps per latent (default 1, the reference's default). */
  lsdSteps?: number;
  /**
   * Int8 transformer linears (attention and FFN projections) with per-row scales, quantised at load, and
   * dynamically quantised activations, as the reference's `--quantize` (default false: exact F32/BF16 weights).
   */
  quantize?: boolean;
}

/** Options of {@link FlowLMState.loadVoice}. */
export interface LoadVoiceOptions {
  /**
   * Check that a KV voice's first position equals this model's `bos_before_voice` (layer 0's K/V), i.e. that the
   * voice was made with these weights (default true; only when the model inserts `bos_before_voice`).
   */
  verifyModel?: boolean;
  /** For an audio prompt: x₀ of the prefill call, whose latent is then computed (and returned) like upstream. */
  x0?: Float32Array;
}

/** `max_gen_len = ceil((N/3 + 2) · frame_rate)`: the AR step budget of a chunk of N tokens (spec §3.9). */
export function maxGenLen(nTokens: number, frameRate = 12.5): number {
  return Math.ceil((nTokens / 3.0 + 2.0) * frameRate);
}

/** Rows per prefill call when an audio-prompt voice is imported (about a text chunk's: see `loadVoice`). */
const VOICE_PREFILL_ROWS = 32;

/**
 * Relative tolerance of the voice/model identity check (other weights give differences of order 1); the int8
 * model computes `bos_before_voice`'s K/V with quantised weights and activations, a few percent off.
 */
const IDENTITY_TOLERANCE = { exact: 1e-2, quantized: 0.1 };

/** Calls `fn` with FlowLM's parameters (`key=value …`) as a string in `core`'s memory. */
function withParams(
  core: PocketCore,
  config: PocketTtsConfig,
  options: FlowLMOptions,
  fn: (ptr: number, len: number) => number,
): number {
  const md = modelDimensions(config);
  const params = [
    `d_model=${md.dModel}`,
    `num_heads=${md.numHeads}`,
    `num_layers=${md.numLayers}`,
    `ffn_dim=${md.ffnDim}`,
    `flow_dim=${md.flowDim}`,
    `flow_depth=${md.flowDepth}`,
    `ldim=${md.latentDim}`,
    `n_bins=${md.vocabSize}`,
    `max_period=${config.flow_lm.transformer.max_period}`,
    `quantize=${options.quantize ? 1 : 0}`,
  ].join(" ");
  const [p, n] = core.putString(params);
  try {
    return fn(p, n);
  } finally {
    core.free(p, n);
  }
}

/** FlowLM weights and flow head inside one wasm core. */
export class FlowLM {
  /** The core it lives in. */
  readonly core: PocketCore;
  /** Dimensions. */
  readonly dims: FlowLMDims;
  /** Whether voice conditioning is preceded by `bos_before_voice` (config `insert_bos_before_voice`). */
  readonly insertBosBeforeVoice: boolean;
  /** Whether the checkpoint has `bos_before_voice`. */
  readonly hasBosBeforeVoice: boolean;
  /** Bytes of weights one AR step reads (for bandwidth figures). */
  readonly stepWeightBytes: number;
  /** Bytes of every weight it holds (packed), for memory figures. */
  readonly weightBytes: number;
  /** LSD steps per latent. */
  lsdSteps: number;
  /** Whether the transformer's linears are int8 (`quantize`). */
  readonly quantized: boolean;
  /** @internal */
  readonly handle: number;
  /** @internal */
  readonly x: FlowLMExports;
  #io = 0;
  #ioBytes = 0;
  #states = new Set<FlowLMState>();

  /** @internal use {@link FlowLM.create}. */
  constructor(core: PocketCore, handle: number, dims: FlowLMDims, insertBos: boolean, options: FlowLMOptions) {
    this.core = core;
    this.x = core.raw as unknown as FlowLMExports;
    this.handle = handle;
    this.dims = dims;
    this.insertBosBeforeVoice = insertBos;
    this.hasBosBeforeVoice = this.x.flow_lm_has_bos_before_voice(handle) === 1;
    this.stepWeightBytes = this.x.flow_lm_step_weight_bytes(handle);
    this.weightBytes = this.x.flow_lm_weight_bytes(handle);
    this.lsdSteps = options.lsdSteps ?? 1;
    this.quantized = options.quantize ?? false;
    this.io(4 * (3 * dims.latentDim + 1));
  }

  /**
   * Builds FlowLM from the `flow_lm.*` tensors already in `core`'s weight store (they are taken out of it).
   *
   * @throws {WasmCoreError} naming a missing tensor or a shape that disagrees with the config
   */
  static create(core: PocketCore, config: PocketTtsConfig, options: FlowLMOptions = {}): FlowLM {
    const md = modelDimensions(config);
    const dims: FlowLMDims = {
      dModel: md.dModel,
      numHeads: md.numHeads,
      headDim: md.headDim,
      numLayers: md.numLayers,
      ffnDim: md.ffnDim,
      flowDim: md.flowDim,
      flowDepth: md.flowDepth,
      latentDim: md.latentDim,
      vocabSize: md.vocabSize,
      frameRate: md.frameRate,
    };
    const h = withParams(core, config, options, (p, n) => (core.raw as unknown as FlowLMExports).flow_lm_new(p, n));
    core.check(h, "building FlowLM");
    return new FlowLM(core, h, dims, config.flow_lm.insert_bos_before_voice, options);
  }

  /**
   * Copies the `flow_lm.*` tensors of a checkpoint into the core (all but `emb_mean`/`emb_std`, which belong to
   * the decoder side) and builds FlowLM. The linear weights are planned first, so each is packed (or quantised)
   * as it arrives: the core never holds the transformer's file form beside its packed form.
   */
  static async fromReader(
    core: PocketCore,
    reader: SafetensorsReader,
    config: PocketTtsConfig,
    options: FlowLMOptions = {},
  ): Promise<FlowLM> {
    const plan = (p: number, n: number) => (core.raw as unknown as FlowLMExports).flow_lm_plan(p, n);
    core.check(withParams(core, config, options, plan), "planning FlowLM's weights");
    await loadWeightsIntoCore(
      core,
      reader,
      (n) => n.startsWith("flow_lm.") && n !== "flow_lm.emb_mean" && n !== "flow_lm.emb_std",
    );
    return FlowLM.create(core, config, options);
  }

  /** @internal a reusable I/O buffer of at least `bytes` (its pointer; valid until the next `io` call). */
  io(bytes: number): number {
    if (bytes > this.#ioBytes) {
      if (this.#io) this.core.free(this.#io, this.#ioBytes);
      this.#ioBytes = Math.max(bytes, this.#ioBytes * 2);
      this.#io = this.core.alloc(this.#ioBytes);
    }
    return this.#io;
  }

  /** `max_gen_len` of a chunk of `nTokens` tokens at this model's frame rate. */
  maxGenLen(nTokens: number): number {
    return maxGenLen(nTokens, this.dims.frameRate);
  }

  /** A new empty stream state with room for `capacity` positions (it grows as needed). */
  createState(capacity = 0): FlowLMState {
    const s = new FlowLMState(this, this.x.flow_lm_state_new(this.handle, capacity));
    this.#states.add(s);
    return s;
  }

  /** @internal */
  forget(s: FlowLMState): void {
    this.#states.delete(s);
  }

  /**
   * The flow head alone: `v = flow_net(c, s, t, x)` for `b` rows (`c` `[b, d_model]`, `s`/`t` `[b]`,
   * `x` `[b, 32]`). With `trace`, also returns `[te0, te1, t_combined, cond, y, h_in, res0 …]`, each `[b, flow_dim]`.
   */
  flowHead(
    c: Float32Array,
    s: Float32Array,
    t: Float32Array,
    x: Float32Array,
    options: { trace?: boolean } = {},
  ): { v: Float32Array; trace: Float32Array | null } {
    const { dModel, latentDim: ld, flowDim, flowDepth } = this.dims;
    const b = s.length;
    if (c.length !== b * dModel || t.length !== b || x.length !== b * ld) {
      throw new RangeError(`flowHead: c [${b}×${dModel}], t [${b}] and x [${b}×${ld}] expected`);
    }
    const nTrace = options.trace ? (6 + flowDepth) * b * flowDim : 0;
    const sizes = [c.length, b, b, x.length, b * ld, nTrace];
    const base = this.io(4 * sizes.reduce((a, n) => a + n, 0));
    const ptrs: number[] = [];
    let at = base;
    for (const n of sizes) {
      ptrs.push(at);
      at += 4 * n;
    }
    const core = this.core;
    core.f32(ptrs[0], c.length).set(c);
    core.f32(ptrs[1], b).set(s);
    core.f32(ptrs[2], b).set(t);
    core.f32(ptrs[3], x.length).set(x);
    this.x.flow_head_forward(this.handle, ptrs[0], ptrs[1], ptrs[2], ptrs[3], b, ptrs[4], nTrace ? ptrs[5] : 0);
    return {
      v: core.f32(ptrs[4], b * ld).slice(),
      trace: nTrace ? core.f32(ptrs[5], nTrace).slice() : null,
    };
  }

  /** LSD decoding of `b` rows: from `x0` `[b, 32]` to the latents, conditioned on `c` `[b, d_model]`. */
  lsdDecode(c: Float32Array, x0: Float32Array, steps = this.lsdSteps): Float32Array {
    const { dModel, latentDim: ld } = this.dims;
    const b = x0.length / ld;
    if (!Number.isInteger(b) || c.length !== b * dModel) {
      throw new RangeError(`lsdDecode: c [b×${dModel}], x0 [b×${ld}]`);
    }
    const cp = this.io(4 * (c.length + x0.length));
    const xp = cp + 4 * c.length;
    this.core.f32(cp, c.length).set(c);
    this.core.f32(xp, x0.length).set(x0);
    this.core.check(this.x.flow_head_lsd(this.handle, cp, xp, b, steps), "LSD decoding");
    return this.core.f32(xp, x0.length).slice();
  }

  /** Layer 0's K and V (`[2, d_model]`) for `bos_before_voice` at position 0, or `null` without one. */
  bosKv(): Float32Array | null {
    if (!this.hasBosBeforeVoice) return null;
    const n = 2 * this.dims.dModel;
    const p = this.io(4 * n);
    this.core.check(this.x.flow_lm_bos_kv(this.handle, p), "bos_before_voice K/V");
    return this.core.f32(p, n).slice();
  }

  /**
   * Voice conditioning from raw encoder latents: `rows` `[frames, inner_dim]` (already transposed from the
   * encoder's `[inner_dim, frames]`) → `[frames, d_model]` through `speaker_proj_weight`.
   */
  speakerProject(rows: Float32Array, frames: number): Float32Array {
    const inner = rows.length / frames;
    const n = frames * this.dims.dModel;
    const p = this.io(4 * (rows.length + n));
    this.core.f32(p, rows.length).set(rows);
    const out = p + 4 * rows.length;
    this.core.check(this.x.flow_lm_speaker_project(this.handle, p, frames, inner, out), "speaker projection");
    return this.core.f32(out, n).slice();
  }

  /** Records each call's input rows and every layer's output (tests and debugging). */
  setTrace(on: boolean): void {
    this.x.flow_lm_set_trace(this.handle, on ? 1 : 0);
  }

  /** The last call's trace `[(1 + layers), T, d_model]` (input rows, then each layer's output), or `null`. */
  lastTrace(): Float32Array | null {
    const n = this.x.flow_lm_trace_len(this.handle);
    return n ? this.core.f32(this.x.flow_lm_trace_ptr(this.handle), n).slice() : null;
  }

  /** The last call's out-normed hidden state `c` and the flow head's last velocity `v`. */
  lastC(): { c: Float32Array; v: Float32Array } {
    const { dModel, latentDim } = this.dims;
    const p = this.io(4 * (dModel + latentDim));
    this.x.flow_lm_last_c(this.handle, p, p + 4 * dModel);
    return { c: this.core.f32(p, dModel).slice(), v: this.core.f32(p + 4 * dModel, latentDim).slice() };
  }

  /** Frees the model and every state it created. */
  free(): void {
    for (const s of [...this.#states]) s.free();
    if (this.#io) this.core.free(this.#io, this.#ioBytes);
    this.#io = 0;
    this.x.flow_lm_free(this.handle);
  }
}

/** One stream's FlowLM KV caches (absolute positions `0…offset−1`), with room for `capacity` positions. */
export class FlowLMState {
  /** The model this state belongs to. */
  readonly model: FlowLM;
  #h: number;

  /** @internal use {@link FlowLM.createState}. */
  constructor(model: FlowLM, handle: number) {
    this.model = model;
    this.#h = handle;
  }

  /** @internal the core handle. */
  get handle(): number {
    if (!this.#h) throw new WasmCoreError("this FlowLM state has been freed");
    return this.#h;
  }

  /** Positions in the cache (shared by all layers). */
  get offset(): number {
    return this.model.x.flow_lm_state_offset(this.handle);
  }

  /** Positions the cache has room for before it must grow. */
  get capacity(): number {
    return this.model.x.flow_lm_state_capacity(this.handle);
  }

  /** Grows the cache to at least `capacity` positions, keeping its contents. */
  reserve(capacity: number): void {
    this.model.x.flow_lm_state_reserve(this.handle, capacity);
  }

  /**
   * Before a text chunk of `nTokens` tokens: grows the cache to `offset + nTokens + max_gen_len` (as the reference
   * does) and returns `max_gen_len`.
   */
  prepareChunk(nTokens: number): number {
    const m = this.model.maxGenLen(nTokens);
    this.reserve(this.offset + nTokens + m);
    return m;
  }

  /** Forgets every position (keeps the buffers for reuse). */
  reset(): void {
    this.model.x.flow_lm_state_reset(this.handle);
  }

  /** Becomes a copy of `other` (same model): only its used positions are copied; larger buffers are kept. */
  copyFrom(other: FlowLMState): void {
    if (other.model !== this.model) throw new WasmCoreError("cannot copy a FlowLM state of another model");
    this.model.core.check(this.model.x.flow_lm_state_copy(this.handle, other.handle), "copying a FlowLM state");
  }

  /** A new state holding a copy of this one's used positions. */
  clone(): FlowLMState {
    const s = this.model.createState(this.offset);
    s.copyFrom(this);
    return s;
  }

  #finish(x0: Float32Array | null | undefined, out: number): FlowLMCallResult {
    const ld = this.model.dims.latentDim;
    return {
      eosLogit: this.model.core.f32(out + 4 * ld, 1)[0],
      latent: x0 ? this.model.core.f32(out, ld).slice() : null,
    };
  }

  #x0(x0: Float32Array | null | undefined, at: number): number {
    if (!x0) return 0;
    if (x0.length !== this.model.dims.latentDim) {
      throw new RangeError(`x0 must hold ${this.model.dims.latentDim} values, got ${x0.length}`);
    }
    this.model.core.f32(at, x0.length).set(x0);
    return at;
  }

  /**
   * Prefills text token ids (one call, one GEMM per linear). With `x0`, also decodes that call's latent (which
   * the reference computes and discards).
   */
  prefillText(ids: ArrayLike<number>, x0?: Float32Array | null): FlowLMCallResult {
    const m = this.model, ld = m.dims.latentDim, n = ids.length;
    const base = m.io(4 * (2 * ld + 1 + n));
    const out = base + 4 * ld, idp = base + 4 * (2 * ld + 1);
    const view = m.core.u32(idp, n);
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id > m.dims.vocabSize) {
        throw new RangeError(`token id ${id} out of range: the embedding table has ${m.dims.vocabSize + 1} rows`);
      }
      view[i] = id;
    }
    const xp = this.#x0(x0, base);
    m.core.check(
      m.x.flow_lm_prefill_tokens(m.handle, this.handle, idp, n, xp, m.lsdSteps, out, out + 4 * ld),
      "FlowLM text prefill",
    );
    return this.#finish(x0, out);
  }

  /**
   * Prefills conditioning rows `[T, d_model]` (a voice), preceded by the model's `bos_before_voice` when
   * `bosBeforeVoice` is true. With `x0`, also decodes the call's latent.
   */
  prefillEmbeddings(
    rows: Float32Array,
    options: { bosBeforeVoice?: boolean; x0?: Float32Array | null } = {},
  ): FlowLMCallResult {
    const m = this.model, ld = m.dims.latentDim, d = m.dims.dModel;
    const t = rows.length / d;
    if (!Number.isInteger(t)) throw new RangeError(`conditioning rows must be [T, ${d}], got ${rows.length} values`);
    const base = m.io(4 * (2 * ld + 1 + rows.length));
    const out = base + 4 * ld, rp = base + 4 * (2 * ld + 1);
    m.core.f32(rp, rows.length).set(rows);
    const xp = this.#x0(options.x0, base);
    m.core.check(
      m.x.flow_lm_prefill_embeddings(
        m.handle,
        this.handle,
        rp,
        t,
        options.bosBeforeVoice ? 1 : 0,
        xp,
        m.lsdSteps,
        out,
        out + 4 * ld,
      ),
      "FlowLM conditioning prefill",
    );
    return this.#finish(options.x0, out);
  }

  /**
   * One AR step: feeds `inputLatent` (32 values; a row of NaN is the BOS), decodes the next latent from `x0`
   * (32 noise values) with LSD, and returns it with the raw EOS logit. `out` receives the latent when given.
   */
  step(inputLatent: Float32Array, x0: Float32Array, out?: Float32Array): FlowLMStepResult {
    const m = this.model, ld = m.dims.latentDim;
    if (inputLatent.length !== ld || x0.length !== ld) {
      throw new RangeError(`step: inputLatent and x0 must hold ${ld} values`);
    }
    const base = m.io(4 * (3 * ld + 1));
    const ip = base, xp = base + 4 * ld, lp = base + 8 * ld, ep = base + 12 * ld;
    const core = m.core;
    core.f32(ip, ld).set(inputLatent);
    core.f32(xp, ld).set(x0);
    core.check(m.x.flow_lm_step(m.handle, this.handle, ip, xp, m.lsdSteps, lp, ep), "FlowLM step");
    const latent = out ?? new Float32Array(ld);
    latent.set(core.f32(lp, ld));
    return { latent, eosLogit: core.f32(ep, 1)[0] };
  }

  /**
   * Loads a voice into this (emptied) state: a KV voice is copied in (after checking its dimensions and, by
   * default, that it was made with these weights); an audio prompt is prefilled, after `bos_before_voice` when the
   * config inserts it. Returns the prefill's result for an audio prompt, `null` for a KV voice.
   *
   * @throws {InvalidVoiceError} when the voice was made for another model
   */
  loadVoice(voice: VoiceFile, options: LoadVoiceOptions = {}): FlowLMCallResult | null {
    const m = this.model;
    const { numLayers, numHeads, headDim } = m.dims;
    checkVoiceFits(voice, { numLayers, numHeads, headDim });
    this.reset();
    if (voice.kind === "audio_prompt") {
      const bos = m.insertBosBeforeVoice;
      if (bos && !m.hasBosBeforeVoice) {
        throw new InvalidVoiceError(
          `${voice.source}: the config inserts bos_before_voice but the checkpoint has no flow_lm.bos_before_voice`,
          "voice_model_mismatch",
          { file: voice.source },
        );
      }
      // In pieces, into a cache reserved once: the core's scratch keeps the size of its largest call, and a text
      // chunk's prefill, not a voice's, should set it. Each row is projected alone and attends to the cache before
      // it, so pieces give bit-identical K/V (and the last piece the same latent).
      const d = m.dims.dModel, rows = voice.conditioning;
      this.reserve(voice.frames + (bos ? 1 : 0));
      let result: FlowLMCallResult | null = null;
      for (let at = 0; at < voice.frames; at += VOICE_PREFILL_ROWS) {
        const end = Math.min(voice.frames, at + VOICE_PREFILL_ROWS);
        result = this.prefillEmbeddings(rows.subarray(at * d, end * d), {
          bosBeforeVoice: bos && at === 0,
          x0: end === voice.frames ? options.x0 : null,
        });
      }
      return result!;
    }
    const s = voice.state;
    if ((options.verifyModel ?? true) && m.insertBosBeforeVoice && m.hasBosBeforeVoice) {
      const want = m.bosKv()!;
      const d = m.dims.dModel, kv = s.layers[0];
      const got = new Float32Array(2 * d);
      got.set(kv.subarray(0, d), 0);
      got.set(kv.subarray(s.length * d, s.length * d + d), d);
      let diff = 0, scale = 0;
      for (let i = 0; i < got.length; i++) {
        diff = Math.max(diff, Math.abs(got[i] - want[i]));
        scale = Math.max(scale, Math.abs(want[i]));
      }
      if (!(diff <= IDENTITY_TOLERANCE[m.quantized ? "quantized" : "exact"] * scale)) {
        throw new InvalidVoiceError(
          `${voice.source}: the voice state's first position is not this model's bos_before_voice (relative ` +
            `difference ${(diff / scale).toExponential(2)}): the voice was made with other weights`,
          "voice_model_mismatch",
          { file: voice.source },
        );
      }
    }
    this.reserve(s.length);
    const n = 2 * s.length * m.dims.dModel;
    for (let l = 0; l < numLayers; l++) {
      const p = m.io(4 * n);
      m.core.f32(p, n).set(s.layers[l]);
      m.core.check(m.x.flow_lm_state_load_layer(this.handle, l, p, s.length), `loading voice layer ${l}`);
    }
    return null;
  }

  /** The used positions as a voice state (export with `serializeVoiceState`). */
  exportVoice(): VoiceKvState {
    const { numLayers, numHeads, headDim } = this.model.dims;
    const layers: Float32Array[] = [];
    for (let l = 0; l < numLayers; l++) this.#readLayer(l, (kv) => layers.push(kv.slice()));
    return { numLayers, numHeads, headDim, length: this.offset, layers };
  }

  /** The used positions as a voice-state file (`serializeVoiceState` of {@link exportVoice}, without the copy). */
  exportVoiceFile(): Uint8Array {
    const { numLayers, numHeads, headDim } = this.model.dims;
    const shape = { numLayers, numHeads, headDim, length: this.offset };
    return serializeVoiceStateWith(shape, (layer, dest) => {
      this.#readLayer(layer, (kv) => dest.set(new Uint8Array(kv.buffer, kv.byteOffset, kv.byteLength)));
    });
  }

  /** Layer `l`'s used K/V (`[2, T, heads, head_dim]`), as a view of wasm memory valid only during `use`. */
  #readLayer(l: number, use: (kv: Float32Array) => void): void {
    const m = this.model;
    const n = 2 * this.offset * m.dims.dModel;
    const p = m.io(4 * n);
    m.core.check(m.x.flow_lm_state_read_layer(this.handle, l, p), `reading layer ${l}`);
    use(m.core.f32(p, n));
  }

  /** Frees the state's buffers (idempotent). */
  free(): void {
    if (!this.#h) return;
    this.model.x.flow_lm_state_free(this.#h);
    this.#h = 0;
    this.model.forget(this);
  }
}
