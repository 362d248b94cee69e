// Serverless: examples/serverless.ts (createHandler around a model loaded once per instance) deployed the way a user
// deploys it — copied into an empty project whose deno.json maps "@pocket/tts" to the package served by a loopback
// static server (the publish set, as from JSR) — and run by `deno serve --allow-net --allow-env
// --allow-read=<project dir>` with no HOME, no write permission and a fresh DENO_DIR. The model and the instance's
// voice come from URLs (POCKET_TTS_MODEL, POCKET_TTS_VOICE) and are kept in memory. /health answers; POST
// /v1/audio/speech without a voice speaks with the instance's voice, and its WAV holds the local Deno CLI's samples:
// the same unknown-length header and PCM, where the CLI (as the reference's CLI) then adds 200 ms of silence that the
// speech API does not send. Cold start (process start → first audio byte) and peak RSS are printed.
// Deno pass only (see tests/delivery/support.ts): 2 processes (reference, deno serve).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { freePort, startService } from "../support/process.ts";
import {
  cleanEnv,
  DENO,
  denoOnly,
  publishedPackage,
  referenceWav,
  ROOT,
  SEED,
  TEXT,
  TINY_MODEL_PATH,
  TINY_VOICE_PATH,
} from "./support.ts";

/** The CLI's trailing silence: 200 ms at 24 kHz. */
const tailSamples = 4800;

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
  const suite = publishedPackage("pocket-serverless-");

  test("examples/serverless.ts: /health, POST /v1/audio/speech, the instance's voice, the CLI's samples", async () => {
    const { dir, server } = suite;
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
    const service = startService(DENO, [
      ...["serve", "--allow-net", "--allow-env", `--allow-read=${project}`, "--port", String(port)],
      // jsr.io is on Deno's default import allow-list; this stand-in for it has to be named.
      `--allow-import=${new URL(server.origin).host}`,
      "serverless.ts",
    ], {
      cwd: project,
      env: cleanEnv({
        PATH: process.env.PATH,
        DENO_DIR: join(dir, "deno_dir"),
        POCKET_TTS_MODEL: `${server.origin}${TINY_MODEL_PATH}`,
        POCKET_TTS_VOICE: `${server.origin}${TINY_VOICE_PATH}`,
      }),
    });
    const { child, output } = service;
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
          if (child.exitCode !== null) throw new Error(`deno serve exited: ${output.stderr}`);
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
      // The CLI's bytes without its 200 ms trailing silence (4800 zero samples, pcm16), which the CLI adds as the
      // reference's CLI does and the speech API does not.
      const cli = await reference;
      const tail = 2 * tailSamples;
      assert.deepEqual(cli.subarray(cli.length - tail), new Uint8Array(tail));
      assert.deepEqual(wav, cli.subarray(0, cli.length - tail));
      const health = await fetch(`${url}/health`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      const rss = peakRssMb(child.pid!);
      console.log(
        `serverless (tiny model): cold start ${coldStartMs.toFixed(0)} ms (process start → first audio byte), ` +
          `peak RSS ${rss?.toFixed(0) ?? "?"} MB`,
      );
      assert.deepEqual(readdirSync(project).sort(), ["deno.json", "serverless.ts"]);
      assert.doesNotMatch(output.stderr, /NotCapable|PermissionDenied|Requires \w+ access|Uncaught|^error/im);
    } finally {
      service.signal("SIGTERM");
      await service.exited;
    }
  });
});
