// The streaming-text WebSocket endpoint with a real client on loopback, in each runtime's own way of serving
// WebSockets (Deno.upgradeWebSocket, Bun.serve's websocket handlers, Node's http server + the `ws` package): the
// audio equals streamText's for the same text and seed, captions and the final timings arrive, and bad messages
// get a typed error and a closed socket.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { openSpeechSocket, type SpeechSocketOptions } from "../../src/server/speech_socket.ts";
import {
  attachNodeWebSocket,
  bunFetch,
  bunWebSocketHandlers,
  SPEECH_STREAM_PATH,
  upgradeWebSocket,
} from "../../src/server/websocket.ts";
import type { TTSModel } from "../../mod.ts";
import { concat } from "../../src/audio/bytes.ts";
import { withServer } from "../support/server.ts";
import { TINY_VOICE, withTinyModel } from "../support/tiny_model.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** Serves the endpoint on 127.0.0.1 with this runtime's WebSocket server; returns its URL and a stop function. */
async function serve(tts: TTSModel, options: SpeechSocketOptions): Promise<{ url: string; stop(): Promise<void> }> {
  // One handler for every runtime: the route upgrades, anything else is a 404 (Node: written back on the socket).
  const handler = (req: Request) => {
    const path = new URL(req.url).pathname;
    const upgraded = path === SPEECH_STREAM_PATH
      ? upgradeWebSocket(req, (socket) => openSpeechSocket(tts, socket, options))
      : null;
    return upgraded ?? new Response("not found", { status: 404 });
  };
  if (g.Deno) {
    const server = g.Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
    return { url: `ws://127.0.0.1:${server.addr.port}${SPEECH_STREAM_PATH}`, stop: () => server.shutdown() };
  }
  if (g.Bun) {
    const server = g.Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: bunFetch(handler),
      websocket: bunWebSocketHandlers,
    });
    return { url: `ws://127.0.0.1:${server.port}${SPEECH_STREAM_PATH}`, stop: () => server.stop(true) };
  }
  const http = await import("node:http");
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  attachNodeWebSocket(server, wsPackage().WebSocketServer, handler);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `ws://127.0.0.1:${port}${SPEECH_STREAM_PATH}`,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The `ws` package, loaded at run time (Node 20 has no WebSocket client; bundling `ws` would break it). */
// deno-lint-ignore no-explicit-any
function wsPackage(): any {
  const name = "ws";
  return createRequire(import.meta.url)(name);
}

interface Received {
  audio: Uint8Array[];
  json: Record<string, unknown>[];
  closeCode: number;
}

/** Connects, sends the messages (one every `delayMs`), and collects everything until the server closes. */
function talk(url: string, messages: unknown[], delayMs = 0, headers?: Record<string, string>): Promise<Received> {
  const Client = g.WebSocket ?? wsPackage().WebSocket;
  // (Deno's, Bun's and the `ws` package's clients all take headers this way; browsers' cannot send any.)
  const ws = headers ? new Client(url, { headers }) : new Client(url);
  ws.binaryType = "arraybuffer";
  const got: Received = { audio: [], json: [], closeCode: 0 };
  return new Promise((resolve, reject) => {
    ws.onmessage = (e: { data: unknown }) => {
      if (typeof e.data === "string") got.json.push(JSON.parse(e.data));
      else got.audio.push(new Uint8Array(e.data as ArrayBuffer));
    };
    ws.onclose = (e: { code: number }) => resolve({ ...got, closeCode: e.code });
    ws.onerror = () => {};
    ws.onopen = async () => {
      try {
        for (const m of messages) {
          if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
          ws.send(typeof m === "string" ? m : JSON.stringify(m));
        }
      } catch (e) {
        reject(e);
      }
    };
  });
}

async function* pieces(parts: string[]): AsyncGenerator<string> {
  yield* parts;
}

const TEXT = "Hello there. This comes over a socket, word by word. Bye";

