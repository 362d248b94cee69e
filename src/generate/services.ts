/**
 * The two model parts as the generator sees them: FlowLM (text + voice → latents) and the Mimi decoder
 * (latent → 80 ms of audio). Each is implemented locally (a wasm core on this thread) or in a worker (the same
 * local implementation driven over {@link RpcClient}); the generator cannot tell which, so both modes run the
 * same calls in the same order and produce bit-identical audio.
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
  /** An empty voice (no prefix). */
  emptyVoice(): Promise<VoiceRef>;
  /** Forgets a voice. */
  freeVoice(id: number): Promise<void>;
  /** Starts a chunk: copy of the voice state, cache grown for `maxGenLen`, text prefill (consumes `x0`). */
  beginChunk(voiceId: number, ids: number[], maxGenLen: number, x0: Float32Array): Promise<void>;
  /** One AR step from `input` (a normalised latent, or `null` for BOS). */
  step(
    input: Float32Array | null,
    x0: Float32Array,
    lsdSteps: number,
  ): Promise<{ latent: Float32Array; eosLogit: number }>;
  /** Frees the part's wasm state (and terminates its worker). */
  dispose(): Promise<void>;
}

/** The Mimi decoder part. */
export interface MimiService {
  /** Starts a fresh stream (each text chunk is decoded from a fresh state). */
  reset(): Promise<void>;
  /** Decodes one normalised latent into its 1920 samples. */
  decode(latent: Float32Array): Promise<Float32Array>;
  /** Frees the part's wasm state (and terminates its worker). */
  dispose(): Promise<void>;
}
