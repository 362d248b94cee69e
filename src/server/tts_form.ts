/**
 * `POST /tts`: the reference server's multipart form. `text` (required, not blank), and at most one of `voice_url` (a
 * registered or predefined voice name; a URL only from an origin the operator allowed) or an uploaded `voice_wav`
 * (cloned when the model can clone, or a voice-state file). Sending both is a 400, as in the reference; neither uses
 * the default voice. Extensions: `seed`, `temperature`, `lsd_steps`. The answer is the reference's streamed WAV
 * (unknown-length header, PCM16 as generated, 200 ms of trailing silence) as `generated_speech.wav`.
 *
 * @module
 */

import { HttpError } from "./errors.ts";
import { createEncoder } from "./formats.ts";
import { readBody } from "./limits.ts";
import { generationParams, inputText } from "./params.ts";
import { streamSpeech } from "./speech_stream.ts";
import type { ServerState } from "./state.ts";
import type { VoiceLease } from "./voices.ts";

/** The form of a request whose body is at most `max` bytes (413 beyond; 400 when it is not a form). */
export async function readForm(req: Request, max: number): Promise<FormData> {
  const type = req.headers.get("content-type") ?? "";
  if (!/^(multipart\/form-data|application\/x-www-form-urlencoded)\b/i.test(type)) {
    throw new HttpError(415, "unsupported_media_type", "send the fields as multipart/form-data");
  }
  const bytes = await readBody(req, max);
  try {
    return await new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { "content-type": type } }).formData();
  } catch {
    throw new HttpError(400, "invalid_form", "the multipart form could not be parsed");
  }
}

/** The bytes of an uploaded file field, or `null` when the field is absent or empty. */
export async function uploadedFile(form: FormData, field: string): Promise<Uint8Array | null> {
  const v = form.get(field);
  if (v === null || v === "") return null;
  if (typeof v === "string") {
    throw new HttpError(400, "invalid_value", `${field} must be an uploaded file`, { param: field });
  }
  const bytes = new Uint8Array(await v.arrayBuffer());
  return bytes.length ? bytes : null;
}

/** Handles `POST /tts`. */
export async function handleTtsForm(state: ServerState, req: Request): Promise<Response> {
  const form = await readForm(req, state.limits.maxUploadBytes);
  const text = inputText(form.get("text"), "text", state.limits.maxInputChars);
  const voiceUrl = form.get("voice_url");
  if (voiceUrl !== null && typeof voiceUrl !== "string") {
    throw new HttpError(400, "invalid_value", "voice_url must be a text field", { param: "voice_url" });
  }
  const upload = await uploadedFile(form, "voice_wav");
  if (voiceUrl && upload) {
    throw new HttpError(400, "conflicting_voices", "give either voice_url or voice_wav, not both", {
      param: "voice_wav",
    });
  }
  const params = generationParams((k) => form.get(k) ?? undefined);
  let lease: VoiceLease;
  if (upload) {
    lease = await state.voices.oneOff(upload, "voice_wav");
  } else lease = await state.voices.resolve(voiceUrl || state.defaultVoice, "voice_url");
  return await streamSpeech(state, req, {
    text,
    voice: lease,
    ...params,
    encoder: await createEncoder("wav", { sampleRate: state.tts.sampleRate, trailingSilenceMs: 200 }),
    headers: { "content-disposition": "attachment; filename=generated_speech.wav" },
  });
}
