/**
 * `POST /v1/audio/speech`: OpenAI's speech API. JSON fields: `model` (accepted, reported back in `x-model`),
 * `input`, `voice` (a name, or `{"id": name}`; optional when the server has a default voice), `response_format`
 * (default `mp3` as OpenAI's, so clients that rely on the default get MP3), `speed` (0.25–4, a pitch-preserving WSOLA
 * time-stretch), `instructions` (must be empty: Pocket TTS takes no style prompt), `stream_format` (`audio` or
 * `sse`), and the extensions `seed`, `temperature`, `lsd_steps`.
 *
 * @module
 */

import { HttpError } from "./errors.ts";
import { createEncoder } from "./formats.ts";
import { readBody } from "./limits.ts";
import { generationParams, inputText, numberField } from "./params.ts";
import { streamSpeech } from "./speech_stream.ts";
import type { ServerState } from "./state.ts";

function voiceName(v: unknown): string {
  if (typeof v === "string" && v !== "") return v;
  if (typeof v === "object" && v !== null && typeof (v as { id?: unknown }).id === "string") {
    return (v as { id: string }).id;
  }
  throw new HttpError(400, "invalid_value", "voice must be a voice name (see GET /v1/voices)", { param: "voice" });
}

/** Handles `POST /v1/audio/speech`. */
export async function handleSpeech(state: ServerState, req: Request): Promise<Response> {
  const bytes = await readBody(req, state.limits.maxJsonBytes);
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new HttpError(400, "invalid_json", "the request body must be a JSON object");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new HttpError(400, "invalid_json", "the request body must be a JSON object");
  }
  const text = inputText(body.input, "input", state.limits.maxInputChars);
  // OpenAI requires a voice; a server with a default voice lets requests leave it out.
  const voice = body.voice == null && state.defaultVoice ? state.defaultVoice : voiceName(body.voice);
  if (typeof body.instructions === "string" ? body.instructions.trim() !== "" : body.instructions != null) {
    throw new HttpError(
      400,
      "unsupported_instructions",
      "instructions are not supported: Pocket TTS takes no style prompt",
      {
        param: "instructions",
      },
    );
  }
  const speed = numberField(body.speed, "speed") ?? 1;
  if (!(speed >= 0.25 && speed <= 4)) {
    throw new HttpError(400, "invalid_value", "speed must be from 0.25 to 4", { param: "speed" });
  }
  const streamFormat = body.stream_format ?? "audio";
  if (streamFormat !== "audio" && streamFormat !== "sse") {
    throw new HttpError(400, "invalid_value", 'stream_format must be "audio" or "sse"', { param: "stream_format" });
  }
  const format = body.response_format ?? "mp3";
  const encoder = await createEncoder(String(format), { sampleRate: state.tts.sampleRate, speed });
  const params = generationParams((k) => body[k]);
  const model = typeof body.model === "string" ? body.model.slice(0, 100) : state.modelName;
  const lease = await state.voices.resolve(voice, "voice");
  return await streamSpeech(state, req, {
    text,
    voice: lease,
    ...params,
    encoder,
    sse: streamFormat === "sse",
    headers: { "x-model": model.replace(/[^\x20-\x7e]/g, "?") },
  });
}
