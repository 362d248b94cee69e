// Voice cloning through the public API and the CLI, on the tiny golden model:
// - the stored audio_24k (as samples) and the golden WAV (decoded and resampled here) clone to the reference's
//   voice state (rel 2e-5), in one thread and in workers;
// - the same speech as 16-bit, 24-bit, float32 and stereo WAV and as FLAC (written by sox/flac at test time) gives
//   the same voice state within 1e-4; MP3 (lame) and Ogg Vorbis (sox) clone without error;
// - maxSeconds cuts the prompt; the same recording twice returns the cached voice;
// - junk bytes, a cut file, an unsupported format and ungated weights are typed errors through the API, and one-line
//   errors with exit code 1 through the CLI; `export-voice` writes what the API exports.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TTSModel, type Voice, VoiceCloningUnavailableError } from "../../mod.ts";
import { InvalidAudioError, UnsupportedAudioError } from "../../src/errors.ts";
import { parseSafetensors, serializeSafetensors, toFloat32 } from "../../src/model/safetensors.ts";
import { readVoiceFile, type VoiceKvState } from "../../src/voice/voice_state.ts";
import { maxRelDiff } from "../support/core.ts";
import { fixtureUrl, readFixture, repoRoot } from "../support/fixtures.ts";
import { TINY_MODEL_DIR } from "../support/tiny_model.ts";
import { tempDir } from "../support/temp_dir.ts";
import { readCase } from "../flow_lm/support.ts";

const root = fileURLToPath(repoRoot);
// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const GOLDEN_WAV = fileURLToPath(fixtureUrl("audio/espeak_prompt_22050.wav"));
const dir = tempDir("pocket-clone-");
// The golden speech cut to 98304 samples (24 FLAC blocks of 4096): @wasm-audio-decoders/flac 0.2.11 drops a file's
// last frame when it is a partial block, so the FLAC copy must end on a block boundary to hold the same samples.
const SPEECH = join(dir, "speech.wav");

