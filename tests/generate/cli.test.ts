// The CLI as a real subprocess of the running runtime (Deno or Bun; Node 20 cannot run mod.ts): the golden e2e
// case through --noise-file gives the reference's WAV (header exact, ±1 LSB), `-o -` streams the same bytes to
// stdout, the same --seed gives identical bytes in Deno and Bun with the baseline variant (and equals the API in
// this process), and bad input is a one-line error with exit code 1.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeWav, TTSModel } from "../../mod.ts";
import { repoRoot } from "../support/fixtures.ts";
import { tempDir } from "../support/temp_dir.ts";
import { e2eCase, maxLsbDiff, pcm16, TINY_MODEL_DIR, TINY_VOICE } from "../support/tiny_model.ts";
import { replayNoise } from "../../src/generate/noise.ts";

const root = fileURLToPath(repoRoot);
// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const tools = join(root, ".tools/bin");
/** Command lines that run the CLI in each runtime available here. */
const runners: Record<string, string[]> = {
  deno: [join(tools, "deno"), "run", "-A", join(root, "mod.ts")],
  bun: [join(tools, "bun"), join(root, "mod.ts")],
};
const self = g.Deno ? "deno" : g.Bun ? "bun" : null;

async function* whole(text: string): AsyncGenerator<string> {
  yield text;
}

function cli(runtime: string, args: string[], input?: string) {
  const [cmd, ...pre] = runners[runtime];
  const r = spawnSync(cmd, [...pre, ...args], { cwd: root, input, env: { ...g.process?.env, NO_COLOR: "1" } });
  return { status: r.status, stdout: new Uint8Array(r.stdout), stderr: String(r.stderr) };
}

