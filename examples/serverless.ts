/**
 * A serverless text-to-speech function: `export default { fetch }`, for `deno serve`, Deno Deploy, Supabase/Netlify
 * edge functions and any platform that calls a fetch handler. It is the library's server (`createHandler`: the same
 * routes, limits, errors and streaming as `pocket-tts serve`) around a model loaded once per instance, on the first
 * request. It needs no write permission and no home directory: the model is fetched from a URL into memory.
 *
 *   POCKET_TTS_MODEL=https://…/model/   model directory or URL holding config.json (default: English, from Hugging Face)
 *   POCKET_TTS_VOICE=NAME|URL           the instance's voice, used when a request names none (default: the model's)
 *   POCKET_TTS_WORKERS=0|2              threads for the model parts (default 0: one thread, the least memory)
 *   POCKET_TTS_API_KEY=KEY              require "Authorization: Bearer KEY" (default: none)
 *
 *   deno serve --allow-net --allow-env --allow-read=. examples/serverless.ts
 *   curl -X POST localhost:8000/v1/audio/speech -H 'content-type: application/json' \
 *     -d '{"model":"pocket-tts","input":"Hello from the edge.","response_format":"wav"}' > hello.wav
 *
 * Routes: those of `createHandler` (`GET /health`, `POST /v1/audio/speech`, `POST /tts`, `GET /v1/voices`, the page);
 * `voice` may be omitted for the instance's voice.
 *
 * @module
 */
import { TTSModel } from "@pocket/tts";
import { createHandler, type SpeechHandler } from "@pocket/tts/server";

const env = (name: string): string | undefined => Deno.env.get(name)?.trim() || undefined;

let instance: Promise<SpeechHandler> | null = null;

/** The model and its handler, made once per instance (a failed load is retried by the next request). */
function load(): Promise<SpeechHandler> {
  instance ??= (async () => {
    const model = env("POCKET_TTS_MODEL");
    const tts = await TTSModel.load({
      ...(model ? { model } : {}),
      workers: env("POCKET_TTS_WORKERS") === "2" ? 2 : 0,
      onNotice: (m) => console.warn(m),
    });
    // The instance's voice (the operator's setting, never a request's): a predefined name as is, anything else
    // loaded once and registered as "default".
    const source = env("POCKET_TTS_VOICE");
    const voices: Record<string, Uint8Array> = {};
    if (source && !tts.predefinedVoices.includes(source)) {
      const voice = await tts.loadVoice(source);
      voices.default = tts.exportVoice(voice);
      await tts.freeVoice(voice);
    }
    const handler = createHandler(tts, {
      voices,
      defaultVoice: source && !voices.default ? source : voices.default ? "default" : undefined,
      apiKey: env("POCKET_TTS_API_KEY"),
    });
    await handler.ready;
    return handler;
  })();
  instance.catch((e) => {
    console.error("pocket-tts: the model could not be loaded:", e);
    instance = null;
  });
  return instance;
}

export default {
  async fetch(req: Request): Promise<Response> {
    let handler: SpeechHandler;
    try {
      handler = await load();
    } catch {
      const error = { message: "the model is not available; retry later", type: "server_error", code: "unavailable" };
      return Response.json({ error }, { status: 503, headers: { "retry-after": "5" } });
    }
    return await handler(req);
  },
} satisfies Deno.ServeDefaultExport;
