/**
 * `@pocket/tts/server`: a production HTTP server for Pocket TTS as one fetch-style handler. Endpoints: OpenAI's
 * `POST /v1/audio/speech`, the reference's `POST /tts` (multipart), `GET /v1/voices`, `GET /health` and a web page at
 * `/`. Voices are names only; limits, an optional API key and CORS are built in; concurrent requests are interleaved
 * frame by frame, and a client that leaves stops its generation.
 *
 * @example
 * ```ts
 * import { TTSModel } from "@pocket/tts";
 * import { createHandler } from "@pocket/tts/server";
 *
 * const tts = await TTSModel.load();
 * Deno.serve({ port: 8000 }, createHandler(tts));
 * ```
 *
 * @module
 */

export { createHandler } from "./handler.ts";
export type { HandlerOptions, SpeechHandler } from "./handler.ts";
export { DEFAULT_LIMITS } from "./limits.ts";
export type { ServerLimits } from "./limits.ts";
export type { CorsOptions } from "./cors.ts";
export { HttpError } from "./errors.ts";
export { supportedFormats } from "./formats.ts";
export { serve } from "./serve.ts";
export type { RunningServer, ServeOptions } from "./serve.ts";
export type { GenerateOptions, TTSModel } from "../generate/tts_model.ts";
export { PocketTtsError } from "../errors.ts";
