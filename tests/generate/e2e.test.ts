// End-to-end generation through the public API on the tiny golden model (golden README §3(e)): recorded noise,
// thresholds and temperature; audio within 2e-5 relative, EOS steps, frame and sample counts exact, and the WAV
// bytes of the reference's writer (header exact, samples ±1 LSB). Worker and single-thread modes, both variants.
import { describe, test } from "node:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseSafetensors, serializeSafetensors } from "../../src/model/safetensors.ts";
import assert from "node:assert/strict";
import { encodeWav, TTSModel } from "../../mod.ts";
import type { ChunkReport } from "../../src/generate/generation.ts";
import { workersAvailable } from "../../src/generate/create_services.ts";
import { maxRelDiff, testVariants } from "../support/core.ts";
import { tempDir } from "../support/temp_dir.ts";
import {
  e2eCase,
  generateCase,
  maxLsbDiff,
  pcm16,
  TINY_MODEL_DIR,
  TINY_VOICE,
  withTinyModel,
} from "../support/tiny_model.ts";

const modes: (0 | 2)[] = workersAvailable() ? [0, 2] : [0];

for (const variant of testVariants) {
  for (const workers of modes) {
    describe(`e2e tiny (${variant}, workers ${workers})`, () => {
      for (const name of ["short", "normal", "long"] as const) {
        test(`${name}: audio, EOS steps, counts and WAV match the reference`, async () => {
          const c = await e2eCase(name);
          await withTinyModel({ workers, simd: variant }, async (tts) => {
            assert.equal(tts.usesWorkers, workers === 2);
            const { audio, reports, noiseRowsUsed } = await generateCase(tts, c);
            assert.deepEqual(
              reports.map((r) => [r.text, r.tokens, r.maxGenLen, r.eosStep, r.frames]),
              c.chunks.map((k) => [k.text, k.tokens.length, k.max_gen_len, k.eos_step, k.frames_emitted]),
            );
            assert.equal(noiseRowsUsed, c.noise_rows_consumed);
            assert.equal(audio.length, c.audio_samples);
            const rel = maxRelDiff(audio, c.audio);
            assert.ok(rel < 2e-5, `audio rel diff ${rel}`);
            const wav = encodeWav(audio, tts.sampleRate, { unknownLength: true, trailingSilenceMs: 200 });
            assert.deepEqual(wav.subarray(0, 44), c.wav.subarray(0, 44));
            assert.ok(maxLsbDiff(pcm16(wav), pcm16(c.wav)) <= 1, "PCM within ±1 LSB");
          });
        });
      }
    });
  }
}

