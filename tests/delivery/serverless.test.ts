// Serverless: examples/serverless.ts deployed the way a user deploys it — copied into an empty project whose
// deno.json maps "@pocket/tts" to the package served by a loopback static server (the publish set, as from JSR) —
// and run by `deno serve --allow-net --allow-env --allow-read=<project dir>` with no HOME, no write permission and
// a fresh DENO_DIR. The model and the instance's voice come from URLs (POCKET_TTS_MODEL, POCKET_TTS_VOICE) and are
// kept in memory. /health answers; POST /v1/audio/speech without a voice speaks with the instance's voice and its
// WAV equals the local Deno CLI's bytes. Cold start (process start → first audio byte) and peak RSS are printed.
// Deno pass only (see tests/delivery/support.ts): 2 processes (reference, deno serve).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { publishFiles } from "../../scripts/publish_files.ts";
import {
  cleanEnv,
  DENO,
  denoOnly,
  referenceWav,
  ROOT,
  SEED,
  serveStatic,
  type StaticServer,
  TEXT,
  TINY_MODEL_PATH,
  TINY_VOICE_PATH,
  tinyModelFiles,
} from "./support.ts";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Peak resident set of a Linux process in MB (VmHWM), or null elsewhere. */
function peakRssMb(pid: number): number | null {
  try {
    const kb = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmHWM:\s+(\d+) kB/)?.[1];
    return kb ? Number(kb) / 1024 : null;
  } catch {
    return null;
  }
}

describe("serverless: deno serve with no write permission and no HOME", { skip: denoOnly }, () => {
  let dir = "";
  let server: StaticServer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "pocket-serverless-"));
    const files = new Map(publishFiles(DENO).map((f) => [`/${f}`, join(ROOT, f)]));
    for (const [path, file] of tinyModelFiles()) files.set(path, file);
    server = await serveStatic(files);
  });

  after(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("examples/serverless.ts: /health, POST /v1/audio/speech with the instance's voice, the CLI's bytes", async () => {
    const project = join(dir, "project");
    const denoJson = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
    const imports: Record<string, string> = {};
    for (const [key, path] of Object.entries(denoJson.exports as Record<string, string>)) {
      imports[key === "." ? "@pocket/tts" : `@pocket/tts/${key.slice(2)}`] = `${server.origin}/${path.slice(2)}`;
    }
    mkdirSync(project);
    // (no lock file: what is checked below is that the package writes nothing)
    writeFileSync(join(project, "deno.json"), JSON.stringify({ imports, lock: false }, null, 2));
    copyFileSync(join(ROOT, "examples/serverless.ts"), join(project, "serverless.ts"));
    const reference = referenceWav("relaxed");

    const port = await freePort();
    const started = performance.now();
    const child = spawn(DENO, [
      ...["serve", "--allow-net", "--allow-env", `--allow-read=${project}`, "--port", String(port)],
      // jsr.io is on Deno's default import allow-list; this stand-in for it has to be named.
      `--allow-import=${new URL(server.origin).host}`,
      "serverless.ts",
    ], {
      cwd: project,
      stdio: ["ignore", "pipe", "pipe"],
      env: cleanEnv({
        PATH: process.env.PATH,
        DENO_DIR: join(dir, "deno_dir"),
        POCKET_TTS_MODEL: `${server.origin}${TINY_MODEL_PATH}`,
        POCKET_TTS_VOICE: `${server.origin}${TINY_VOICE_PATH}`,
      }),
    });
    let stderr = "";
    child.stderr.on("data", (b: Uint8Array) => stderr += String(b));
    child.stdout.on("data", () => {});
    const exited = new Promise<number | null>((r) => child.on("close", r));
    try {
      const url = `http://127.0.0.1:${port}`;
      // Ask for speech as soon as the port accepts connections: the model loads on the first request.
      let res: Response | null = null;
      while (!res) {
        try {
          res = await fetch(`${url}/v1/audio/speech`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ model: "pocket-tts", input: TEXT, response_format: "wav", seed: SEED }),
          });
        } catch {
          if (child.exitCode !== null) throw new Error(`deno serve exited: ${stderr}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      assert.equal(res.status, 200, await res.clone().text().catch(() => ""));
      assert.equal(res.headers.get("content-type"), "audio/wav");
      const reader = res.body!.getReader();
      const parts: Uint8Array[] = [];
      let coldStartMs = 0;
      let received = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
        if (!coldStartMs && received > 44) coldStartMs = performance.now() - started; // past the WAV header
        parts.push(value);
      }
      const wav = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((o, p) => (wav.set(p, o), o + p.length), 0);
      assert.deepEqual(wav, await reference);
      const health = await fetch(`${url}/health`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      const rss = peakRssMb(child.pid!);
      console.log(
        `serverless (tiny model): cold start ${coldStartMs.toFixed(0)} ms (process start → first audio byte), ` +
          `peak RSS ${rss?.toFixed(0) ?? "?"} MB`,
      );
      assert.deepEqual(readdirSync(project).sort(), ["deno.json", "serverless.ts"]);
      assert.doesNotMatch(stderr, /NotCapable|PermissionDenied|Requires \w+ access|Uncaught|^error/im);
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
  });
});
