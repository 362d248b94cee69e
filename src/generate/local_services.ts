/**
 * The two model parts on a wasm core of this thread: what the single-thread mode calls directly and what each
 * worker serves (so both modes run identical code).
 *
 * @module
 */

import { PocketTtsError, VoiceCloningUnavailableError } from "../errors.ts";
import { modelDimensions, type PocketTtsConfig } from "../model/config.ts";
import { openSafetensors, type SafetensorsReader } from "../model/safetensors.ts";
import { FlowLM, type FlowLMOptions, type FlowLMState } from "../runtime/flow_lm.ts";
import { loadWeightsIntoCore } from "../runtime/load_weights.ts";
import {
  MimiDecoder,
  mimiDecoderPlan,
  type MimiDecoderState,
  mimiStageTensors,
  planMimiDecoderWeights,
} from "../runtime/mimi_decoder.ts";
import { ENCODE_BLOCK_FRAMES, isEncoderTensor, MimiEncoder, type MimiEncoderState } from "../runtime/mimi_encoder.ts";
import type { PocketCore } from "../runtime/wasm.ts";
import { readVoiceFile, type VoiceFile } from "../voice/voice_state.ts";
import type { EncoderLoading, FlowLmService, MimiPartInfo, MimiService, VoiceRef } from "./services.ts";
import { IdleStates, type StreamState } from "./idle_states.ts";

/**
 * Closed streams' states each part keeps for the next streams (`idle_states.ts`): one request at a time needs one;
 * the second covers a request that opens while the previous one is still closing.
 */
export const IDLE_STREAM_STATES = 2;

/** The state of an open stream, or a typed error (a disposed part, or a stream already closed). */
function streamState<S>(streams: Map<number, S>, id: number, disposed: boolean): S {
  if (disposed) throw new PocketTtsError("disposed", "the TTSModel was disposed");
  const s = streams.get(id);
  if (!s) throw new PocketTtsError("stream_closed", `stream ${id} is not open`);
  return s;
}

/** Ends stream `id` (if open): its state goes back to `idle` for the next stream. */
function closeState<S extends StreamState>(streams: Map<number, S>, idle: IdleStates<S>, id: number): void {
  const state = streams.get(id);
  if (state) idle.give(state);
  streams.delete(id);
}

/** FlowLM with its voices (one state each) and one working state per open stream. */
export class LocalFlowLm implements FlowLmService {
  #model: FlowLM;
  #voices = new Map<number, FlowLMState>();
  #streams = new Map<number, FlowLMState>();
  #idle = new IdleStates<FlowLMState>(IDLE_STREAM_STATES);
  #nextId = 1;
  #nextStream = 1;
  #disposed = false;
  #empty: VoiceRef | null = null;
  #bos: Float32Array;

  #innerDim: number;

  /** Takes the `flow_lm.*` tensors from `reader` into `core` and builds FlowLM. */
  static async create(
    core: PocketCore,
    reader: SafetensorsReader,
    config: PocketTtsConfig,
    options: FlowLMOptions = {},
  ): Promise<LocalFlowLm> {
    return new LocalFlowLm(await FlowLM.fromReader(core, reader, config, options), modelDimensions(config).innerDim);
  }

  private constructor(model: FlowLM, innerDim: number) {
    this.#model = model;
    this.#innerDim = innerDim;
    this.#bos = new Float32Array(model.dims.latentDim).fill(NaN);
  }

  /** Bytes of weights one AR step reads (what the two-worker split weighs the step's cost by). */
  get stepWeightBytes(): number {
    return this.#model.stepWeightBytes;
  }

  /** Bytes of every weight FlowLM holds (for memory figures). */
  get weightBytes(): number {
    return this.#model.weightBytes;
  }

