// A Bun HTTP server that streams speech as WAV while it is generated.
//
//   bun examples/bun_server.ts                                # English, downloaded on first use
//   POCKET_TTS_MODEL=path/to/model bun examples/bun_server.ts
//   curl "http://localhost:8000/tts?text=Hello%20world&voice=alba" > hello.wav
import { TTSModel } from "../mod.ts";
import { createSpeechHandler } from "../src/server/handler.ts";

const tts = await TTSModel.load({ model: process.env.POCKET_TTS_MODEL });
const port = Number(process.env.PORT ?? 8000);
const handler = createSpeechHandler(tts);
// deno-lint-ignore no-explicit-any
const server = (globalThis as any).Bun.serve({ port, hostname: "127.0.0.1", fetch: handler });
console.log(`listening on http://127.0.0.1:${server.port}`);
