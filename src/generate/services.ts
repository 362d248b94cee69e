/**
 * The two model parts as the generator sees them: FlowLM (text + voice → latents) and the Mimi decoder
 * (latent → 80 ms of audio; it also holds the encoder that turns a recording into latents for voice cloning). Each is implemented locally (a wasm core on this thread) or in a worker (the same
 * local implementation driven over {@link RpcClient}); the generator cannot tell which, so both modes run the
 * same calls in the same order and produce bit-identical audio.
 *
 * Weights and state are separate: a part holds its weights once and any number of **streams**, each with its own
 * state (FlowLM: KV caches; Mimi: carried convolution/attention state). A request opens one stream on each part,
 * runs its calls on it, and closes it; streams of concurrent requests never touch each other's state, so their calls
 * may be interleaved in any order (see {@link RoundRobinScheduler}) and each request's audio stays the same as if it
 * ran alone. Calls on one stream must be issued in order (a worker serves calls in arrival order).
 *
 * @module
 */

/** A voice held by a FlowLM service: its id there and the number of KV positions it fills. */
export interface VoiceRef {
  id: number;
  positions: number;
}

/** The FlowLM part. Every call that runs the model consumes exactly one x₀ row (32 values, already scaled). */
export interface FlowLmService {
  /** Imports a voice file (any supported format); `audio_prompt` files consume one x₀ row for their prefill. */
  importVoice(bytes: Uint8Array, x0: Float32Array): Promise<VoiceRef>;
  /** The voice as a voice-state file in the reference's current format. */
  exportVoice(id: number): Promise<Uint8Array>;
  /**
   * The same at once, where the part runs on the caller's thread: the model then keeps no copy of a voice's file
   * (MBs of KV state) for `TTSModel.exportVoice`, which is synchronous.
   */
  exportVoiceNow?(id: number): Uint8Array;
  /** An empty voice (no prefix). */
  emptyVoice(): Promise<VoiceRef>;
  /** Forgets a voice. */
  freeVoice(id: number): Promise<void>;
  /** Opens a stream with its own (empty) FlowLM state; returns its id. */
  openStream(): Promise<number>;
  /** Starts a chunk on `stream`: copy of the voice state, cache grown for `maxGenLen`, text prefill (consumes `x0`). */
  beginChunk(stream: number, voiceId: number, ids: number[], maxGenLen: number, x0: Float32Array): Promise<void>;
  /** One AR step of `stream` from `input` (a normalised latent, or `null` for BOS). */
  step(
    stream: number,
    input: Float32Array | null,
    x0: Float32Array,
    lsdSteps: number,
  ): Promise<{ latent: Float32Array; eosLogit: number }>;
  /** Frees the stream's state (unknown ids are ignored, so closing twice is harmless). */
  closeStream(stream: number): Promise<void>;
  /** Frees the part's wasm state (and terminates its worker). */
  dispose(): Promise<void>;
  /**
   * Voice cloning, piece by piece: raw Mimi-encoder latents (`[frames × inner_dim]`) through the speaker projection
   * and prefilled. Without `voiceId` a new voice starts (after `bos_before_voice`); with it, the rows are appended to
   * that voice. Pieces give the same voice as one call (each row is projected and attended to alone).
   */
  importLatents(latents: Float32Array, voiceId?: number): Promise<VoiceRef>;
  /** Where the part has helper threads: the chunks of work they have run (a diagnostic, for tests). */
  helperChunks?(): Promise<number>;
}

/** A frame {@link MimiService.decodeStep} started: its samples once `commit()`ed; rejected when `cancel()`ed. */
export interface PendingFrame {
  frame: Promise<Float32Array>;
  commit(): void;
  cancel(): void;
}

/** What one Mimi part holds (see {@link MimiService.parts}): for tests and diagnostics. */
export interface MimiPartInfo {
  /** The decoder stages it runs (`mimiDecoderPlan` indices `from..to`). */
  stages: { from: number; to: number };
  /** Streams open on it. */
  streams: number;
  /** Bytes of its packed decoder weights. */
  weightBytes: number;
  /** Bytes of its streams' states (carried state and scratch). */
  stateBytes: number;
}

/**
 * The Mimi decoder part. With two workers its stages may be split between them (`mimi_split.ts`): the caller still
 * sees one decoder, each stream's state living in pieces, each piece in the worker that runs its stages.
 */
export interface MimiService {
  /** Opens a stream with its own decoder state; returns its id. */
  openStream(): Promise<number>;
  /** Resets the stream to a fresh state (each text chunk is decoded from a fresh state). */
  reset(stream: number): Promise<void>;
  /** Decodes one normalised latent of `stream` into its 1920 samples (`latent`'s buffer may be transferred). */
  decode(stream: number, latent: Float32Array): Promise<Float32Array>;
  /**
   * Where the FlowLM part's worker also runs this decoder's first stages: decodes the latent the last
   * {@link FlowLmService.step} of `flowStream` produced. Called right after that `step`, before awaiting it, the first
   * stages run the moment the step ends, with no round trip through the caller's thread. The frame goes on to the
   * later stages only after `commit()`; after `cancel()` (the step ended the chunk) it is dropped, and the first
   * stages' state has run one frame more than the stream emits: reset or close the stream before its next decode.
   */
  decodeStep?(stream: number, flowStream: number): PendingFrame;
  /** What each part holds, in stage order. */
  parts(): Promise<MimiPartInfo[]>;
  /** Frees the stream's state (unknown ids are ignored). */
  closeStream(stream: number): Promise<void>;
  /** Frees the part's wasm state (and terminates its worker). */
  dispose(): Promise<void>;
  /**
   * Voice cloning: opens an encoding (a fresh encoder state; the encoder is loaded on first use). Rejects when this
   * part was started without the encoder.
   */
  openEncoding(): Promise<number>;
  /** The raw latents (`[frames × inner_dim]`) of the encoding's next block (whole frames of 24 kHz mono audio). */
  encodeBlock(encoding: number, audio: Float32Array): Promise<Float32Array>;
  /** Frees the encoding's state (unknown ids are ignored). */
  closeEncoding(encoding: number): Promise<void>;
}

/**
 * Where the Mimi part gets its encoder: `"eager"` loads it with the decoder, `"lazy"` from the same local weights
 * file on the first {@link MimiService.openEncoding} (so models that never clone never hold it), `"none"`: the checkpoint
 * has no usable encoder.
 */
export type EncoderLoading = "eager" | "lazy" | "none";
