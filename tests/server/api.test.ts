// The server's endpoints over real HTTP on loopback (Deno.serve, Bun.serve or node:http): formats, the reference's
// /tts form, voices, health, the page, and every 4xx the issue lists; errors in OpenAI's JSON shape.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { encodeWav } from "../../mod.ts";
import { opusTone } from "../support/audio.ts";
import { repoRoot } from "../support/fixtures.ts";
import { errorOf, expectedAudio, speech, withServer } from "../support/server.ts";
import { TINY_VOICE } from "../support/tiny_model.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const bytes = async (res: Response) => new Uint8Array(await res.arrayBuffer());
const TEXT = "Hello from the server.";

describe("server: OpenAI speech API", () => {
  test("wav and pcm stream the same bytes as the library; model reported back; SSE deltas + done", async () => {
    await withServer({}, async ({ base, tts }) => {
      for (const format of ["wav", "pcm"] as const) {
        const res = await speech(base, {
          model: "tts-1",
          input: TEXT,
          voice: "tiny",
          response_format: format,
          seed: 5,
        });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("content-type"), format === "wav" ? "audio/wav" : "audio/pcm");
        assert.equal(res.headers.get("x-model"), "tts-1");
        assert.deepEqual(await bytes(res), await expectedAudio(tts, TEXT, 5, format));
      }
      // {"id": name} voices (the newer OpenAI shape) and the extensions change the audio as they should.
      const hot = await speech(base, {
        input: TEXT,
        voice: { id: "tiny" },
        response_format: "pcm",
        seed: 5,
        temperature: 0,
      });
      assert.equal(hot.status, 200);
      assert.notDeepEqual(await bytes(hot), await expectedAudio(tts, TEXT, 5, "pcm"));

      const sse = await speech(base, {
        input: TEXT,
        voice: "tiny",
        response_format: "pcm",
        stream_format: "sse",
        seed: 5,
      });
      assert.equal(sse.headers.get("content-type"), "text/event-stream");
      const events = (await sse.text()).trim().split("\n\n").map((e) => JSON.parse(e.replace(/^data: /, "")));
      const deltas = events.filter((e) => e.type === "speech.audio.delta");
      assert.ok(deltas.length >= 2);
      const joined = deltas.map((d) => Uint8Array.from(atob(d.audio), (c) => c.charCodeAt(0)));
      const all = new Uint8Array(joined.reduce((n, b) => n + b.length, 0));
      joined.reduce((at, b) => (all.set(b, at), at + b.length), 0);
      assert.deepEqual(all, await expectedAudio(tts, TEXT, 5, "pcm"));
      const done = events.at(-1);
      assert.equal(done.type, "speech.audio.done");
      assert.ok(done.usage.input_tokens > 0 && done.usage.output_tokens === deltas.length);
    });
  });

  test("4xx: formats, speed, instructions, bad JSON, fields, limits; never WAV under another name", async () => {
    await withServer({ limits: { maxInputChars: 50, maxJsonBytes: 2048 } }, async ({ base }) => {
      const cases: [Record<string, unknown> | string, number, string][] = [
        [{ input: TEXT, voice: "tiny", response_format: "aac" }, 400, "unsupported_response_format"],
        [{ input: TEXT, voice: "tiny", response_format: "wav", speed: 9 }, 400, "invalid_value"],
        [
          { input: TEXT, voice: "tiny", response_format: "wav", instructions: "whisper" },
          400,
          "unsupported_instructions",
        ],
        [{ input: TEXT, voice: "tiny", response_format: "wav", stream_format: "ws" }, 400, "invalid_value"],
        [{ input: "  ", voice: "tiny", response_format: "wav" }, 400, "empty_text"],
        [{ input: 42, voice: "tiny", response_format: "wav" }, 400, "invalid_value"],
        [{ input: "x".repeat(51), voice: "tiny", response_format: "wav" }, 400, "input_too_long"],
        [{ input: TEXT, response_format: "wav" }, 400, "invalid_value"],
        [{ input: TEXT, voice: "nobody", response_format: "wav" }, 400, "voice_not_found"],
        [{ input: TEXT, voice: "tiny", response_format: "wav", seed: -1 }, 400, "invalid_value"],
        [{ input: TEXT, voice: "tiny", response_format: "wav", temperature: "hot" }, 400, "invalid_value"],
        [{ input: TEXT, voice: "tiny", response_format: "wav", lsd_steps: 0 }, 400, "invalid_value"],
        ["{not json", 400, "invalid_json"],
        ["[1,2]", 400, "invalid_json"],
        [JSON.stringify({ input: "x".repeat(4000), voice: "tiny" }), 413, "request_too_large"],
      ];
      for (const [body, status, code] of cases) {
        const res = await fetch(`${base}/v1/audio/speech`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: typeof body === "string" ? body : JSON.stringify(body),
        });
        assert.equal(res.status, status, JSON.stringify(body).slice(0, 80));
        assert.equal(res.headers.get("content-type"), "application/json");
        const err = await errorOf(res);
        assert.equal(err.code, code, JSON.stringify(body).slice(0, 80));
        assert.ok(!/\bat .*:\d+:\d+/.test(err.message), "no stack trace");
      }
      const format = await errorOf(await speech(base, { input: TEXT, voice: "tiny", response_format: "aac" }));
      assert.match(format.message, /pcm, wav, mp3, opus, flac/);
      assert.equal((await fetch(`${base}/nope`)).status, 404);
      const wrong = await fetch(`${base}/v1/audio/speech`);
      assert.equal(wrong.status, 405);
      assert.equal(wrong.headers.get("allow"), "POST");
      await wrong.body?.cancel();
    });
  });

  test("the official openai SDK: audio.speech.create for wav and pcm", {
    skip: g.Deno || g.Bun ? false : "the openai SDK needs Node ≥ 22; it runs in the Deno and Bun passes",
  }, async () => {
    const { default: OpenAI } = await import(new URL("node_modules/openai/index.mjs", repoRoot).href);
    await withServer({ apiKey: "sk-test-key" }, async ({ base, tts }) => {
      const client = new OpenAI({ apiKey: "sk-test-key", baseURL: `${base}/v1`, maxRetries: 0 });
      for (const format of ["wav", "pcm"] as const) {
        const res = await client.audio.speech.create(
          { model: "pocket-tts", input: TEXT, voice: "tiny", response_format: format, seed: 8 },
        );
        assert.deepEqual(await bytes(res), await expectedAudio(tts, TEXT, 8, format));
      }
      const bad = new OpenAI({ apiKey: "wrong", baseURL: `${base}/v1`, maxRetries: 0 });
      await assert.rejects(
        bad.audio.speech.create({ model: "pocket-tts", input: TEXT, voice: "alloy", response_format: "wav" }),
        (e: { status?: number }) => e.status === 401,
      );
    });
  });
});

