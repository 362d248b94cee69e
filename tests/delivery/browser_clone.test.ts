// Voice cloning in a real browser (headless Chromium, tests/support/chromium.ts): a page loads the npm build as plain
// ES modules (no bundler) and the FLAC decoder package from node_modules through an import map, as a site would serve
// them; it clones a 22.05 kHz WAV and a FLAC from URLs (decoded, resampled and encoded in the page, the model parts in
// module workers, then on one thread) and exports the voices. Each must be byte for byte the voice state Deno's CLI
// (`export-voice`, same wasm variant) writes for the same file. The import map has no entry for `@evan/opus` (the
// Node-only Opus encoder), so any import of it on the cloning path would fail the page; nor is it ever requested.
// Deno pass only (see tests/delivery/support.ts): it spawns the npm build, the Deno CLI and chromium.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { listFiles } from "../../scripts/publish_files.ts";
import { withWatchedPage } from "../support/chromium.ts";
import {
  DENO,
  denoOnly,
  ROOT,
  run,
  serveStatic,
  type StaticServer,
  TINY_MODEL_DIR,
  TINY_MODEL_PATH,
  tinyModelFiles,
} from "./support.ts";

const GOLDEN_WAV = join(ROOT, "tests/fixtures/audio/espeak_prompt_22050.wav");

/**
 * The FLAC decoder and its dependencies, mapped to their ES module entries in node_modules (what a site without a
 * bundler writes in its import map; `@eshaz/web-worker`'s browser build is its root `browser.js`).
 */
const CODEC_PACKAGES: Record<string, string> = {
  "@wasm-audio-decoders/flac": "index.js",
  "@wasm-audio-decoders/common": "index.js",
  "codec-parser": "index.js",
  "simple-yenc": "dist/esm.js",
  "@eshaz/web-worker": "browser.js",
};

const PAGE = `<!doctype html>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<script type="importmap">${
  JSON.stringify({
    imports: Object.fromEntries(
      Object.entries(CODEC_PACKAGES).map(([name, entry]) => [name, `/node_modules/${name}/${entry}`]),
    ),
  })
}</script>
<script type="module">
  import { TTSModel } from "/npm/mod.js";
  globalThis.cloneVoice = async (model, audio, workers) => {
    const tts = await TTSModel.load({ model: new URL(model, location.href).href, workers, simd: "baseline" });
    try {
      const voice = await tts.loadVoice(new URL(audio, location.href).href);
      const bytes = tts.exportVoice(voice);
      let s = "";
      for (const b of bytes) s += String.fromCharCode(b);
      return { usesWorkers: tts.usesWorkers, positions: voice.positions, base64: btoa(s) };
    } finally {
      tts.dispose();
    }
  };
  globalThis.pageReady = true;
</script>
`;

interface CloneResult {
  usesWorkers: boolean;
  positions: number;
  base64: string;
}

describe("browser: voice cloning with the npm build in headless Chromium", { skip: denoOnly }, () => {
  let dir = "";
  let server: StaticServer;
  const audio: Record<string, { path: string; file: string }> = {};
  const reference: Record<string, Uint8Array> = {};

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "pocket-browser-clone-"));
    const pkg = join(dir, "npm");
    // The golden speech cut to whole 4096-sample FLAC blocks (see tests/voice_clone/clone_api.test.ts), as FLAC.
    const cut = join(dir, "speech.wav");
    const flac = join(dir, "speech.flac");
    const sox = await run("sox", [GOLDEN_WAV, cut, "trim", "0", "98304s"]);
    assert.equal(sox.status, 0, sox.stderr);
    const enc = await run("flac", ["-s", "-f", "-o", flac, cut]);
    assert.equal(enc.status, 0, enc.stderr);
    audio.wav = { path: "/audio/prompt.wav", file: GOLDEN_WAV };
    audio.flac = { path: "/audio/speech.flac", file: flac };
    const exportVoice = async (what: string) => {
      const out = join(dir, `${what}.safetensors`);
      const r = await run(DENO, [
        "run",
        "-A",
        join(ROOT, "mod.ts"),
        "export-voice",
        audio[what].file,
        out,
        "--model",
        TINY_MODEL_DIR,
        "--simd",
        "baseline",
        "-q",
      ]);
      assert.equal(r.status, 0, r.stderr);
      reference[what] = new Uint8Array(readFileSync(out));
    };
    const [build] = await Promise.all([
      run(DENO, ["run", "-A", join(ROOT, "scripts/build-npm.ts"), pkg]),
      exportVoice("wav"),
      exportVoice("flac"),
    ]);
    assert.equal(build.status, 0, build.stderr);
    const files = tinyModelFiles();
    writeFileSync(join(dir, "clone.html"), PAGE);
    files.set("/clone.html", join(dir, "clone.html"));
    for (const f of listFiles(pkg)) files.set(`/npm/${relative(pkg, f)}`, f);
    for (const name of Object.keys(CODEC_PACKAGES)) {
      const root = join(ROOT, "node_modules", name);
      for (const f of listFiles(root)) files.set(`/node_modules/${name}/${relative(root, f)}`, f);
    }
    for (const a of Object.values(audio)) files.set(a.path, a.file);
    server = await serveStatic(files);
  });

  after(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("a WAV and a FLAC clone in the page to Deno's voice state, in workers and on one thread", async () => {
    const problems = await withWatchedPage(join(dir, "profile"), async (page) => {
      await page.goto(`${server.origin}/clone.html`);
      await page.waitForFunction(() => (globalThis as { pageReady?: boolean }).pageReady, null, { timeout: 60_000 });
      for (const workers of [2, 0]) {
        for (const what of ["wav", "flac"]) {
          const got: CloneResult = await page.evaluate(
            ([model, path, w]: [string, string, number]) =>
              (globalThis as unknown as {
                cloneVoice(m: string, a: string, w: number): Promise<CloneResult>;
              }).cloneVoice(model, path, w),
            [TINY_MODEL_PATH, audio[what].path, workers],
          );
          assert.equal(got.usesWorkers, workers === 2);
          assert.ok(got.positions > 1, `${what}: ${got.positions} positions`);
          const bytes = new Uint8Array(Buffer.from(got.base64, "base64"));
          assert.deepEqual(bytes, reference[what], `${what}, workers ${workers}: the page's voice differs from Deno's`);
        }
      }
    });
    assert.deepEqual(problems, []);
    // The FLAC decoder came from the import map; the Node-only Opus encoder was never asked for.
    assert.ok(server.requests.includes("/node_modules/@wasm-audio-decoders/flac/index.js"));
    assert.deepEqual(server.requests.filter((p) => /@evan|ogg-opus/.test(p)), []);
    assert.deepEqual(server.requests.filter((p) => !p.startsWith("/") || p.includes("..")), []);
  });
});