describe("CLI", { skip: self === null ? "Node 20 cannot run mod.ts (TypeScript)" : false }, () => {
  test("golden e2e case: the written WAV equals the reference's (header exact, ±1 LSB)", async () => {
    const c = await e2eCase("normal");
    const out = join(tempDir("pocket-cli-"), "out.wav");
    const r = cli(self!, [
      c.text,
      ...["--model", TINY_MODEL_DIR, "--voice", TINY_VOICE, "--eos-threshold", String(c.eos_threshold)],
      ...["--temperature", String(c.temperature), "--noise-file", c.file, "-o", out, "--workers", "0"],
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /s of audio in .*real time.*first audio after/);
    const wav = new Uint8Array(readFileSync(out));
    assert.deepEqual(wav.subarray(0, 44), c.wav.subarray(0, 44));
    assert.ok(maxLsbDiff(pcm16(wav), pcm16(c.wav)) <= 1);
  });

  test("-o - streams the same WAV to stdout; text from stdin with -", async () => {
    const c = await e2eCase("short");
    const args = ["--model", TINY_MODEL_DIR, "--voice", TINY_VOICE, "--eos-threshold", String(c.eos_threshold)];
    const r = cli(self!, ["-", ...args, "--noise-file", c.file, "-o", "-", "-q"], c.text);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), "");
    assert.deepEqual(r.stdout.subarray(0, 44), c.wav.subarray(0, 44));
    assert.ok(maxLsbDiff(pcm16(r.stdout), pcm16(c.wav)) <= 1);
  });

  test("--quantize runs the int8 FlowLM: the API's quantize: true audio, not the exact reference's", async () => {
    const c = await e2eCase("short");
    const args = ["--model", TINY_MODEL_DIR, "--voice", TINY_VOICE, "--eos-threshold", String(c.eos_threshold)];
    const r = cli(self!, [c.text, ...args, "--noise-file", c.file, "-o", "-", "-q", "--workers", "0", "--quantize"]);
    assert.equal(r.status, 0, r.stderr);
    const tts = await TTSModel.load({ model: TINY_MODEL_DIR, workers: 0, quantize: true });
    try {
      const audio = await tts.generate(c.text, {
        voice: await tts.loadVoice(TINY_VOICE),
        eosThreshold: c.eos_threshold,
        noise: replayNoise(c.noise).noise,
      });
      const wav = encodeWav(audio, tts.sampleRate, { unknownLength: true, trailingSilenceMs: 200 });
      assert.deepEqual(pcm16(r.stdout), pcm16(wav));
      assert.ok(maxLsbDiff(pcm16(r.stdout), pcm16(c.wav)) > 1, "int8 audio differs from the exact reference");
    } finally {
      tts.dispose();
    }
  });

  test("--stream-input speaks the first sentence while stdin is still open; the audio is streamText's", async () => {
    const first = "Hello there, my friend. ";
    const rest = "The weather is lovely today, so we walk in the park. Then we rest.";
    const [cmd, ...pre] = runners[self!];
    const args = ["--stream-input", "--model", TINY_MODEL_DIR, "--voice", TINY_VOICE, "--seed", "7", "-o", "-", "-q"];
    const child = spawn(cmd, [...pre, ...args], { cwd: root, env: { ...g.process?.env, NO_COLOR: "1" } });
    let stderr = "";
    child.stderr.on("data", (d: Uint8Array) => stderr += String(d));
    const parts: Uint8Array[] = [];
    let received = 0;
    let firstAudio: () => void;
    const audioBeforeRest = new Promise<void>((resolve) => firstAudio = resolve);
    child.stdout.on("data", (d: Uint8Array) => {
      parts.push(new Uint8Array(d));
      received += d.length;
      if (received >= 44 + 1920 * 2) firstAudio(); // the WAV header and one whole frame
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    child.stdin.write(first);
    // Only once a frame has arrived does the rest of the text exist: a CLI that waited for the end would hang here
    // (the guard fails the test instead of hanging).
    const guard = setTimeout(() => child.kill(), 120_000);
    await Promise.race([audioBeforeRest, exited]);
    assert.ok(received >= 44 + 1920 * 2, `no audio before the rest of the text was written: ${stderr}`);
    child.stdin.end(rest);
    assert.equal(await exited, 0, stderr);
    clearTimeout(guard);
    const out = new Uint8Array(received);
    parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
    const tts = await TTSModel.load({ model: TINY_MODEL_DIR, workers: 0 });
    try {
      const voice = await tts.loadVoice(TINY_VOICE);
      const frames: Float32Array[] = [];
      for await (const f of tts.streamText(whole(first + rest), { voice, seed: 7 })) frames.push(f);
      const audio = new Float32Array(frames.length * 1920);
      frames.forEach((f, i) => audio.set(f, i * 1920));
      assert.deepEqual(out, encodeWav(audio, tts.sampleRate, { unknownLength: true, trailingSilenceMs: 200 }));
    } finally {
      tts.dispose();
    }
  });

  test("bad input: one-line error, exit code 1", () => {
    const cases: [string[], RegExp][] = [
      [["   ", "--model", TINY_MODEL_DIR], /empty|no text/i],
      [["Hi", "--model", TINY_MODEL_DIR, "--voice", "nobody"], /unknown voice|no predefined voices/],
      [["Hi", "--model", "/nonexistent/dir"], /nonexistent/],
      [["Hi", "--temperature", "warm", "--model", TINY_MODEL_DIR], /--temperature must be a number/],
      [["Hi", "--bogus"], /bogus/],
      [[], /no text given/],
      [["Hi", "--stream-input"], /--stream-input reads standard input/],
    ];
    for (const [args, re] of cases) {
      const r = cli(self!, [...args, "-o", join(tmpdir(), "unused.wav")]);
      assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^error: /);
      assert.match(lines[0], re);
    }
  });

  test("--help, --version and --list-voices", () => {
    assert.match(new TextDecoder().decode(cli(self!, ["--help"]).stdout), /--output-path/);
    assert.match(new TextDecoder().decode(cli(self!, ["--version"]).stdout), /@pocket\/tts \d+\.\d+\.\d+/);
    assert.match(new TextDecoder().decode(cli(self!, ["--list-voices"]).stdout), /alba/);
  });
});

// Runs in Node too: the in-process API (Node, Deno or Bun) must equal both CLIs byte for byte.
describe("determinism across runtimes", () => {
  test("--seed: identical bytes from the Deno and Bun CLIs (baseline variant) and the API in this runtime", async () => {
    const args = ["Seeded speech.", "--model", TINY_MODEL_DIR, "--voice", TINY_VOICE, "--seed", "1234"];
    const outs = Object.keys(runners).map((rt) => cli(rt, [...args, "--simd", "baseline", "-o", "-", "-q"]));
    for (const o of outs) assert.equal(o.status, 0, o.stderr);
    assert.deepEqual(outs[0].stdout, outs[1].stdout);
    const tts = await TTSModel.load({ model: TINY_MODEL_DIR, simd: "baseline", workers: 0 });
    try {
      const voice = await tts.loadVoice(TINY_VOICE);
      const audio = await tts.generate("Seeded speech.", { voice, seed: 1234 });
      const wav = encodeWav(audio, 24000, { unknownLength: true, trailingSilenceMs: 200 });
      assert.deepEqual(outs[0].stdout, wav);
    } finally {
      tts.dispose();
    }
  });
});
