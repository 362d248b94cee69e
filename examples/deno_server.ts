// A Deno HTTP server: the web page, OpenAI's speech API and the reference's /tts, from `createHandler`.
//
//   deno run -A examples/deno_server.ts                        # English, downloaded on first use
//   POCKET_TTS_MODEL=path/to/model POCKET_TTS_VOICES=path/to/voices deno run -A examples/deno_server.ts
//   curl localhost:8000/v1/audio/speech -H 'content-type: application/json' \
//     -d '{"model":"pocket-tts","input":"Hello world","voice":"alba","response_format":"wav"}' > hello.wav
import { TTSModel } from "../mod.ts";
import { createHandler } from "../src/server/mod.ts";

const env = (k: string) => Deno.env.get(k);
const tts = await TTSModel.load({ model: env("POCKET_TTS_MODEL") });
// Operator voices: every voice-state file in a directory, named by its file stem.
const voices: Record<string, Uint8Array> = {};
const dir = env("POCKET_TTS_VOICES");
for (const e of dir ? Deno.readDirSync(dir) : []) {
  if (e.isFile) voices[e.name.replace(/\.[^.]*$/, "")] = Deno.readFileSync(`${dir}/${e.name}`);
}
const handler = createHandler(tts, { voices, apiKey: env("API_KEY") });
await handler.ready;
const server = Deno.serve({
  port: Number(env("PORT") ?? 8000),
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
}, handler);
Deno.addSignalListener("SIGTERM", async () => {
  await handler.close(); // ends the streams in flight, each within one frame
  await server.shutdown();
  tts.dispose();
});
