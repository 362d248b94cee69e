// A Bun HTTP server: the web page, OpenAI's speech API and the reference's /tts, from `createHandler`.
//
//   bun examples/bun_server.ts                                 # English, downloaded on first use
//   POCKET_TTS_MODEL=path/to/model POCKET_TTS_VOICES=path/to/voices bun examples/bun_server.ts
//   curl localhost:8000/v1/audio/speech -H 'content-type: application/json' \
//     -d '{"model":"pocket-tts","input":"Hello world","voice":"alba","response_format":"wav"}' > hello.wav
import { readdirSync, readFileSync } from "node:fs";
import { TTSModel } from "../mod.ts";
import { createHandler } from "../src/server/mod.ts";

const env = process.env;
const tts = await TTSModel.load({ model: env.POCKET_TTS_MODEL });
// Operator voices: every voice-state file in a directory, named by its file stem.
const voices: Record<string, Uint8Array> = {};
const dir = env.POCKET_TTS_VOICES;
for (const name of dir ? readdirSync(dir) : []) {
  voices[name.replace(/\.[^.]*$/, "")] = new Uint8Array(readFileSync(`${dir}/${name}`));
}
const handler = createHandler(tts, { voices, apiKey: env.API_KEY });
await handler.ready;
// deno-lint-ignore no-explicit-any
const server = (globalThis as any).Bun.serve({
  port: Number(env.PORT ?? 8000),
  hostname: "127.0.0.1",
  fetch: handler,
  idleTimeout: 0, // streams may pause while other clients' frames are generated
});
console.log(`listening on http://127.0.0.1:${server.port}`);
process.on("SIGTERM", async () => {
  await handler.close(); // ends the streams in flight, each within one frame
  server.stop(true);
  tts.dispose();
});
