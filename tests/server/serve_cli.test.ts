// The `serve` subcommand as users start it, in Deno (`deno run -A mod.ts serve`), Bun (`bun mod.ts serve`) and Node
// (the CLI bundled by esbuild, one thread): it prints its URL (port 0 = a free port), answers /health, lists the
// voices of `--voices DIR`, requires `--api-key`, speaks with a registered voice (the library's bytes), and on SIGINT
// or SIGTERM ends a stream in flight (the client, which had stopped reading, then reads to a clean end), exits 0 and
// leaves nothing listening. The in-flight stream is ~350 s of audio (`--eos-threshold 1e9`: every chunk runs to its
// full length), far more than socket buffers hold, so it cannot have finished by itself while the client waits.
// Deno pass only: it spawns the three runtimes itself (Bun and the Node bundles skip it).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAudioEncoder, TTSModel } from "../../mod.ts";
import { BUN, cleanEnv, DENO, denoOnly, ESBUILD, ROOT, run } from "../delivery/support.ts";
import { type Service, startService } from "../support/process.ts";
import { TINY_MODEL_DIR, TINY_VOICE } from "../support/tiny_model.ts";

const KEY = "s3cret-key";
const LONG_TEXT = "This sentence is one of many that make the input long. ".repeat(70).slice(0, 4000);
const SHORT_TEXT = "Hello from the command line.";
const GENERATION = { eosThreshold: 1e9 };

let dir = "";
let nodeCli = "";

/** The serve command line of each runtime. */
function command(runtime: string, args: string[]): [string, string[]] {
  if (runtime === "deno") return [DENO, ["run", "-A", join(ROOT, "mod.ts"), "serve", ...args]];
  if (runtime === "bun") return [BUN, [join(ROOT, "mod.ts"), "serve", ...args]];
  return ["node", [nodeCli, "serve", ...args, "--workers", "0"]];
}

function startServe(runtime: string): Service {
  const [cmd, args] = command(runtime, [
    ...["--port", "0", "--model", TINY_MODEL_DIR, "--voices", join(dir, "voices")],
    ...["--api-key", KEY, "--eos-threshold", "1e9", "--simd", "baseline"],
  ]);
  return startService(cmd, args, { cwd: dir, env: cleanEnv() });
}

const auth = { authorization: `Bearer ${KEY}` };

function speech(base: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${base}/v1/audio/speech`, {
    method: "POST",
    headers: { "content-type": "application/json", ...auth },
    body: JSON.stringify({ model: "pocket-tts", response_format: "pcm", ...body }),
  });
}

/**
 * Starts a long stream, reads its first bytes and stops reading; checks /health counts it; sends `signal`; then
 * reads the rest: the body must end cleanly, the process exit 0, and the port refuse connections.
 */
async function stopsCleanly(service: Service, base: string, signal: "SIGINT" | "SIGTERM"): Promise<void> {
  const res = await speech(base, { input: LONG_TEXT, voice: "narrator", seed: 1 });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const first = await reader.read();
  assert.ok(!first.done && first.value.length > 0);
  const health = await (await fetch(`${base}/health`)).json();
  assert.equal(health.streams.active, 1, "the stream is in flight when the signal comes");
  service.signal(signal);
  let received = first.value.length;
  for (;;) {
    const { done, value } = await reader.read(); // throws if the connection is cut instead of the body ending
    if (done) break;
    received += value.length;
  }
  const exit = await service.exited;
  assert.deepEqual(exit, { code: 0, signal: null }, service.output.stderr);
  assert.match(service.output.stderr, /stopping: ending streams in flight/);
  // ~350 s of audio is ~17 MB of pcm: the stream was cut by the shutdown, not finished.
  assert.ok(received < 350 * 48000, `${received} bytes received`);
  await assert.rejects(fetch(`${base}/health`), "nothing listens any more");
}

describe("serve CLI: Deno, Bun and Node processes, signals end streams in flight", { skip: denoOnly }, () => {
  let expected: Uint8Array;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "pocket-serve-cli-"));
    mkdirSync(join(dir, "voices"));
    copyFileSync(TINY_VOICE, join(dir, "voices", "narrator.safetensors"));
    // Node has no `import.meta.main`: its CLI is an esbuild bundle of runCli (codecs external, wasm beside it).
    writeFileSync(
      join(dir, "entry.ts"),
      `import { runCli } from ${JSON.stringify(join(ROOT, "src/cli.ts"))};\n` +
        "process.exit(await runCli(process.argv.slice(2)));\n",
    );
    nodeCli = join(dir, "cli.mjs");
    const build = await run(ESBUILD, [
      join(dir, "entry.ts"),
      ...["--bundle", "--format=esm", "--platform=node", "--target=node20", `--outfile=${nodeCli}`],
      ...["--external:npm:*", "--external:@wasm-audio-decoders/*", "--external:mpg123-decoder"],
      ...["--external:ogg-opus-decoder", "--external:@breezystack/lamejs", "--external:@evan/opus"],
    ]);
    assert.equal(build.status, 0, build.stderr);
    for (const f of ["pocket_core_simd.wasm", "pocket_core_relaxed.wasm"]) {
      copyFileSync(join(ROOT, "wasm", f), join(dir, f));
    }
    // What the speech request must return: the library's audio for the registered voice and the server's settings.
    const tts = await TTSModel.load({ model: TINY_MODEL_DIR, workers: 0, simd: "baseline" });
    try {
      const voice = await tts.loadVoice(TINY_VOICE);
      const audio = await tts.generate(SHORT_TEXT, { ...GENERATION, voice, seed: 7, onWarning: () => {} });
      const pcm = await createAudioEncoder("pcm", tts.sampleRate);
      const [body, tail] = [pcm.push(audio), pcm.end()];
      expected = new Uint8Array([...body, ...tail]);
    } finally {
      tts.dispose();
    }
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const runtime of ["deno", "bun", "node"]) {
    test(`${runtime}: URL printed, health, voices, API key, speech; SIGINT mid-stream`, async () => {
      const service = startServe(runtime);
      try {
        const [, base] = await service.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+) \(voices: narrator\)/);
        const health = await fetch(`${base}/health`);
        assert.equal(health.status, 200);
        assert.equal((await health.json()).status, "ok");
        const anonymous = await fetch(`${base}/v1/voices`);
        assert.equal(anonymous.status, 401);
        await anonymous.body?.cancel();
        const voices = await (await fetch(`${base}/v1/voices`, { headers: auth })).json();
        assert.ok(voices.voices.includes("narrator"), JSON.stringify(voices));
        const res = await speech(base, { input: SHORT_TEXT, voice: "narrator", seed: 7 });
        assert.equal(res.status, 200);
        assert.deepEqual(new Uint8Array(await res.arrayBuffer()), expected);
        await stopsCleanly(service, base, "SIGINT");
      } finally {
        service.signal("SIGKILL");
        await service.exited;
      }
    });

    test(`${runtime}: SIGTERM mid-stream`, async () => {
      const service = startServe(runtime);
      try {
        const [, base] = await service.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
        await stopsCleanly(service, base, "SIGTERM");
      } finally {
        service.signal("SIGKILL");
        await service.exited;
      }
    });
  }
});