describe("WebSocket /v1/audio/speech/stream", () => {
  test("text deltas in, PCM frames, captions and timings out; same audio as streamText", async () => {
    await withTinyModel({ workers: 0 }, async (tts) => {
      const voice = await tts.loadVoice(TINY_VOICE);
      const server = await serve(tts, {
        resolveVoice: (name) => {
          if (name !== "tiny") throw new Error("unknown voice");
          return Promise.resolve({ voice, release() {} });
        },
      });
      try {
        const words = TEXT.split(/(?= )/).map((text) => ({ type: "text", text }));
        const got = await talk(server.url, [
          { type: "start", voice: "tiny", seed: 4, response_format: "pcm" },
          ...words,
          { type: "end" },
        ], 5);
        assert.equal(got.closeCode, 1000, JSON.stringify(got.json));
        const done = got.json.at(-1)!;
        assert.equal(done.type, "done");
        const pcm = concat(got.audio);
        assert.equal(done.samples, pcm.length / 2);
        assert.ok(typeof done.first_audio_ms === "number" && (done.first_audio_ms as number) >= 0);
        const captions = got.json.filter((m) => m.type === "caption");
        assert.deepEqual(captions.map((c) => c.text), ["Hello there.", "This comes over a socket, word by word. Bye."]);
        assert.equal(captions.at(-1)!.end, done.samples);

        // The same text and seed through the library give the same samples (PCM16 of the float frames).
        const expected: number[] = [];
        for await (const f of tts.streamText(pieces([TEXT]), { voice, seed: 4, onWarning: () => {} })) {
          for (const v of f) expected.push(Math.trunc(Math.max(-1, Math.min(1, v)) * 32767));
        }
        const samples = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
        assert.equal(samples.length, expected.length);
        assert.ok(samples.every((v, i) => Math.abs(v - expected[i]) <= 1));

        // WAV: the streaming header first, then the same PCM.
        const wav = await talk(server.url, [
          { type: "start", voice: "tiny", seed: 4, response_format: "wav" },
          { type: "text", text: TEXT },
          { type: "end" },
        ]);
        const wavBytes = concat(wav.audio);
        assert.equal(new TextDecoder().decode(wavBytes.subarray(0, 4)), "RIFF");
        assert.deepEqual(wavBytes.subarray(44), pcm);
      } finally {
        await server.stop();
      }
    });
  });

  test("bad messages: a typed error, then the socket closes; the server keeps serving", async () => {
    await withTinyModel({ workers: 0 }, async (tts) => {
      const server = await serve(tts, { limits: { maxInputChars: 30 } });
      try {
        const cases: [unknown[], string][] = [
          [[{ type: "text", text: "hi" }], "invalid_request"],
          ["not json" as unknown as unknown[], "invalid_request"],
          [[{ type: "start", voice: "../../etc/passwd" }], "invalid_voice"],
          [[{ type: "start", response_format: "mp3" }], "invalid_request"],
          [[{ type: "start" }, { type: "text", text: "x".repeat(31) }], "input_too_long"],
          [[{ type: "start" }, { type: "text", text: "<speak><audio/></speak>" }, { type: "end" }], "unsupported_ssml"],
        ];
        // A path the handler does not upgrade: its 404 is the answer, and the client's connection fails.
        const refused = await talk(server.url.replace(SPEECH_STREAM_PATH, "/elsewhere"), []);
        assert.deepEqual([refused.json, refused.audio], [[], []]);
        assert.notEqual(refused.closeCode, 1000);
        for (const [messages, code] of cases) {
          const got = await talk(server.url, Array.isArray(messages) ? messages : [messages]);
          const error = got.json.find((m) => m.type === "error");
          assert.equal(error?.code, code, JSON.stringify(messages));
          assert.ok(!String(error?.message).includes("    at "), "no stack trace");
          assert.notEqual(got.closeCode, 1000);
        }
      } finally {
        await server.stop();
      }
    });
  });
});

