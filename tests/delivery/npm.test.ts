// The npm layer (what `bunx jsr add @pocket/tts` / `npx jsr add @pocket/tts` install), as users receive it:
// `scripts/build-npm.ts` builds it from the publish set into a temp dir, an app installs it as
// node_modules/@pocket/tts, and real `node` and `bun` processes import it by name, generate the shared request with
// two workers (worker_threads in Node, module workers in Bun) and the baseline variant, and must write the local Deno
// CLI's bytes; then again on the threads build with one helper (`threads: 2`), same bytes. The same app bundled by
// esbuild (with bundle/'s worker script and wasm beside it) must too.
// Deno pass only (see tests/delivery/support.ts): 5 processes (build, reference, node, bun, bundled node).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { listFiles } from "../../scripts/publish_files.ts";
import {
  BUN,
  DENO,
  denoOnly,
  ESBUILD,
  NODE,
  referenceWav,
  ROOT,
  run,
  SEED,
  TEXT,
  TINY_MODEL_DIR,
  TINY_VOICE,
} from "./support.ts";

/** A FLAC file (16 kHz stereo) the app decodes through the package's lazily imported codec. */
const FLAC = join(ROOT, "tests/fixtures/audio/formats/stereo16.flac");

/** The app: what a user writes against the installed package. */
const APP = `import { readFileSync, writeFileSync } from "node:fs";
import { decodeAudio, encodeWav, TTSModel } from "@pocket/tts";

const [model, voicePath, text, seed, out, flac] = process.argv.slice(2);
// A lazily imported npm codec (a package.json dependency of the build) must load from node_modules.
const decoded = await decodeAudio(new Uint8Array(readFileSync(flac)));
const modes = [{ workers: 2 }, { workers: 0, threads: 2 }];
const usesWorkers = [];
for (const [i, mode] of modes.entries()) {
  const tts = await TTSModel.load({ model, ...mode, simd: "baseline" });
  try {
    const voice = await tts.loadVoice(voicePath);
    const audio = await tts.generate(text, { voice, seed: Number(seed) });
    const wav = encodeWav(audio, tts.sampleRate, { unknownLength: true, trailingSilenceMs: 200 });
    writeFileSync(i === 0 ? out : out + ".threads.wav", wav);
    usesWorkers.push(tts.usesWorkers);
  } finally {
    tts.dispose();
  }
}
console.log(JSON.stringify({ usesWorkers, flac: [decoded.samples.length, decoded.sampleRate] }));
`;

