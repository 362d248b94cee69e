// The browser path in real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core, a fresh profile):
// a loopback server serves examples/browser/, the npm build (scripts/build-npm.ts, plain ES modules, no bundler) at
// /npm/, and the tiny model over http. The page downloads the model with progress, generates the shared request in
// two module workers, and its WAV must equal the local Deno CLI's bytes (baseline variant). After a reload, one
// thread on request, the model comes from the Cache API (no second download) and the bytes are the same again. No
// console errors; a screenshot goes to bench/results/browser_example.png. Served cross-origin isolated (COOP + COEP),
// the same page gets shared memory, and `workers=1` runs the threads build in one worker with a helper worker it
// starts itself: the same bytes again.
// Deno pass only (see tests/delivery/support.ts): 3 processes (npm build, reference, chromium).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { listFiles } from "../../scripts/publish_files.ts";
import { type Page, withWatchedPage } from "../support/chromium.ts";
import {
  DENO,
  denoOnly,
  referenceWav,
  ROOT,
  run,
  SEED,
  serveStatic,
  type StaticServer,
  TEXT,
  TINY_MODEL_PATH,
  TINY_VOICE_PATH,
  tinyModelFiles,
} from "./support.ts";

/** What the page leaves in `globalThis.pocketResult` after speaking. */
interface PageResult {
  wavBase64?: string;
  frames: number;
  underruns: number;
  usesWorkers: boolean;
  downloaded: boolean;
  progress: number;
  error?: string;
}

describe("browser: the npm build in headless Chromium", { skip: denoOnly }, () => {
  let dir = "";
  let server: StaticServer;
  let isolated: StaticServer;
  let reference: Uint8Array;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "pocket-browser-"));
    const pkg = join(dir, "npm");
    const [build, ref] = await Promise.all([
      run(DENO, ["run", "-A", join(ROOT, "scripts/build-npm.ts"), pkg]),
      referenceWav("baseline"),
    ]);
    assert.equal(build.status, 0, build.stderr);
    reference = ref;
    const files = tinyModelFiles();
    for (const f of ["index.html", "app.js"]) files.set(`/${f}`, join(ROOT, "examples/browser", f));
    files.set("/", join(ROOT, "examples/browser/index.html"));
    for (const f of listFiles(pkg)) files.set(`/npm/${relative(pkg, f)}`, f);
    server = await serveStatic(files);
    isolated = await serveStatic(files, { crossOriginIsolated: true });
  });

  after(async () => {
    await server?.close();
    await isolated?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const query = new URLSearchParams({
    text: TEXT,
    model: TINY_MODEL_PATH,
    voice: TINY_VOICE_PATH,
    seed: String(SEED),
    simd: "baseline",
  });
  /** Clicks "Speak" and waits for the page's result. */
  const speak = async (page: Page): Promise<PageResult> => {
    await page.evaluate(() => delete (globalThis as { pocketResult?: unknown }).pocketResult);
    await page.click("#speak");
    await page.waitForFunction(() => (globalThis as { pocketResult?: unknown }).pocketResult, null, {
      timeout: 120_000,
    });
    return await page.evaluate(() => (globalThis as unknown as { pocketResult: PageResult }).pocketResult);
  };
  const wavOf = (r: PageResult) => new Uint8Array(Buffer.from(r.wavBase64 ?? "", "base64"));

  test("speaks the Deno CLI's bytes in two workers, then from the Cache API on one thread", async () => {
    const problems = await withWatchedPage(join(dir, "profile"), async (page) => {
      await page.goto(`${server.origin}/?${query}`);
      const first = await speak(page);
      assert.equal(first.error, undefined, first.error);
      assert.equal(first.usesWorkers, true);
      assert.equal(first.downloaded, true);
      assert.equal(first.progress, 1);
      assert.equal(first.underruns, 0);
      assert.deepEqual(wavOf(first), reference);
      mkdirSync(join(ROOT, "bench/results"), { recursive: true });
      await page.screenshot({ path: join(ROOT, "bench/results/browser_example.png") });

      const weightsPath = `${TINY_MODEL_PATH}model.safetensors`;
      assert.equal(server.requests.filter((p) => p === weightsPath).length, 1);
      await page.goto(`${server.origin}/?${query}&workers=0`);
      const second = await speak(page);
      assert.equal(second.error, undefined, second.error);
      assert.equal(second.usesWorkers, false);
      assert.equal(second.downloaded, false, "the reload downloaded the model again");
      assert.equal(server.requests.filter((p) => p === weightsPath).length, 1);
      assert.deepEqual(wavOf(second), reference);
      // The workers were started from the npm build's worker.js; nothing came from outside it and the fixtures.
      assert.ok(server.requests.includes("/npm/src/generate/worker.js"));
      assert.ok(server.requests.includes("/npm/wasm/pocket_core_simd.wasm"));
      assert.ok(!server.requests.includes("/npm/wasm/pocket_core_simd_threads.wasm"), "threads without isolation");
    });
    assert.deepEqual(problems, []);
  });

  test("a cross-origin-isolated page runs the threads build in one worker and a helper: the same bytes", async () => {
    const problems = await withWatchedPage(join(dir, "profile-isolated"), async (page) => {
      await page.goto(`${isolated.origin}/?${query}&workers=1`);
      assert.equal(
        await page.evaluate(() => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated),
        true,
      );
      const result = await speak(page);
      assert.equal(result.error, undefined, result.error);
      assert.equal(result.usesWorkers, true);
      assert.deepEqual(wavOf(result), reference);
      assert.ok(isolated.requests.includes("/npm/wasm/pocket_core_simd_threads.wasm"));
      assert.ok(!isolated.requests.includes("/npm/wasm/pocket_core_simd.wasm"));
    });
    assert.deepEqual(problems, []);
  });
});
