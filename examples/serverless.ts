/**
 * A serverless text-to-speech function: `export default { fetch }`, for `deno serve`, Deno Deploy, Supabase/Netlify
 * edge functions and any platform that calls a fetch handler. It needs no write permission and no home directory:
 * the model is fetched from a URL into memory once per instance, on the first request.
 *
 *   POCKET_TTS_MODEL=https://…/model/   model directory or URL holding config.json (default: English, from Hugging Face)
 *   POCKET_TTS_VOICE=https://…/v.safetensors   the instance's voice (default: the model's own)
 *   POCKET_TTS_WORKERS=0|2              threads for the model parts (default 0: one thread, the least memory)
 *
 *   deno serve --allow-net --allow-env --allow-read=. examples/serverless.ts
 *   curl -X POST localhost:8000/v1/audio/speech -H 'content-type: application/json' \
 *     -d '{"model":"pocket-tts","input":"Hello from the edge.","response_format":"wav"}' > hello.wav
 *
 * Routes: `GET /health`; `POST /v1/audio/speech` (OpenAI's request body; `voice` may be omitted for the instance's
 * voice, or a predefined voice name; `seed` for reproducible audio) → a WAV streamed as it is generated.
 *
 * @module
 */
import { TTSModel, type Voice, WavStreamWriter } from "@pocket/tts";

const env = (name: string): string | undefined => Deno.env.get(name)?.trim() || undefined;

interface Instance {
  tts: TTSModel;
  voice: Voice | undefined;
}

let instance: Promise<Instance> | null = null;

/** The model, loaded once per instance (a failed load is retried by the next request). */
function load(): Promise<Instance> {
  instance ??= (async () => {
    const model = env("POCKET_TTS_MODEL");
    const tts = await TTSModel.load({
      ...(model ? { model } : {}),
      workers: env("POCKET_TTS_WORKERS") === "2" ? 2 : 0,
      onNotice: (m) => console.warn(m),
    });
    const voiceSource = env("POCKET_TTS_VOICE");
    return { tts, voice: voiceSource ? await tts.loadVoice(voiceSource) : undefined };
  })();
  instance.catch(() => instance = null);
  return instance;
}

function error(status: number, message: string, code: string): Response {
  return Response.json({ error: { message, type: "invalid_request_error", code } }, { status });
}

async function speech(req: Request): Promise<Response> {
  const body = await req.json().catch(() => null);
  if (!body || typeof body.input !== "string") return error(400, 'give {"input": "…"}', "invalid_request");
  if ((body.response_format ?? "wav") !== "wav") return error(400, "response_format must be wav", "invalid_format");
  const { tts, voice } = await load();
  if (body.voice !== undefined && !tts.predefinedVoices.includes(body.voice)) {
    return error(400, `voice must be one of: ${tts.predefinedVoices.join(", ") || "(none)"}`, "invalid_voice");
  }
  const frames = tts.stream(body.input, {
    voice: body.voice ? await tts.loadVoice(body.voice) : voice,
    seed: typeof body.seed === "number" ? body.seed : undefined,
    signal: req.signal,
  });
  const writer = new WavStreamWriter(tts.sampleRate);
  const first = await frames.next();
  return new Response(
    new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(writer.header());
        if (!first.done) c.enqueue(writer.encode(first.value));
      },
      async pull(c) {
        const next = await frames.next();
        if (next.done) {
          c.enqueue(writer.silence(200));
          c.close();
        } else c.enqueue(writer.encode(next.value));
      },
      cancel: () => void frames.return(undefined),
    }),
    { headers: { "content-type": "audio/wav" } },
  );
}

export default {
  async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname === "/health") return Response.json({ status: "ok" });
    if (url.pathname !== "/v1/audio/speech") return error(404, "not found", "not_found");
    if (req.method !== "POST") return error(405, "use POST", "method_not_allowed");
    try {
      return await speech(req);
    } catch (e) {
      const code = (e as { code?: string }).code;
      return code ? error(400, (e as Error).message, code) : error(500, "internal error", "internal");
    }
  },
} satisfies Deno.ServeDefaultExport;