describe("server: every response format is really that format; speed time-stretches", () => {
  test("mp3 (the default), opus in Ogg, flac: their own signatures and types; speed 2 halves the audio", async () => {
    await withServer({}, async ({ base, tts }) => {
      const ascii = (b: Uint8Array, at: number, n: number) => String.fromCharCode(...b.subarray(at, at + n));
      const mp3 = await speech(base, { input: TEXT, voice: "tiny", seed: 5 });
      assert.equal(mp3.headers.get("content-type"), "audio/mpeg");
      const m = await bytes(mp3);
      assert.ok(m[0] === 0xff && (m[1] & 0xe0) === 0xe0, "MPEG frame sync");
      const opus = await bytes(await speech(base, { input: TEXT, voice: "tiny", response_format: "opus", seed: 5 }));
      assert.equal(ascii(opus, 0, 4), "OggS");
      assert.equal(ascii(opus, 28, 8), "OpusHead");
      const flac = await bytes(await speech(base, { input: TEXT, voice: "tiny", response_format: "flac", seed: 5 }));
      assert.equal(ascii(flac, 0, 4), "fLaC");
      const normal = (await expectedAudio(tts, TEXT, 5, "pcm")).length;
      const fast =
        (await bytes(await speech(base, { input: TEXT, voice: "tiny", response_format: "pcm", seed: 5, speed: 2 })))
          .length;
      assert.ok(Math.abs(fast / normal - 0.5) < 0.05, `speed 2: ${fast} bytes vs ${normal}`);
    });
  });
});