describe("generation semantics", () => {
  test("frames stream one by one (1920 samples each) and generate() is their concatenation", async () => {
    const c = await e2eCase("short");
    await withTinyModel({ workers: 0 }, async (tts) => {
      const voice = await tts.loadVoice(TINY_VOICE);
      const opts = { voice, eosThreshold: c.eos_threshold, seed: 7 };
      const frames: Float32Array[] = [];
      for await (const f of tts.stream(c.text, opts)) frames.push(f);
      assert.ok(frames.length > 0 && frames.every((f) => f.length === 1920));
      const all = await tts.generate(c.text, opts);
      assert.deepEqual(all, new Float32Array(frames.flatMap((f) => [...f])));
    });
  });

  test("settings: temperature 0 ignores the seed, lsdSteps and maxTokens change what they should", async () => {
    await withTinyModel({ workers: 0 }, async (tts) => {
      const voice = await tts.loadVoice(TINY_VOICE);
      const text = "The weather is lovely today, so we will take a long walk in the park.";
      const cold1 = await tts.generate(text, { voice, temperature: 0, seed: 1 });
      const cold2 = await tts.generate(text, { voice, temperature: 0, seed: 2 });
      assert.deepEqual(cold1, cold2, "temperature 0: x₀ = 0 whatever the seed");
      const warm1 = await tts.generate(text, { voice, seed: 1 });
      const warm2 = await tts.generate(text, { voice, seed: 2 });
      assert.notDeepEqual(warm1, warm2, "different seeds give different speech");
      const lsd2 = await tts.generate(text, { voice, temperature: 0, lsdSteps: 2 });
      assert.notDeepEqual(lsd2, cold1, "two LSD steps decode differently from one");
      const chunks: ChunkReport[] = [];
      await tts.generate(text, { voice, seed: 1, maxTokens: 8, onChunk: (r) => chunks.push(r) });
      assert.ok(chunks.length >= 2, `maxTokens 8 splits the text (got ${chunks.length} chunk)`);
      const fae: ChunkReport[] = [];
      await tts.generate(text, { voice, seed: 1, framesAfterEos: 0, eosThreshold: -1e9, onChunk: (r) => fae.push(r) });
      assert.deepEqual([fae[0].eosStep, fae[0].frames], [0, 0], "EOS at step 0 with no frames after it emits nothing");
    });
  });

  test("a chunk that never reaches EOS emits max_gen_len frames and warns", async () => {
    await withTinyModel({ workers: 0 }, async (tts) => {
      const warnings: string[] = [];
      const audio = await tts.generate("Hi.", { eosThreshold: 1e9, seed: 1, onWarning: (m) => warnings.push(m) });
      // "Hi." → N tokens; max_gen_len = ceil((N/3 + 2)·12.5) frames, all emitted
      const reports: ChunkReport[] = [];
      await tts.generate("Hi.", { eosThreshold: 1e9, seed: 1, onWarning: () => {}, onChunk: (r) => reports.push(r) });
      assert.equal(audio.length, reports[0].maxGenLen * 1920);
      assert.equal(reports[0].maxGenLen, Math.ceil((reports[0].tokens / 3 + 2) * 12.5));
      assert.equal(warnings.length, 1);
      assert.match(warnings[0], /maximum length/);
    });
  });

  test("an aborted stream stops within a frame and the model stays usable", async () => {
    await withTinyModel({ workers: modes.at(-1) }, async (tts) => {
      const ac = new AbortController();
      let frames = 0;
      await assert.rejects(async () => {
        for await (
          const _ of tts.stream("Hi.", { eosThreshold: 1e9, seed: 1, signal: ac.signal, onWarning: () => {} })
        ) {
          if (++frames === 3) ac.abort();
        }
      });
      assert.ok(frames <= 4, `frames after abort: ${frames}`);
      const again = await tts.generate("Hi.", { seed: 3 });
      assert.ok(again.length > 0);
    });
  });

  test("two workers and one thread give bit-identical audio (same seed and variant)", {
    skip: modes.length < 2 ? "no module workers in this runtime" : false,
  }, async () => {
    const out: Float32Array[] = [];
    for (const workers of [0, 2] as const) {
      await withTinyModel({ workers }, async (tts) => {
        const voice = await tts.loadVoice(TINY_VOICE);
        out.push(await tts.generate("Hello there, friend! How are you today?", { voice, seed: 21 }));
      });
    }
    assert.ok(out[0].length > 0);
    assert.deepEqual(out[1], out[0]);
  });

  test("leaving a stream early (break) frees the model for the next request", async () => {
    await withTinyModel({ workers: modes.at(-1) }, async (tts) => {
      let frames = 0;
      for await (const _ of tts.stream("Hi.", { eosThreshold: 1e9, seed: 1, onWarning: () => {} })) {
        if (++frames === 2) break;
      }
      assert.equal(frames, 2);
      const fresh = await tts.generate("Hi.", { seed: 4 });
      const again = await tts.generate("Hi.", { seed: 4 });
      assert.deepEqual(again, fresh);
    });
  });

  test("disposing the model during a stream ends it with an error, never a hang", async () => {
    for (const workers of modes) {
      const tts = await TTSModel.load({ model: TINY_MODEL_DIR, workers });
      let frames = 0;
      await assert.rejects(async () => {
        for await (const _ of tts.stream("Hi.", { eosThreshold: 1e9, seed: 1, onWarning: () => {} })) {
          if (++frames === 2) tts.dispose();
        }
      });
      assert.ok(frames < 20, `frames after dispose: ${frames}`);
      await assert.rejects(tts.generate("Hi."), (e: Error & { code?: string }) => e.code === "disposed");
    }
  });

  for (const workers of modes) {
    test(`concurrent streams are interleaved frame by frame, each equal to its solo audio (workers: ${workers})`, async () => {
      await withTinyModel({ workers }, async (tts) => {
        const voice = await tts.loadVoice(TINY_VOICE);
        const texts = ["Hello there, friend!", "The park is lovely.", "One, two, three, four, five, six."];
        // No EOS: every stream runs its whole budget (≥ 37 frames), so a stream whose setup is slow on a loaded
        // machine still starts long before the others end, and the order check tests the scheduler, not the clock.
        const options = (i: number) => ({ voice, seed: 11 + i, eosThreshold: 1e9, onWarning: () => {} });
        const solo = [];
        for (const [i, text] of texts.entries()) solo.push(await tts.generate(text, options(i)));
        const order: number[] = [];
        const together = await Promise.all(texts.map(async (text, i) => {
          const frames: Float32Array[] = [];
          for await (const f of tts.stream(text, options(i))) {
            frames.push(f);
            order.push(i);
          }
          return frames;
        }));
        for (const [i, frames] of together.entries()) {
          const joined = new Float32Array(frames.length * 1920);
          frames.forEach((f, j) => joined.set(f, j * 1920));
          assert.deepEqual(joined, solo[i]);
        }
        // Interleaved, not queued whole: every stream has its first frame before any stream has its last.
        const firstOfEach = texts.map((_, i) => order.indexOf(i));
        const lastOfAny = Math.min(...texts.map((_, i) => order.lastIndexOf(i)));
        assert.ok(Math.max(...firstOfEach) < lastOfAny, `frame order ${order.join("")}`);
        assert.equal(tts.activeStreams, 0);
      });
    });
  }

  test("bad input gives typed errors", async () => {
    await withTinyModel({ workers: 0 }, async (tts) => {
      await assert.rejects(tts.generate("   "), (e: Error & { code?: string }) => e.code === "empty_text");
      await assert.rejects(tts.loadVoice("alba"), /custom model has no predefined voices/);
      // Bytes that are not a voice file are taken as a recording to clone: junk is an unsupported audio format.
      await assert.rejects(tts.loadVoice(new Uint8Array([1, 2, 3])), (e: Error) => e.name === "UnsupportedAudioError");
      await assert.rejects(tts.generate("Hi.", { temperature: -1 }), /temperature/);
    });
    await assert.rejects(
      TTSModel.load({ model: "/nonexistent/model/dir", workers: 0, offline: true }),
      (e: Error & { code?: string }) => typeof e.code === "string",
    );
  });

  test("hasVoiceCloning: true with encoder weights, false when they are zeroed (as in the ungated release)", async () => {
    const tts = await TTSModel.load({ model: TINY_MODEL_DIR, workers: 0 });
    assert.equal(tts.hasVoiceCloning, true);
    tts.dispose();
    const dir = tempDir("pocket-zeroed-");
    const src = parseSafetensors(readFileSync(join(TINY_MODEL_DIR, "model.safetensors")));
    const entries = [];
    for (const t of src.tensors) {
      const data = (await src.read(t)).slice();
      if (t.name.startsWith("mimi.encoder.")) data.fill(0);
      entries.push({ name: t.name, dtype: t.dtype, shape: t.shape, data });
    }
    writeFileSync(join(dir, "model.safetensors"), serializeSafetensors(entries));
    const config = JSON.parse(readFileSync(join(TINY_MODEL_DIR, "config.json"), "utf8"));
    config.flow_lm.lookup_table.tokenizer_path = join(TINY_MODEL_DIR, config.flow_lm.lookup_table.tokenizer_path);
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    const zeroed = await TTSModel.load({ model: dir, workers: 0 });
    try {
      assert.equal(zeroed.hasVoiceCloning, false);
      assert.ok((await zeroed.generate("Hi.", { seed: 1 })).length > 0, "speech still works without the encoder");
    } finally {
      zeroed.dispose();
    }
  });

  test("a v1.0 audio-prompt voice file speaks like the voice state it prefills to", async () => {
    await withTinyModel({ workers: 0 }, async (tts) => {
      const state = await tts.loadVoice(TINY_VOICE);
      const prompt = await tts.loadVoice(TINY_VOICE.replace("voice_state", "voice_audio_prompt"));
      assert.equal(prompt.positions, state.positions);
      const a = await tts.generate("Hello there, friend!", {
        voice: state,
        seed: 3,
        eosThreshold: 1e9,
        onWarning() {},
      });
      const b = await tts.generate("Hello there, friend!", {
        voice: prompt,
        seed: 3,
        eosThreshold: 1e9,
        onWarning() {},
      });
      assert.equal(b.length, a.length);
      assert.ok(maxRelDiff(b, a) < 1e-3, `audio rel diff ${maxRelDiff(b, a)}`);
    });
  });

  test("exportVoice gives a voice file that loads to the same voice; the same file in every placement", async () => {
    let file: Uint8Array | null = null;
    for (const workers of modes) {
      await withTinyModel({ workers }, async (tts) => {
        const voice = await tts.loadVoice(TINY_VOICE);
        // FlowLM on this thread exports on demand: the voice keeps no copy of its KV state in JS
        assert.equal(voice.state === null, workers === 0);
        const bytes = tts.exportVoice(voice);
        file ??= bytes;
        assert.deepEqual(bytes, file);
        const again = await tts.loadVoice(bytes);
        assert.equal(again.positions, voice.positions);
        assert.deepEqual(tts.exportVoice(again), bytes);
        const a = await tts.generate("Hi there.", { voice, seed: 5 });
        const b = await tts.generate("Hi there.", { voice: again, seed: 5 });
        assert.deepEqual(a, b);
        await tts.freeVoice(again);
        assert.throws(() => tts.exportVoice(again), { code: "invalid_voice" });
      });
    }
  });
});
