/**
 * The voice routes: `GET /v1/voices` (alias `/v1/audio/voices`) lists the names a request may use; when the operator
 * enables uploads, `POST /v1/voices` (multipart `name` + `file`) adds a custom voice kept in memory, within the count
 * and byte limits, and `DELETE /v1/voices/{name}` removes one.
 *
 * @module
 */

import { HttpError, jsonResponse } from "./errors.ts";
import type { ServerState } from "./state.ts";
import { readForm, uploadedFile } from "./tts_form.ts";

/** Handles `GET /v1/voices`. */
export function listVoices(state: ServerState): Response {
  const voices = state.voices.list();
  return jsonResponse({
    object: "list",
    data: voices.map((v) => ({ id: v.name, name: v.name, type: v.kind })),
    voices: voices.map((v) => v.name),
  });
}

function uploadsEnabled(state: ServerState): void {
  if (!state.voiceUploads) {
    throw new HttpError(403, "voice_uploads_disabled", "this server does not accept custom voices");
  }
}

/** Handles `POST /v1/voices`. */
export async function addVoice(state: ServerState, req: Request): Promise<Response> {
  uploadsEnabled(state);
  const form = await readForm(req, state.limits.maxUploadBytes);
  const name = form.get("name");
  if (typeof name !== "string" || name === "") {
    throw new HttpError(400, "invalid_value", "name must be the new voice's name", { param: "name" });
  }
  const file = await uploadedFile(form, "file");
  if (!file) throw new HttpError(400, "invalid_value", "file must be the uploaded voice file", { param: "file" });
  await state.voices.addCustom(name, file);
  return jsonResponse({ id: name, name, type: "custom" }, 201);
}

/** Handles `DELETE /v1/voices/{name}`. */
export async function deleteVoice(state: ServerState, name: string): Promise<Response> {
  uploadsEnabled(state);
  await state.voices.removeCustom(name);
  return jsonResponse({ id: name, deleted: true });
}