describe("server: the reference's /tts form, voices, health, page", () => {
  test("/tts streams the reference's WAV; its 400 cases; uploads of voice states and recordings (cloned) work", async () => {
    const longOpus = await opusTone(120); // (made before the server starts: no idle keep-alive connection meanwhile)
    await withServer({ limits: { maxUploadBytes: 4 * 1024 * 1024 } }, async ({ base, tts }) => {
      const post = (fields: Record<string, string | Blob>) => {
        const form = new FormData();
        for (const [k, v] of Object.entries(fields)) form.set(k, v);
        return fetch(`${base}/tts`, { method: "POST", body: form });
      };
      const ok = await post({ text: TEXT, voice_url: "tiny", seed: "4" });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get("content-disposition"), "attachment; filename=generated_speech.wav");
      const want = await expectedAudio(tts, TEXT, 4, "wav", 200);
      assert.deepEqual(await bytes(ok), want);
      const state = new Blob([readFileSync(TINY_VOICE)]);
      const uploaded = await post({ text: TEXT, voice_wav: state, seed: "4" });
      assert.equal(uploaded.status, 200);
      assert.deepEqual(await bytes(uploaded), want);

      // A recording is cloned (the tiny model has an encoder): the same audio as the library's clone, twice in a row
      // (the second from the model's clone cache) and with the voice freed after each request.
      const tone = Float32Array.from({ length: 24000 }, (_, i) => 0.3 * Math.sin(2 * Math.PI * 220 * i / 24000));
      const recordingBytes = encodeWav(tone, 24000) as Uint8Array<ArrayBuffer>;
      const recording = new Blob([recordingBytes]);
      const clone = await tts.loadVoice(recordingBytes);
      const cloneAudio = await tts.generate(TEXT, { voice: clone, seed: 4, onWarning: () => {} });
      await tts.freeVoice(clone);
      const wantClone = encodeWav(cloneAudio, tts.sampleRate, { unknownLength: true, trailingSilenceMs: 200 });
      for (let i = 0; i < 2; i++) {
        const cloned = await post({ text: TEXT, voice_wav: recording, seed: "4" });
        assert.equal(cloned.status, 200);
        assert.deepEqual(await bytes(cloned), wantClone);
      }
      const cases: [Record<string, string | Blob>, string][] = [
        [{ text: " \n " }, "empty_text"],
        [{ voice_url: "tiny" }, "invalid_value"],
        [{ text: TEXT, voice_url: "tiny", voice_wav: state }, "conflicting_voices"],
        [{ text: TEXT, voice_url: "https://example.com/v.safetensors" }, "voice_not_found"],
        [{ text: TEXT, voice_wav: new Blob([new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])]) }, ""],
        [{
          text: TEXT,
          voice_wav: new Blob([encodeWav(new Float32Array(24000 * 31), 24000) as Uint8Array<ArrayBuffer>]),
        }, "upload_too_long"],
        // Every format has the duration limit: 2 minutes of Opus at 6 kbit/s are ~90 KB.
        [{ text: TEXT, voice_wav: new Blob([longOpus]) }, "upload_too_long"],
      ];
      for (const [fields, code] of cases) {
        const res = await post(fields);
        assert.equal(res.status, 400, code);
        const err = await errorOf(res);
        if (code) assert.equal(err.code, code); // (garbage bytes: whichever typed error the voice loader names)
        if (code === "upload_too_long") assert.match(err.message, /limit of 30 s/);
      }
      const json = await fetch(`${base}/tts`, {
        method: "POST",
        body: "{}",
        headers: { "content-type": "application/json" },
      });
      assert.equal(json.status, 415);
      await json.body?.cancel();
      const big = await post({ text: TEXT, voice_wav: new Blob([new Uint8Array(5 * 1024 * 1024)]) });
      assert.equal(big.status, 413);
      await big.body?.cancel();
    });
  });

  test("/v1/audio/speech may omit the voice only when the server has a default voice", async () => {
    await withServer({}, async ({ base }) => {
      const res = await speech(base, { input: TEXT, response_format: "pcm" });
      assert.equal(res.status, 400);
      assert.equal((await errorOf(res)).code, "invalid_value");
    });
    await withServer({ defaultVoice: "tiny" }, async ({ base, tts }) => {
      const res = await speech(base, { input: TEXT, response_format: "pcm", seed: 3 });
      assert.equal(res.status, 200);
      assert.deepEqual(await bytes(res), await expectedAudio(tts, TEXT, 3, "pcm"));
    });
  });

  test("voices: list, custom uploads off by default, bounded when on, delete; health; the page", async () => {
    await withServer({}, async ({ base }) => {
      const list = await (await fetch(`${base}/v1/voices`)).json();
      assert.deepEqual(list.voices, ["tiny"]);
      assert.deepEqual(await (await fetch(`${base}/v1/audio/voices`)).json(), list);
      const form = new FormData();
      form.set("name", "mine");
      form.set("file", new Blob([readFileSync(TINY_VOICE)]));
      const off = await fetch(`${base}/v1/voices`, { method: "POST", body: form });
      assert.equal(off.status, 403);
      await off.body?.cancel();
      const health = await (await fetch(`${base}/health`)).json();
      assert.equal(health.status, "ok");
      assert.equal(health.queue_depth, 0);
      assert.equal(health.streams.active, 0);
      const page = await fetch(`${base}/`);
      assert.match(page.headers.get("content-type")!, /^text\/html/);
      const html = await page.text();
      for (const id of ["text", "voice", "speak", "ttfa", "rtf", "download"]) assert.ok(html.includes(`id="${id}"`));
      assert.ok(!/https?:\/\/(?!127)/.test(html), "no CDN");
    });
    await withServer({ voiceUploads: true, limits: { maxCustomVoices: 1 } }, async ({ base, tts }) => {
      const add = (name: string) => {
        const form = new FormData();
        form.set("name", name);
        form.set("file", new Blob([readFileSync(TINY_VOICE)]));
        return fetch(`${base}/v1/voices`, { method: "POST", body: form });
      };
      const tooLong = new FormData();
      tooLong.set("name", "long");
      tooLong.set("file", new Blob([await opusTone(31)]));
      const long = await errorOf(await fetch(`${base}/v1/voices`, { method: "POST", body: tooLong }));
      assert.equal(long.code, "upload_too_long");
      assert.equal((long as { param?: string }).param, "file");
      assert.equal((await add("mine")).status, 201);
      assert.equal((await errorOf(await add("more"))).code, "too_many_voices");
      assert.equal((await errorOf(await add("../x"))).code, "invalid_voice_name");
      assert.deepEqual((await (await fetch(`${base}/v1/voices`)).json()).voices.sort(), ["mine", "tiny"]);
      const res = await speech(base, { input: TEXT, voice: "mine", response_format: "pcm", seed: 2 });
      assert.deepEqual(await bytes(res), await expectedAudio(tts, TEXT, 2, "pcm"));
      assert.equal(
        (await errorOf(await fetch(`${base}/v1/voices/tiny`, { method: "DELETE" }))).code,
        "voice_protected",
      );
      assert.equal((await fetch(`${base}/v1/voices/mine`, { method: "DELETE" })).status, 200);
      assert.equal(
        (await errorOf(await speech(base, { input: TEXT, voice: "mine", response_format: "pcm" }))).code,
        "voice_not_found",
      );
      assert.equal((await add("again")).status, 201);
    });
  });
});

