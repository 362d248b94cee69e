// A Deno HTTP server that streams speech as WAV while it is generated.
//
//   deno run -A examples/deno_server.ts                       # English, downloaded on first use
//   POCKET_TTS_MODEL=path/to/model deno run -A examples/deno_server.ts
//   curl "http://localhost:8000/tts?text=Hello%20world&voice=alba" > hello.wav
import { TTSModel } from "../mod.ts";
import { createSpeechHandler } from "../src/server/handler.ts";

const tts = await TTSModel.load({ model: Deno.env.get("POCKET_TTS_MODEL") });
const port = Number(Deno.env.get("PORT") ?? 8000);
Deno.serve({
  port,
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
}, createSpeechHandler(tts));
