/**
 * A fetch-style HTTP handler (`(Request) => Promise<Response>`) serving speech as a streaming WAV, for
 * `Deno.serve`, `Bun.serve` or any runtime with the Fetch API. Each 80 ms frame is sent as soon as it is generated
 * (unknown-length WAV header, as the reference's streaming writer does); a client that disconnects aborts its
 * request.
 *
 * Routes: `GET /tts?text=…&voice=…&seed=…&temperature=…` or `POST /tts` with a JSON body of the same fields →
 * `audio/wav`; `GET /voices` → JSON list; `GET /health` → `ok`. Errors are JSON `{error, code}` with status 400
 * (bad request) or 500.
 *
 * @module
 */

import { WavStreamWriter } from "../audio/wav.ts";
import { PocketTtsError } from "../errors.ts";
import type { TTSModel, Voice } from "../generate/tts_model.ts";

/** A request's parameters. */
interface SpeechRequest {
  text?: string;
  voice?: string;
  seed?: number;
  temperature?: number;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

async function readRequest(req: Request, url: URL): Promise<SpeechRequest> {
  if (req.method === "POST") {
    try {
      return await req.json() as SpeechRequest;
    } catch {
      throw new PocketTtsError("bad_request", 'the request body must be JSON: {"text": "…", "voice": "…"}');
    }
  }
  const p = url.searchParams;
  const num = (k: string) => p.has(k) ? Number(p.get(k)) : undefined;
  return {
    text: p.get("text") ?? undefined,
    voice: p.get("voice") ?? undefined,
    seed: num("seed"),
    temperature: num("temperature"),
  };
}

/**
 * Creates the handler for a loaded model. Voices named in requests are loaded once and kept.
 *
 * @example
 * ```ts
 * const tts = await TTSModel.load();
 * Deno.serve({ port: 8000 }, createSpeechHandler(tts));
 * // curl "http://localhost:8000/tts?text=Hello%20world&voice=alba" > hello.wav
 * ```
 */
export function createSpeechHandler(tts: TTSModel): (req: Request) => Promise<Response> {
  const voices = new Map<string, Promise<Voice>>();
  const voice = (name: string) => {
    let v = voices.get(name);
    if (!v) {
      v = tts.loadVoice(name);
      v.catch(() => voices.delete(name));
      voices.set(name, v);
    }
    return v;
  };

  return async (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/health") return new Response("ok");
    if (url.pathname === "/voices") return json(tts.predefinedVoices);
    if (url.pathname !== "/tts") return json({ error: "not found", code: "not_found" }, 404);
    try {
      const r = await readRequest(req, url);
      if (typeof r.text !== "string" || r.text.trim() === "") {
        throw new PocketTtsError("empty_text", 'give the text to speak (?text=… or {"text": …})');
      }
      const options = {
        voice: r.voice ? await voice(r.voice) : undefined,
        seed: r.seed,
        temperature: r.temperature,
        signal: req.signal,
      };
      const frames = tts.stream(r.text, options);
      // Pull the first frame before answering, so bad input becomes a 400 instead of a broken stream.
      const first = await frames.next();
      const writer = new WavStreamWriter(tts.sampleRate);
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(writer.header());
          if (!first.done) controller.enqueue(writer.encode(first.value));
        },
        async pull(controller) {
          const next = await frames.next();
          if (next.done) {
            controller.enqueue(writer.silence(200));
            controller.close();
          } else controller.enqueue(writer.encode(next.value));
        },
        async cancel() {
          await frames.return(undefined);
        },
      });
      return new Response(body, { headers: { "content-type": "audio/wav", "cache-control": "no-store" } });
    } catch (e) {
      if (e instanceof PocketTtsError) return json({ error: e.message, code: e.code }, 400);
      return json({ error: String((e as Error)?.message ?? e), code: "internal" }, 500);
    }
  };
}