describe("npm layer (Node and Bun)", { skip: denoOnly }, () => {
  let dir = "";
  let pkg = "";
  let app = "";
  let reference: Uint8Array;
  /** What the app prints: workers in use, and the FLAC's sample count and rate as `metaflac` reports them. */
  let flacExpected: { usesWorkers: boolean[]; flac: number[] };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "pocket-npm-"));
    pkg = join(dir, "pkg");
    const [build, ref] = await Promise.all([
      run(DENO, ["run", "-A", join(ROOT, "scripts/build-npm.ts"), pkg]),
      referenceWav("baseline"),
    ]);
    assert.equal(build.status, 0, build.stderr);
    reference = ref;
    app = join(dir, "app");
    mkdirSync(join(app, "node_modules/@pocket"), { recursive: true });
    cpSync(pkg, join(app, "node_modules/@pocket/tts"), { recursive: true }); // installed as npm does: a copy
    writeFileSync(join(app, "package.json"), JSON.stringify({ type: "module", private: true }));
    writeFileSync(join(app, "main.mjs"), APP);
    // The build's dependencies, installed as npm would (linked from this checkout's node_modules).
    const manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));
    for (const dep of Object.keys(manifest.dependencies ?? {})) {
      mkdirSync(dirname(join(app, "node_modules", dep)), { recursive: true });
      symlinkSync(join(ROOT, "node_modules", dep), join(app, "node_modules", dep), "dir");
    }
    const meta = await run("metaflac", ["--show-total-samples", "--show-sample-rate", FLAC]);
    flacExpected = {
      usesWorkers: [true, false],
      flac: new TextDecoder().decode(meta.stdout).trim().split("\n").map(Number),
    };
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the package: only .js + .d.ts, exports resolve, npm: imports become dependencies", () => {
    const files = listFiles(pkg).map((f) => f.slice(pkg.length + 1));
    assert.deepEqual(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")), []);
    for (const f of files.filter((f) => f.endsWith(".js") && !f.startsWith("bundle/"))) {
      assert.ok(files.includes(f.replace(/\.js$/, ".d.ts")), `no declarations for ${f}`);
      const code = readFileSync(join(pkg, f), "utf8");
      assert.doesNotMatch(code, /from\s*["'][^"']*\.ts["']|import\(\s*["'][^"']*\.ts["']\)|["']npm:/, f);
    }
    const manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8"));
    assert.equal(manifest.type, "module");
    for (const [key, target] of Object.entries(manifest.exports as Record<string, string | Record<string, string>>)) {
      for (const path of typeof target === "string" ? [target] : Object.values(target)) {
        assert.ok(files.includes(path.slice(2)), `export ${key} → ${path} is missing`);
      }
    }
    // Every npm: specifier of the published sources is a dependency (e.g. the lazily imported audio decoders).
    const npmSpecs = new Set<string>();
    for (const f of listFiles(join(ROOT, "src")).filter((f) => f.endsWith(".ts"))) {
      for (const m of readFileSync(f, "utf8").matchAll(/["']npm:((?:@[^/@"']+\/)?[^/@"']+)/g)) npmSpecs.add(m[1]);
    }
    assert.deepEqual(Object.keys(manifest.dependencies ?? {}).sort(), [...npmSpecs].sort());
    // The worker script and wasm travel with it (package layout and bundle layout).
    for (
      const f of [
        "src/generate/worker.js",
        "wasm/pocket_core_simd.wasm",
        "wasm/pocket_core_simd_threads.wasm",
        "bundle/pocket_tts_worker.mjs",
        "bundle/pocket_core_simd_threads.wasm",
      ]
    ) {
      assert.ok(files.includes(f), f);
    }
  });

  for (const [name, cmd] of [["node", NODE], ["bun", BUN]] as const) {
    test(`${name} imports @pocket/tts, runs two workers, then threads, each writing the Deno CLI's bytes`, async () => {
      const out = join(dir, `${name}.wav`);
      const r = await run(cmd, [join(app, "main.mjs"), TINY_MODEL_DIR, TINY_VOICE, TEXT, String(SEED), out, FLAC], {
        cwd: app,
      });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(new TextDecoder().decode(r.stdout)), flacExpected);
      assert.deepEqual(new Uint8Array(readFileSync(out)), reference);
      assert.deepEqual(new Uint8Array(readFileSync(out + ".threads.wav")), reference);
    });
  }

  test("bundled: the app bundled by esbuild, bundle/'s worker and wasm beside it, two workers then threads in node", async () => {
    // The package goes into the bundle; its npm dependencies (lazily imported codecs, some CommonJS) stay external
    // and load from the app's node_modules, as bundlers are usually told for such packages.
    const outDir = join(app, "dist");
    const deps = Object.keys(JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")).dependencies ?? {});
    const b = await run(ESBUILD, [
      join(app, "main.mjs"),
      ...["--bundle", "--format=esm", "--platform=node", "--target=node20", `--outfile=${join(outDir, "app.mjs")}`],
      ...deps.map((d) => `--external:${d}`),
    ], { cwd: app });
    assert.equal(b.status, 0, b.stderr);
    for (const f of readdirSync(join(pkg, "bundle")).filter((f) => f !== "pocket_tts.mjs")) {
      cpSync(join(pkg, "bundle", f), join(outDir, f));
    }
    const out = join(dir, "bundled.wav");
    const r = await run(NODE, [join(outDir, "app.mjs"), TINY_MODEL_DIR, TINY_VOICE, TEXT, String(SEED), out, FLAC], {
      cwd: outDir,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(r.stdout)), flacExpected);
    assert.deepEqual(new Uint8Array(readFileSync(out)), reference);
    assert.deepEqual(new Uint8Array(readFileSync(out + ".threads.wav")), reference);
  });
});
