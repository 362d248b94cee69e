// The Mimi decoder against upstream's golden streaming decode (golden README §3(c)): every intermediate of frames
// 0 and 1 and every frame's audio within relative 1e-5 (README §4), for the tiny (24 frames) and full-size (8 frames)
// synthetic checkpoints, in each wasm variant this runtime runs. Also: several frames per call equal frame by frame,
// reset replays the stream exactly, and steady-state decoding does not grow wasm memory.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { maxRelDiff, testVariants } from "../support/core.ts";
import { MimiDecoder } from "../../src/runtime/mimi_decoder.ts";
import type { SimdVariant } from "../../src/runtime/wasm.ts";
import { decoderCore, goldenCase, type ModelSize, transpose } from "./support.ts";

const TOL = 1e-5;

/** Decodes the golden latents frame by frame with taps on; checks intermediates as it goes. */
async function setup(size: ModelSize, variant: SimdVariant) {
  const { core, config, mean, std } = await decoderCore(size, variant);
  const golden = await goldenCase(size);
  const latentNorm = await golden.float32("latent_norm");
  const audio = await golden.float32("audio");
  const decoder = MimiDecoder.create(core, config, { latentStats: { mean, std } });
  const frames = latentNorm.length / decoder.latentDim;
  const fs = decoder.frameSamples;
  const tapDiffs = new Map<string, number>();
  const state = decoder.createState();
  state.setTaps(true);
  const streamed = new Float32Array(frames * fs);
  for (let f = 0; f < frames; f++) {
    streamed.set(state.decode(latentNorm.subarray(f * 32, (f + 1) * 32)), f * fs);
    if (f < 2) {
      for (const name of decoder.tapNames) {
        const tap = state.tap(name)!;
        const want = await golden.float32(`f${f}.${name}`);
        tapDiffs.set(`f${f}.${name}`, maxRelDiff(transpose(tap.data, tap.rows, tap.channels), want));
      }
    }
  }
  state.setTaps(false);
  await golden.close();
  return { core, decoder, state, latentNorm, audio, streamed, frames, fs, tapDiffs };
}

for (const size of ["tiny", "full"] as const) {
  for (const variant of testVariants) {
    describe(`Mimi decoder, ${size} golden (${variant})`, () => {
      let ready: ReturnType<typeof setup> | null = null;
      const ctx = () => ready ??= setup(size, variant);

      test("every intermediate of frames 0 and 1 within rel 1e-5", async () => {
        const { tapDiffs, decoder } = await ctx();
        assert.equal(tapDiffs.size, 2 * decoder.tapNames.length);
        // quantizer_in, quantizer_out, upsample_out, 2 transformer layers + output, 8 SEANet modules
        assert.equal(decoder.tapNames.length, 14);
        const bad = [...tapDiffs].filter(([, d]) => !(d < TOL));
        assert.deepEqual(bad, [], `over tolerance: ${JSON.stringify(bad)}`);
      });

      test("every frame's audio within rel 1e-5 (frame by frame)", async () => {
        const { streamed, audio, frames, fs } = await ctx();
        for (let f = 0; f < frames; f++) {
          const d = maxRelDiff(streamed.subarray(f * fs, (f + 1) * fs), audio.subarray(f * fs, (f + 1) * fs));
          assert.ok(d < TOL, `frame ${f}: rel ${d}`);
        }
      });

      test("all frames in one call equal frame by frame", async () => {
        const { decoder, latentNorm, streamed, frames } = await ctx();
        const all = decoder.createState({ maxFrames: frames });
        const out = all.decode(latentNorm);
        assert.equal(all.position, 16 * frames);
        all.free();
        assert.ok(maxRelDiff(out, streamed) < 1e-6, `rel ${maxRelDiff(out, streamed)}`);
      });

      test("reset replays the stream exactly; steady state does not grow wasm memory", async () => {
        const { core, state, latentNorm, streamed, frames, fs } = await ctx();
        state.reset();
        assert.equal(state.position, 0);
        const out = new Float32Array(frames * fs);
        const frame = (f: number) => state.decodeInto(latentNorm.subarray(f * 32, (f + 1) * 32), out.subarray(f * fs));
        frame(0);
        const bytes = core.memoryBytes;
        for (let f = 1; f < frames; f++) frame(f);
        assert.equal(core.memoryBytes, bytes, "wasm memory grew while decoding");
        assert.deepEqual(out, streamed);
      });
    });
  }
}

describe("Mimi decoder, de-normalised input", () => {
  test("tiny: golden `latent` decoded without latent stats matches the golden audio", async () => {
    const { core, config } = await decoderCore("tiny", testVariants[0]);
    const golden = await goldenCase("tiny");
    const latent = await golden.float32("latent"), audio = await golden.float32("audio");
    await golden.close();
    const decoder = MimiDecoder.create(core, config);
    assert.equal(decoder.normalisedInput, false);
    const state = decoder.createState({ maxFrames: 4 });
    const out = state.decode(latent);
    decoder.free();
    assert.ok(maxRelDiff(out, audio) < TOL, `rel ${maxRelDiff(out, audio)}`);
  });
});