describe("server: safety", () => {
  test("hostile voices get a 4xx and a listener on the named port sees no connection", async () => {
    let connections = 0;
    const bait = createServer((_req, res) => res.end("voice"));
    bait.on("connection", () => connections++);
    await new Promise<void>((r) => bait.listen(0, "127.0.0.1", () => r()));
    const port = (bait.address() as { port: number }).port;
    try {
      await withServer({}, async ({ base }) => {
        const hostile = [
          "/etc/passwd",
          "../../../../etc/passwd",
          "../tests/fixtures/tiny/voice_state.safetensors",
          TINY_VOICE,
          "file:///etc/passwd",
          `http://127.0.0.1:${port}/voice.safetensors`,
          `https://127.0.0.1:${port}/voice.safetensors`,
          `hf://kyutai/tts-voices/alba.safetensors`,
        ];
        for (const voice of hostile) {
          const res = await speech(base, { input: TEXT, voice, response_format: "wav" });
          assert.ok(res.status >= 400 && res.status < 500, voice);
          assert.equal((await errorOf(res)).code, "voice_not_found");
          const form = new FormData();
          form.set("text", TEXT);
          form.set("voice_url", voice);
          const r2 = await fetch(`${base}/tts`, { method: "POST", body: form });
          assert.equal(r2.status, 400, voice);
          await r2.body?.cancel();
        }
      });
      assert.equal(connections, 0);
    } finally {
      await new Promise((r) => bait.close(r));
    }
  });

  test("bearer API key (page and health stay public); CORS off by default, listed origins only, no credentials", async () => {
    await withServer({ apiKey: "k3y", cors: { origins: ["https://app.example"] } }, async ({ base }) => {
      for (const auth of [undefined, "Bearer nope", "Basic k3y", "Bearer k3y2"]) {
        const res = await fetch(`${base}/v1/voices`, { headers: auth ? { authorization: auth } : {} });
        assert.equal(res.status, 401);
        assert.equal((await errorOf(res)).type, "authentication_error");
      }
      assert.equal((await fetch(`${base}/v1/voices`, { headers: { authorization: "Bearer k3y" } })).status, 200);
      assert.equal((await fetch(`${base}/health`)).status, 200);
      const pre = await fetch(`${base}/v1/audio/speech`, {
        method: "OPTIONS",
        headers: { origin: "https://app.example", "access-control-request-method": "POST" },
      });
      assert.equal(pre.headers.get("access-control-allow-origin"), "https://app.example");
      assert.match(pre.headers.get("access-control-allow-headers")!, /authorization/);
      assert.equal(pre.headers.get("access-control-allow-credentials"), null);
      const other = await fetch(`${base}/health`, { headers: { origin: "https://evil.example" } });
      assert.equal(other.headers.get("access-control-allow-origin"), null);
      await other.body?.cancel();
    });
    await withServer({}, async ({ base }) => {
      const res = await fetch(`${base}/health`, { headers: { origin: "https://app.example" } });
      assert.equal(res.headers.get("access-control-allow-origin"), null);
      await res.body?.cancel();
    });
  });

  test("a full queue answers 503 with Retry-After; the others still succeed", async () => {
    // No EOS: the first stream speaks to its chunk's length, so (unread) it holds the one slot whatever the timing.
    const generation = { eosThreshold: 1e9 };
    await withServer({ limits: { maxStreams: 1, maxQueue: 1 }, generation }, async ({ base, tts }) => {
      const long = "This is a longer sentence, so that the first stream is still speaking. ".repeat(6);
      const first = await speech(base, { input: long, voice: "tiny", response_format: "pcm", seed: 1 });
      assert.equal(first.status, 200);
      const queued = speech(base, { input: TEXT, voice: "tiny", response_format: "pcm", seed: 3 });
      // The second request is waiting once /health says so (polled, not slept).
      while ((await (await fetch(`${base}/health`)).json()).queue_depth < 1) { /* poll */ }
      const refused = await speech(base, { input: TEXT, voice: "tiny", response_format: "pcm" });
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get("retry-after"), "2");
      assert.equal((await errorOf(refused)).code, "server_busy");
      assert.deepEqual(await bytes(first), await expectedAudio(tts, long, 1, "pcm", 0, generation));
      assert.deepEqual(await bytes(await queued), await expectedAudio(tts, TEXT, 3, "pcm", 0, generation));
    });
  });
});

