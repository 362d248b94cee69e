// Remote run, as from JSR: a loopback static server serves exactly the files `deno publish --dry-run` lists (plus the
// tiny model and voice under /models/ and /voices/), and `deno run -A <URL>/mod.ts …` runs with a fresh DENO_DIR,
// an empty HOME and an empty working directory. Its workers start from the remote worker.ts, the wasm is fetched,
// the model downloads show progress, the WAV equals the local Deno CLI's bytes (same seed and variant), and nothing
// is written outside the cache dir and the output file.
// Deno pass only (see tests/delivery/support.ts): 2 processes (reference, remote run).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { listFiles } from "../../scripts/publish_files.ts";
import {
  DENO,
  denoOnly,
  publishedPackage,
  referenceWav,
  requestArgs,
  run,
  TINY_MODEL_PATH,
  TINY_VOICE_PATH,
} from "./support.ts";

describe("remote run from a static server (JSR-style)", { skip: denoOnly }, () => {
  const suite = publishedPackage("pocket-remote-");

  test("deno run -A <URL>/mod.ts: remote workers and wasm, download progress, the local CLI's bytes", async () => {
    const { dir, server } = suite;
    const [home, work, cache, denoDir] = ["home", "work", "cache", "deno_dir"].map((d) => join(dir, d));
    for (const d of [home, work]) mkdirSync(d);
    const origin = server.origin;
    const [reference, r] = await Promise.all([
      referenceWav("relaxed"),
      run(DENO, [
        ...["run", "-A", `${origin}/mod.ts`],
        ...requestArgs(`${origin}${TINY_MODEL_PATH}`, `${origin}${TINY_VOICE_PATH}`),
        ...["--simd", "relaxed", "--cache-dir", cache, "-o", "out.wav"],
      ], {
        cwd: work,
        env: { PATH: process.env.PATH, HOME: home, DENO_DIR: denoDir, NO_COLOR: "1" },
      }),
    ]);
    assert.equal(r.status, 0, r.stderr);
    // The published modules came from the server; the workers started from it; the wasm was fetched from it.
    for (const path of ["/mod.ts", "/src/generate/worker.ts", "/wasm/pocket_core_relaxed.wasm"]) {
      assert.ok(server.requests.includes(path), `${path} was not requested`);
    }
    assert.ok(server.requests.every((p) => !p.startsWith("/tests/")), "a file outside the publish set was asked for");
    // Progress for the model downloads (stderr is not a terminal: one line at the start and end of each file).
    assert.match(r.stderr, /downloading http:\/\/127\.0\.0\.1:\d+\/models\/tiny\/model\.safetensors \(1\.4 MB\)/);
    assert.match(r.stderr, /downloaded http:\/\/127\.0\.0\.1:\d+\/models\/tiny\/model\.safetensors/);
    assert.deepEqual(new Uint8Array(readFileSync(join(work, "out.wav"))), reference);
    // Nothing outside the cache dir and the output: HOME untouched, the working dir holds the WAV only.
    assert.deepEqual(listFiles(home), []);
    assert.deepEqual(readdirSync(work), ["out.wav"]);
    assert.ok(listFiles(cache).some((f) => f.endsWith("model.safetensors")), "the weights were not cached");
  });
});