describe("WebSocket route of createHandler through serve() (Deno, Bun, Node with the ws package)", () => {
  test("the API key is required; a session speaks the same PCM as a second one; a 426 without an upgrade", async () => {
    await withServer({ apiKey: "k" }, async ({ base }) => {
      const url = `${base.replace(/^http/, "ws")}${SPEECH_STREAM_PATH}`;
      const messages = [{ type: "start", voice: "tiny", seed: 4 }, { type: "text", text: TEXT }, { type: "end" }];
      const refused = await talk(url, messages);
      assert.deepEqual(refused.audio, [], "no audio without the key");
      assert.notEqual(refused.closeCode, 1000);
      const headers = { authorization: "Bearer k" };
      const [a, b] = [await talk(url, messages, 0, headers), await talk(url, messages, 0, headers)];
      assert.equal(a.closeCode, 1000, JSON.stringify(a.json));
      assert.equal(a.json.at(-1)!.type, "done");
      assert.ok(concat(a.audio).length > 0);
      assert.deepEqual(concat(a.audio), concat(b.audio));
      const plain = await fetch(`${base}${SPEECH_STREAM_PATH}`, { headers });
      assert.equal(plain.status, 426);
      await plain.body?.cancel();
    });
  });
});

describe("WebSocket session lifecycle", () => {
  test("a server stopping its sessions (shutdown) closes them with 1001 and each reports its end", async () => {
    await withTinyModel({ workers: 0 }, async (tts) => {
      const tracked: [AbortController, Promise<void>][] = [];
      let slots = 0;
      const server = await serve(tts, {
        track: (stop, ended) => tracked.push([stop, ended]),
        acquireSlot: () => {
          slots++;
          return Promise.resolve(() => slots--);
        },
      });
      try {
        // The text never ends: the session waits for more until the server stops it.
        const pending = talk(server.url, [{ type: "start" }, { type: "text", text: "Hello there. And" }]);
        while (tracked.length === 0 || slots === 0) await new Promise((r) => setTimeout(r, 20));
        for (const [stop] of tracked) stop.abort();
        await Promise.all(tracked.map(([, ended]) => ended));
        const got = await pending;
        assert.equal(got.closeCode, 1001);
        assert.equal(slots, 0, "the slot was released");
      } finally {
        await server.stop();
      }
    });
  });

  test("a client that stops reading: the session ends with a typed 'stalled' error and frees its slot", async () => {
    await withTinyModel({ workers: 0 }, async (tts) => {
      let slots = 0;
      const sent: (string | Uint8Array)[] = [];
      let closed: [number | undefined, string | undefined] | null = null;
      let ended!: Promise<void>;
      // A socket whose client reads nothing: everything sent stays queued.
      const socket = {
        bufferedAmount: 0,
        send(data: string | Uint8Array) {
          sent.push(data);
          this.bufferedAmount += typeof data === "string" ? data.length : data.byteLength;
        },
        close(code?: number, reason?: string) {
          closed = [code, reason];
        },
      };
      const session = openSpeechSocket(tts, socket, {
        limits: { maxBufferedBytes: 0, stallTimeoutMs: 200 },
        acquireSlot: () => {
          slots++;
          return Promise.resolve(() => slots--);
        },
        track: (_stop, e) => ended = e,
      });
      session.message(JSON.stringify({ type: "start" }));
      session.message(JSON.stringify({ type: "text", text: "Hello there, this will not be read." }));
      session.message(JSON.stringify({ type: "end" }));
      await ended;
      session.closed();
      const error = sent.map((m) => typeof m === "string" ? JSON.parse(m) : null).find((m) => m?.type === "error");
      assert.equal(error?.code, "stalled");
      assert.deepEqual(closed, [1008, "stalled"]);
      assert.equal(slots, 0, "the slot was released");
    });
  });
});