/** Runs a tool (sox, flac, lame); returns the output path. */
function make(out: string, cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${String(r.stderr)}`);
  return join(dir, out);
}

/** The same speech in several encodings, written at test time. */
function speechFiles(): Record<string, string> {
  const p = (n: string) => join(dir, n);
  make("speech.wav", "sox", [GOLDEN_WAV, SPEECH, "trim", "0", "98304s"]);
  return {
    "16-bit WAV": SPEECH,
    "24-bit WAV": make("s24.wav", "sox", [SPEECH, "-b", "24", p("s24.wav")]),
    "float32 WAV": make("f32.wav", "sox", [SPEECH, "-e", "floating-point", "-b", "32", p("f32.wav")]),
    "stereo WAV": make("stereo.wav", "sox", [SPEECH, "-c", "2", p("stereo.wav")]),
    "FLAC": make("s.flac", "flac", ["-s", "-f", "-o", p("s.flac"), SPEECH]),
  };
}

async function voiceState(tts: TTSModel, voice: Voice): Promise<VoiceKvState> {
  const file = await readVoiceFile(tts.exportVoice(voice), "export");
  assert.ok(file.kind === "kv");
  return file.state;
}

function assertStatesClose(got: VoiceKvState, want: VoiceKvState, tol: number, what: string): number {
  assert.equal(got.length, want.length, `${what}: positions`);
  let worst = 0;
  for (let l = 0; l < want.layers.length; l++) worst = Math.max(worst, maxRelDiff(got.layers[l], want.layers[l]));
  assert.ok(worst < tol, `${what}: rel ${worst}`);
  return worst;
}

/** A copy of the tiny model whose weights have the encoder zeroed, as the ungated release does. */
async function ungatedModelDir(): Promise<string> {
  const d = tempDir("pocket-ungated-");
  const bytes = await readFixture("model/tiny/model.safetensors");
  const st = parseSafetensors(bytes, "tiny");
  const tensors = [];
  for (const info of st.tensors) {
    const data = toFloat32(await st.tensor(info.name));
    if (info.name.startsWith("mimi.encoder.")) data.fill(0);
    tensors.push({ name: info.name, dtype: "F32" as const, shape: [...info.shape], data });
  }
  // The same layout as the fixture (the config names ../text/tokenizer.model).
  mkdirSync(join(d, "tiny"));
  mkdirSync(join(d, "text"));
  writeFileSync(join(d, "tiny/model.safetensors"), serializeSafetensors(tensors));
  writeFileSync(join(d, "tiny/config.json"), readFileSync(join(TINY_MODEL_DIR, "config.json")));
  writeFileSync(join(d, "text/tokenizer.model"), await readFixture("model/text/tokenizer.model"));
  return join(d, "tiny");
}

describe("voice cloning through the API (tiny model)", () => {
  test("audio_24k samples and the golden WAV clone to the reference's voice state (rel 2e-5), 0 and 2 workers", async () => {
    const want = await readVoiceFile(await readFixture("tiny/voice_state.safetensors"), "voice_state");
    assert.ok(want.kind === "kv");
    const audio24k = (await readCase("tiny/voice_clone.safetensors")).f32("audio_24k");
    for (const workers of [0, 2] as const) {
      if (workers === 2 && !(g.Deno || g.Bun)) continue; // Node 20 has no module workers
      const tts = await TTSModel.load({ model: TINY_MODEL_DIR, workers });
      try {
        assert.ok(tts.hasVoiceCloning);
        const fromSamples = await tts.loadVoice({ samples: audio24k, sampleRate: 24000 });
        assertStatesClose(await voiceState(tts, fromSamples), want.state, 2e-5, `samples, workers ${workers}`);
        const fromWav = await tts.loadVoice(GOLDEN_WAV);
        const d = assertStatesClose(await voiceState(tts, fromWav), want.state, 2e-5, `WAV, workers ${workers}`);
        console.log(`clone from the 22050 Hz WAV (our decoder + resampler) vs golden voice state: rel ${d}`);
        const audio = await tts.generate("Hello there.", { voice: fromWav, seed: 1, maxTokens: 20 });
        assert.ok(audio.length > 0 && audio.every(Number.isFinite));
      } finally {
        tts.dispose();
      }
    }
  });

  test("the same speech as 16/24-bit, float32, stereo WAV and FLAC: the same voice (1e-4); MP3 and Ogg clone", async () => {
    const files = speechFiles();
    const tts = await TTSModel.load({ model: TINY_MODEL_DIR, workers: 0 });
    try {
      const ref = await voiceState(tts, await tts.loadVoice(files["16-bit WAV"]));
      for (const [what, path] of Object.entries(files)) {
        assertStatesClose(await voiceState(tts, await tts.loadVoice(path)), ref, 1e-4, what);
      }
      const mp3 = make("s.mp3", "lame", ["--quiet", SPEECH, join(dir, "s.mp3")]);
      const ogg = make("s.ogg", "sox", [SPEECH, join(dir, "s.ogg")]);
      for (const path of [mp3, ogg]) {
        const v = await tts.loadVoice(new Uint8Array(readFileSync(path)));
        // Lossy, and MP3 adds encoder delay: the same length within a frame, finite values.
        assert.ok(Math.abs(v.positions - ref.length) <= 2, `${path}: ${v.positions} positions`);
        assert.ok((await voiceState(tts, v)).layers.every((l) => l.every(Number.isFinite)));
      }
    } finally {
      tts.dispose();
    }
  });

  test("maxSeconds cuts the prompt; the same recording again is the cached voice", async () => {
    const tts = await TTSModel.load({ model: TINY_MODEL_DIR, workers: 0 });
    try {
      const bytes = await readFixture("audio/espeak_prompt_22050.wav");
      const short = await tts.loadVoice(bytes, { maxSeconds: 2 });
      assert.equal(short.positions, 26, "2 s → 48000 samples at 24 kHz → 25 frames, after bos_before_voice");
      const first = await tts.loadVoice(bytes);
      const again = await tts.loadVoice(bytes.slice());
      assert.equal(again, first, "same Voice object from the content cache");
      assert.notEqual(short, first);
    } finally {
      tts.dispose();
    }
  });

  test("junk, a cut file, an unsupported format and ungated weights are typed errors", async () => {
    const tts = await TTSModel.load({ model: TINY_MODEL_DIR, workers: 0 });
    const wav = await readFixture("audio/espeak_prompt_22050.wav");
    try {
      const junk = new Uint8Array(4000).map((_, i) => (i * 7919) % 251);
      await assert.rejects(tts.loadVoice(junk), (e) => e instanceof UnsupportedAudioError);
      await assert.rejects(tts.loadVoice(wav.subarray(0, 20000)), (e) => e instanceof InvalidAudioError);
      const aiff = await readFixture("audio/formats/tone.aiff");
      await assert.rejects(
        tts.loadVoice(aiff),
        (e) => e instanceof UnsupportedAudioError && e.code === "unsupported_audio" && /WAV/.test(e.message),
      );
      await assert.rejects(
        tts.loadVoice({ samples: new Float32Array([0.1, NaN]), sampleRate: 24000 }),
        (e) => e instanceof InvalidAudioError && e.code === "invalid_audio",
      );
    } finally {
      tts.dispose();
    }
    const ungated = await TTSModel.load({ model: await ungatedModelDir(), workers: 0, onNotice: () => {} });
    try {
      assert.equal(ungated.hasVoiceCloning, false);
      await assert.rejects(
        ungated.loadVoice(wav),
        (e) =>
          e instanceof VoiceCloningUnavailableError && e.code === "voice_cloning_unavailable" &&
          /kyutai\/pocket-tts/.test(e.message) && /HF_TOKEN/.test(e.message) && /terms/.test(e.message),
      );
    } finally {
      ungated.dispose();
    }
  });
});

const runners: Record<string, string[]> = {
  deno: [join(root, ".tools/bin/deno"), "run", "-A", join(root, "mod.ts")],
  bun: [join(root, ".tools/bin/bun"), join(root, "mod.ts")],
};
const self = g.Deno ? "deno" : g.Bun ? "bun" : null;

function cli(args: string[]) {
  const [cmd, ...pre] = runners[self!];
  const r = spawnSync(cmd, [...pre, ...args], { cwd: root, env: { ...g.process?.env, NO_COLOR: "1" } });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe("voice cloning through the CLI", { skip: self === null ? "Node 20 cannot run mod.ts" : false }, () => {
  test("export-voice writes the API's voice; --voice takes a recording", async () => {
    const out = join(dir, "me.safetensors");
    const r = cli(["export-voice", GOLDEN_WAV, out, "--model", TINY_MODEL_DIR]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /voice of 59 positions .*me\.safetensors/);
    const tts = await TTSModel.load({ model: TINY_MODEL_DIR, workers: 0 });
    try {
      const api = tts.exportVoice(await tts.loadVoice(GOLDEN_WAV));
      assert.deepEqual(new Uint8Array(readFileSync(out)), api);
    } finally {
      tts.dispose();
    }
    const wavOut = join(dir, "out.wav");
    const gen = cli(["Hello.", "--model", TINY_MODEL_DIR, "--voice", GOLDEN_WAV, "--seed", "1", "-o", wavOut, "-q"]);
    assert.equal(gen.status, 0, gen.stderr);
    assert.ok(readFileSync(wavOut).length > 44);
  });

  test("bad audio and ungated weights: one-line error, exit code 1", async () => {
    const junk = join(dir, "junk.wav");
    writeFileSync(junk, new Uint8Array(3000).map((_, i) => (i * 31) % 256));
    const cut = join(dir, "cut.wav");
    writeFileSync(cut, readFileSync(GOLDEN_WAV).subarray(0, 20000));
    const aiff = fileURLToPath(fixtureUrl("audio/formats/tone.aiff"));
    const ungated = await ungatedModelDir();
    const cases: [string[], RegExp][] = [
      [["export-voice", junk, join(dir, "x.safetensors"), "--model", TINY_MODEL_DIR], /WAV/],
      [["export-voice", cut, join(dir, "x.safetensors"), "--model", TINY_MODEL_DIR, "-q"], /cut short|truncated/i],
      [["export-voice", aiff, join(dir, "x.safetensors"), "--model", TINY_MODEL_DIR], /WAV/],
      [["export-voice", GOLDEN_WAV, join(dir, "x.safetensors"), "--model", ungated], /HF_TOKEN/],
      [["Hi.", "--model", TINY_MODEL_DIR, "--voice", junk, "-o", join(dir, "y.wav")], /WAV/],
      [["export-voice", GOLDEN_WAV, "--model", TINY_MODEL_DIR], /AUDIO and OUT/],
      [
        ["export-voice", GOLDEN_WAV, join(dir, "x.safetensors"), "--max-seconds", "0", "--model", TINY_MODEL_DIR],
        /max-seconds/,
      ],
    ];
    for (const [args, pattern] of cases) {
      const r = cli(args);
      assert.equal(r.status, 1, `${args.join(" ")}: exit ${r.status}`);
      const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("error:"));
      assert.equal(lines.length, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(lines[0], pattern, args.join(" "));
      assert.ok(!/\n\s+at /.test(r.stderr), "no stack trace");
    }
  });
});