  #add(state: FlowLMState): VoiceRef {
    const id = this.#nextId++;
    this.#voices.set(id, state);
    return { id, positions: state.offset };
  }

  #voice(id: number): FlowLMState {
    if (this.#disposed) throw new PocketTtsError("disposed", "the TTSModel was disposed");
    const s = this.#voices.get(id);
    if (!s) throw new PocketTtsError("invalid_voice", `voice ${id} is not loaded (it was freed)`);
    return s;
  }

  async importVoice(bytes: Uint8Array, x0: Float32Array): Promise<VoiceRef> {
    return this.#load(await readVoiceFile(bytes, "voice"), x0);
  }

  importLatents(latents: Float32Array, voiceId?: number): Promise<VoiceRef> {
    const frames = latents.length / this.#innerDim;
    if (!Number.isInteger(frames) || frames < 1) {
      throw new RangeError(`latents must be [frames × ${this.#innerDim}], got ${latents.length} values`);
    }
    const conditioning = this.#model.speakerProject(latents, frames);
    if (voiceId !== undefined) {
      const state = this.#voice(voiceId);
      state.prefillEmbeddings(conditioning);
      return Promise.resolve({ id: voiceId, positions: state.offset });
    }
    // The first piece starts a v1.0 audio-prompt voice: the same prefill (after bos_before_voice) as its import. The
    // latent of a prefill is discarded, so no x₀ is consumed.
    const dModel = this.#model.dims.dModel;
    return Promise.resolve(this.#load({ kind: "audio_prompt", frames, dModel, conditioning, source: "audio" }, null));
  }

  #load(file: VoiceFile, x0: Float32Array | null): VoiceRef {
    const state = this.#model.createState();
    try {
      state.loadVoice(file, { x0: x0 ?? undefined });
    } catch (e) {
      state.free();
      throw e;
    }
    return this.#add(state);
  }

  exportVoice(id: number): Promise<Uint8Array> {
    return Promise.resolve(this.exportVoiceNow(id));
  }

  exportVoiceNow(id: number): Uint8Array {
    return this.#voice(id).exportVoiceFile();
  }

  emptyVoice(): Promise<VoiceRef> {
    this.#empty ??= this.#add(this.#model.createState());
    return Promise.resolve(this.#empty);
  }

  freeVoice(id: number): Promise<void> {
    this.#voices.get(id)?.free();
    this.#voices.delete(id);
    return Promise.resolve();
  }

  openStream(): Promise<number> {
    if (this.#disposed) throw new PocketTtsError("disposed", "the TTSModel was disposed");
    const id = this.#nextStream++;
    this.#streams.set(id, this.#idle.take(() => this.#model.createState()));
    return Promise.resolve(id);
  }

  closeStream(stream: number): Promise<void> {
    closeState(this.#streams, this.#idle, stream);
    return Promise.resolve();
  }

  beginChunk(stream: number, voiceId: number, ids: number[], maxGenLen: number, x0: Float32Array): Promise<void> {
    const work = streamState(this.#streams, stream, this.#disposed);
    const voice = this.#voice(voiceId);
    // Room for the whole chunk before the copy: one allocation per layer, not the voice's size then a grown copy.
    work.reserve(voice.offset + ids.length + this.#model.maxGenLen(ids.length));
    work.copyFrom(voice);
    const m = work.prepareChunk(ids.length);
    if (m !== maxGenLen) throw new RangeError(`max_gen_len ${m} != planned ${maxGenLen}`);
    // The reference decodes this call's latent from x0 and throws it away: x0 is consumed (by the caller's noise
    // stream) but the flow head need not run.
    void x0;
    work.prefillText(ids, null);
    return Promise.resolve();
  }

  step(stream: number, input: Float32Array | null, x0: Float32Array, lsdSteps: number) {
    const work = streamState(this.#streams, stream, this.#disposed);
    this.#model.lsdSteps = lsdSteps;
    return Promise.resolve(work.step(input ?? this.#bos, x0));
  }

  dispose(): Promise<void> {
    if (this.#disposed) return Promise.resolve();
    this.#disposed = true;
    for (const s of [...this.#voices.values(), ...this.#streams.values()]) s.free();
    this.#idle.free();
    this.#voices.clear();
    this.#streams.clear();
    this.#model.free();
    return Promise.resolve();
  }
}

/**
 * The Mimi decoder (or the part of it given by `stages`) with one state per open stream, reset for each text chunk;
 * and the encoder for voice cloning.
 */
export class LocalMimi implements MimiService {
  #decoder: MimiDecoder;
  #stages: { from: number; to: number };
  #streams = new Map<number, MimiDecoderState>();
  #idle = new IdleStates<MimiDecoderState>(IDLE_STREAM_STATES);
  #encodings = new Map<number, MimiEncoderState>();
  #nextStream = 1;
  #disposed = false;
  #loadEncoder: (() => Promise<MimiEncoder>) | null;
  #encoder: Promise<MimiEncoder> | null = null;

  /**
   * Takes the decoder's `mimi.*` tensors (and the latent statistics) from `reader` into `core` and builds the
   * decoder, or only its stages `stages` (one part of a decoder split between threads: only those stages' tensors
   * are read); and the encoder's as `encoder` says (`"lazy"` reopens `weightsPath` on the first {@link openEncoding}).
   */
  static async create(
    core: PocketCore,
    reader: SafetensorsReader,
    config: PocketTtsConfig,
    encoder: EncoderLoading = "none",
    weightsPath?: string,
    stages?: { from: number; to: number },
  ): Promise<LocalMimi> {
    const part = stages ?? { from: 0, to: mimiDecoderPlan(core, config).length };
    const eager = encoder === "eager" || (encoder === "lazy" && weightsPath === undefined);
    // The decoder's big weights are packed as they arrive, in the order it takes them (then the encoder's): the
    // blocks their staging copies leave hold the next ones.
    const encoderTensors = eager ? reader.tensors.map((t) => t.name).filter(isEncoderTensor) : [];
    planMimiDecoderWeights(core, config, part);
    await loadWeightsIntoCore(core, reader, [...mimiStageTensors(core, config, part), ...encoderTensors]);
    const latentStats = part.from === 0
      ? { mean: await reader.float32("flow_lm.emb_mean"), std: await reader.float32("flow_lm.emb_std") }
      : undefined;
    const decoder = MimiDecoder.create(core, config, { latentStats, stages: stages && part });
    let enc: (() => Promise<MimiEncoder>) | null = null;
    if (eager) {
      const built = MimiEncoder.create(core, config);
      enc = () => Promise.resolve(built);
    } else if (encoder === "lazy") {
      enc = async () => {
        const r = await openSafetensors(weightsPath!);
        try {
          await loadWeightsIntoCore(core, r, isEncoderTensor);
        } finally {
          await r.close();
        }
        return MimiEncoder.create(core, config);
      };
    }
    return new LocalMimi(decoder, part, enc);
  }

  private constructor(
    decoder: MimiDecoder,
    stages: { from: number; to: number },
    loadEncoder: (() => Promise<MimiEncoder>) | null,
  ) {
    this.#decoder = decoder;
    this.#stages = stages;
    this.#loadEncoder = loadEncoder;
  }

  parts(): Promise<MimiPartInfo[]> {
    if (this.#disposed) throw new PocketTtsError("disposed", "the TTSModel was disposed");
    let stateBytes = 0;
    for (const s of this.#streams.values()) stateBytes += s.bytes;
    const info = { stages: this.#stages, streams: this.#streams.size, weightBytes: this.#decoder.weightBytes };
    return Promise.resolve([{ ...info, stateBytes }]);
  }

  async openEncoding(): Promise<number> {
    if (this.#disposed) throw new PocketTtsError("disposed", "the TTSModel was disposed");
    if (!this.#loadEncoder) throw new VoiceCloningUnavailableError();
    const load = this.#loadEncoder;
    this.#encoder ??= load().catch((e) => {
      this.#encoder = null;
      throw e;
    });
    const state = (await this.#encoder).createState({ maxFrames: ENCODE_BLOCK_FRAMES });
    const id = this.#nextStream++;
    this.#encodings.set(id, state);
    return id;
  }

  encodeBlock(encoding: number, audio: Float32Array): Promise<Float32Array> {
    return Promise.resolve(streamState(this.#encodings, encoding, this.#disposed).encode(audio));
  }

  closeEncoding(encoding: number): Promise<void> {
    this.#encodings.get(encoding)?.free();
    this.#encodings.delete(encoding);
    return Promise.resolve();
  }

  openStream(): Promise<number> {
    if (this.#disposed) throw new PocketTtsError("disposed", "the TTSModel was disposed");
    const id = this.#nextStream++;
    this.#streams.set(id, this.#idle.take(() => this.#decoder.createState()));
    return Promise.resolve(id);
  }

  closeStream(stream: number): Promise<void> {
    closeState(this.#streams, this.#idle, stream);
    return Promise.resolve();
  }

  reset(stream: number): Promise<void> {
    streamState(this.#streams, stream, this.#disposed).reset();
    return Promise.resolve();
  }

  decode(stream: number, latent: Float32Array): Promise<Float32Array> {
    return Promise.resolve(streamState(this.#streams, stream, this.#disposed).decode(latent));
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const s of [...this.#streams.values(), ...this.#encodings.values()]) s.free();
    this.#idle.free();
    this.#streams.clear();
    this.#encodings.clear();
    this.#decoder.free();
    (await this.#encoder?.catch(() => null))?.free();
  }
}