describe("server: the streaming-text WebSocket route", () => {
  test("text deltas in, audio and done out, through createHandler's voices", {
    skip: g.Deno || g.Bun ? false : "serve() upgrades WebSockets under Deno and Bun",
  }, async () => {
    await withServer({}, async ({ base, handler }) => {
      const ws = new WebSocket(`${base.replace("http", "ws")}/v1/audio/speech/stream`);
      ws.binaryType = "arraybuffer";
      let audio = 0;
      const done = new Promise<{ type: string; samples: number }>((resolve, reject) => {
        ws.onmessage = (e) => {
          if (typeof e.data !== "string") audio += (e.data as ArrayBuffer).byteLength;
          else if (JSON.parse(e.data).type === "done" || JSON.parse(e.data).type === "error") {
            resolve(JSON.parse(e.data));
          }
        };
        ws.onerror = () => reject(new Error("socket error"));
      });
      await new Promise((r) => ws.onopen = r);
      ws.send(JSON.stringify({ type: "start", voice: "tiny", response_format: "pcm", seed: 3 }));
      ws.send(JSON.stringify({ type: "text", text: "Hello from " }));
      ws.send(JSON.stringify({ type: "text", text: "a socket." }));
      ws.send(JSON.stringify({ type: "end" }));
      const last = await done;
      assert.equal(last.type, "done");
      assert.ok(audio > 0 && audio === last.samples * 2);
      ws.close();
      while (handler.stats.active > 0) await new Promise((r) => setTimeout(r, 1));
      const plain = await fetch(`${base}/v1/audio/speech/stream`);
      assert.equal(plain.status, 426);
      await plain.body?.cancel();
    });
  });
});
