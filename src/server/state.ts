/**
 * What one server instance holds: the model, its limits, the voice registry, the stream gate and the responses in
 * flight. Built once by `createHandler` and shared by every route.
 *
 * @module
 */

import type { TTSModel } from "../generate/tts_model.ts";
import type { ServerLimits, StreamGate } from "./limits.ts";
import type { StreamContext } from "./speech_stream.ts";
import type { VoiceRegistry } from "./voices.ts";

/** The shared state of one server. */
export interface ServerState extends StreamContext {
  tts: TTSModel;
  limits: ServerLimits;
  voices: VoiceRegistry;
  gate: StreamGate;
  /** The model's name, reported in `/health` and as the default `x-model`. */
  modelName: string;
  /** The voice used when a `/tts` request names none (`undefined`: the model's default). */
  defaultVoice?: string;
  /** Whether clients may add and delete custom voices. */
  voiceUploads: boolean;
}
