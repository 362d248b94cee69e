// The example servers (Deno and Bun, built on createHandler) as real processes on loopback: a bounded number of
// requests, each checked against the API. Runs under Deno only (it starts both runtimes itself).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeWav, TTSModel } from "../../mod.ts";
import { repoRoot } from "../support/fixtures.ts";
import { tempDir } from "../support/temp_dir.ts";
import { TINY_MODEL_DIR, TINY_VOICE } from "../support/tiny_model.ts";

const root = fileURLToPath(repoRoot);
// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const servers: Record<string, string[]> = {
  deno: [join(root, ".tools/bin/deno"), "run", "-A", "examples/deno_server.ts"],
  bun: [join(root, ".tools/bin/bun"), "examples/bun_server.ts"],
};

async function withServer(name: string, fn: (base: string) => Promise<void>): Promise<void> {
  const [cmd, ...args] = servers[name];
  const voices = tempDir("pocket-voices-");
  copyFileSync(TINY_VOICE, join(voices, "tiny.safetensors"));
  const child = spawn(cmd, args, {
    cwd: root,
    env: {
      ...g.process.env,
      POCKET_TTS_MODEL: TINY_MODEL_DIR,
      POCKET_TTS_VOICES: voices,
      PORT: "0",
      POCKET_TTS_SIMD: "baseline",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const base = await new Promise<string>((resolve, reject) => {
      let out = "", err = "";
      const timer = setTimeout(() => reject(new Error(`${name} server did not start: ${err}`)), 20000);
      child.stdout.on("data", (d: Uint8Array) => {
        out += String(d);
        const m = out.match(/listening on (http:\/\/[\d.]+:\d+)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.stderr.on("data", (d: Uint8Array) => err += String(d));
      child.on("exit", (code: number) => reject(new Error(`${name} server exited (${code}): ${err}`)));
    });
    await fn(base);
  } finally {
    child.kill();
  }
}

describe("example servers", { skip: g.Deno ? false : "started from the Deno run only" }, () => {
  for (const name of Object.keys(servers)) {
    test(`${name}: streams the same WAV as the API, 400 on bad input`, async () => {
      const tts = await TTSModel.load({ model: TINY_MODEL_DIR, simd: "baseline", workers: 0 });
      const voice = await tts.loadVoice(TINY_VOICE);
      const want = encodeWav(await tts.generate("Hello from the server.", { voice, seed: 9 }), 24000, {
        unknownLength: true,
        trailingSilenceMs: 200,
      });
      tts.dispose();
      await withServer(name, async (base) => {
        const form = new FormData();
        form.set("text", "Hello from the server.");
        form.set("voice_url", "tiny");
        form.set("seed", "9");
        const res = await fetch(`${base}/tts`, { method: "POST", body: form });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("content-type"), "audio/wav");
        assert.deepEqual(new Uint8Array(await res.arrayBuffer()), want);
        const blank = new FormData();
        blank.set("text", " ");
        const bad = await fetch(`${base}/tts`, { method: "POST", body: blank });
        assert.equal(bad.status, 400);
        assert.equal((await bad.json()).error.code, "empty_text");
        assert.equal((await (await fetch(`${base}/health`)).json()).status, "ok");
      });
    });
  }
});
