// The Mimi decoder split between the two workers (design (a) of issue #14): the FlowLM worker runs the decoder's
// first stages, the other worker the rest, each holding only its stages' weights and each stream's state for them.
// Audio must equal one thread's bit for bit for every cut, interleaved streams must equal their solo audio, and an
// abort or dispose mid-pipeline must leave no stream state behind. Tiny model everywhere; the full-size synthetic
// checkpoint where its shape matters (its plan, and one short e2e run).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { TTSModel } from "../../mod.ts";
import { resolveModel } from "../../src/model/assets.ts";
import { createServices, workersAvailable } from "../../src/generate/create_services.ts";
import { chooseMimiSplit, sharedStage, SwingBalance } from "../../src/generate/mimi_split.ts";
import { MimiDecoder, mimiDecoderPlan } from "../../src/runtime/mimi_decoder.ts";
import { maxGenLen } from "../../src/runtime/flow_lm.ts";
import { TINY_MODEL_DIR, TINY_VOICE, withTinyModel } from "../support/tiny_model.ts";
import { decoderCore, goldenCase, type ModelSize } from "../mimi/support.ts";
import { fullSizeFrames } from "../support/full_weights.ts";

const skip = workersAvailable() ? false : "no workers in this runtime";
const TEXT = "Hello there, friend! How are you today?";

/** The tiny model's plan (stage names, costs) from a local core. */
async function plan(size: ModelSize) {
  const { core, config } = await decoderCore(size, "baseline");
  return mimiDecoderPlan(core, config);
}

describe("Mimi decoder stages (wasm)", () => {
  for (const size of ["tiny", "full"] as const) {
    test(`${size}: parts chained over every cut equal the whole decoder bit for bit`, async () => {
      const golden = await goldenCase(size);
      const latents = await golden.float32("latent_norm");
      await golden.close();
      const whole = await decoderCore(size, "baseline");
      const stages = mimiDecoderPlan(whole.core, whole.config);
      assert.equal(stages[0].name, "input");
      assert.match(stages.at(-1)!.name, /^seanet\.\d+\.last$/);
      const n = whole.config.mimi.transformer.num_layers;
      assert.equal(stages.filter((s) => s.name.startsWith("transformer.")).length, 2 * n, "two halves per layer");
      const stats = { mean: whole.mean, std: whole.std };
      const dec = MimiDecoder.create(whole.core, whole.config, { latentStats: stats });
      const frames = size === "full" ? 3 : 8;
      const want = dec.createState().decode(latents.subarray(0, frames * dec.latentDim));
      assert.equal(want.length, frames * 1920);
      // Full size: a few cuts (each builds a core with the decoder's weights); tiny: every cut.
      const cuts = size === "full" ? [1, 5, stages.length - 1] : stages.map((_, i) => i).slice(1);
      for (const cut of cuts) {
        const { core, config, mean, std } = await decoderCore(size, "baseline");
        const front = MimiDecoder.create(core, config, { latentStats: { mean, std }, stages: { from: 0, to: cut } });
        const back = MimiDecoder.create(core, config, { stages: { from: cut, to: stages.length } });
        assert.equal(front.frameSamples, stages[cut - 1].outLen);
        assert.equal(back.inLen, front.frameSamples);
        assert.equal(front.weightBytes + back.weightBytes, dec.weightBytes, `cut ${cut}: each weight once`);
        assert.equal(front.macsPerFrame + back.macsPerFrame, dec.macsPerFrame);
        const [fs, bs] = [front.createState(), back.createState()];
        const got = new Float32Array(frames * 1920);
        for (let f = 0; f < frames; f++) {
          const act = fs.decode(latents.subarray(f * dec.latentDim, (f + 1) * dec.latentDim));
          got.set(bs.decode(act), f * 1920);
        }
        assert.deepEqual(got, want, `cut ${cut} (${stages[cut - 1].name} | ${stages[cut].name})`);
        front.free();
        back.free();
      }
      dec.free();
    });
  }

  test("the cut balances the step against the decoder: a heavier step moves stages to the other worker", async () => {
    const stages = await plan("full");
    const none = chooseMimiSplit(stages, 0);
    const bf16 = chooseMimiSplit(stages, 151e6);
    const int8 = chooseMimiSplit(stages, 76e6);
    assert.ok(none > int8 && int8 > bf16, `cuts: no step ${none}, int8 ${int8}, bf16 ${bf16}`);
    assert.equal(chooseMimiSplit(stages, 1e12), 0, "a step heavier than the whole decoder: no split");
    assert.ok(none < stages.length, "the second worker always runs the last stage");
  });
});

describe("the stage both workers hold", () => {
  test("is a feed-forward half at the cut or just before it, never the first or last stage", async () => {
    const stages = await plan("full");
    const ff = stages.findIndex((s) => s.name === "transformer.1.ff");
    assert.equal(sharedStage(stages, ff), ff, "the stage at the cut");
    assert.equal(sharedStage(stages, ff + 1), ff, "the stage before the cut");
    assert.equal(sharedStage(stages, ff - 1), ff - 2, "transformer.0.ff, before an attention half");
    assert.equal(sharedStage(stages, 0), null, "no cut: the whole decoder in the second worker");
    const seanet = stages.findIndex((s) => s.name.startsWith("seanet."));
    assert.equal(sharedStage(stages, seanet + 2), null, "SEANet's stages carry state");
  });

  test("runs where the busy time is lower: the share moves toward the less busy worker and stays spread", () => {
    const b = new SwingBalance();
    const picks = Array.from({ length: 8 }, () => b.next());
    assert.deepEqual(picks, [false, true, false, true, false, true, false, true], "half and half at first");
    // The FlowLM worker busier: its share falls window by window, to 0 at the end.
    let busy = [0, 0];
    for (let f = 0; f < 80; f++) {
      busy = [busy[0] + 12, busy[1] + 10];
      b.served(0, busy[0]);
      b.served(1, busy[1]);
      b.frame();
    }
    assert.equal(b.share, 0);
    assert.ok(Array.from({ length: 16 }, () => b.next()).every((x) => !x));
    // Then the other one busier: the share comes back up; equal times (within 3 %) leave it where it is.
    for (let f = 0; f < 24; f++) {
      busy = [busy[0] + 10, busy[1] + 12];
      b.served(0, busy[0]);
      b.served(1, busy[1]);
      b.frame();
    }
    const share = b.share;
    assert.ok(share > 0 && share < 1, `share ${share}`);
    for (let f = 0; f < 24; f++) {
      busy = [busy[0] + 10, busy[1] + 10.2];
      b.served(0, busy[0]);
      b.served(1, busy[1]);
      b.frame();
    }
    assert.equal(b.share, share);
  });
});

describe("two workers with a split decoder", { skip }, () => {
  test("every cut gives one thread's audio bit for bit (tiny)", async () => {
    const single = await withTinyModel({ workers: 0 }, async (tts) => {
      return await tts.generate(TEXT, { voice: await tts.loadVoice(TINY_VOICE), seed: 21 });
    });
    const n = (await plan("tiny")).length;
    for (const mimiSplit of [0, 1, 3, 5, 6, n - 1]) {
      const audio = await withTinyModel({ workers: 2, mimiSplit }, async (tts) => {
        return await tts.generate(TEXT, { voice: await tts.loadVoice(TINY_VOICE), seed: 21 });
      });
      assert.deepEqual(audio, single, `mimiSplit ${mimiSplit}`);
    }
    await assert.rejects(
      TTSModel.load({ model: TINY_MODEL_DIR, workers: 2, mimiSplit: n }),
      (e: Error) => e.name === "ConfigError" && /mimiSplit/.test(e.message),
    );
  });

  test("each worker holds only its stages: weights once, a state per stream in each part, freed on close", async () => {
    const model = await resolveModel({ model: TINY_MODEL_DIR }, { cache: null, offline: true });
    const local = await createServices(model, { workers: false, simd: "baseline" });
    const [whole] = await local.mimi.parts();
    await local.flow.dispose();
    await local.mimi.dispose();
    const n = (await plan("tiny")).length;
    const auto = await createServices(model, { workers: true, simd: "baseline" });
    const cut = (await auto.mimi.parts())[0].stages.to;
    assert.ok(cut > 0 && cut < n, `the automatic cut splits the tiny decoder (cut ${cut} of ${n})`);
    await Promise.all([auto.flow.dispose(), auto.mimi.dispose()]);
    const { flow, mimi } = await createServices(model, { workers: true, simd: "baseline", mimiSplit: 4 });
    try {
      const [a, b] = await Promise.all([mimi.openStream(), mimi.openStream()]);
      const parts = await mimi.parts();
      assert.deepEqual(parts.map((p) => p.stages), [{ from: 0, to: 4 }, { from: 4, to: n }]);
      assert.deepEqual(parts.map((p) => p.streams), [2, 2]);
      assert.equal(parts[0].weightBytes + parts[1].weightBytes, whole.weightBytes, "every weight in one worker");
      assert.ok(parts.every((p) => p.weightBytes > 0 && p.weightBytes < whole.weightBytes));
      assert.ok(parts.every((p) => p.stateBytes > 0));
      // Decoding works stream by stream; closing frees each part's state.
      const latent = new Float32Array(model.config.mimi.quantizer.dimension).fill(0.1);
      const [fa, fb] = await Promise.all([mimi.decode(a, latent.slice()), mimi.decode(b, latent.slice())]);
      assert.deepEqual(fa, fb);
      await mimi.closeStream(a);
      await mimi.closeStream(b);
      assert.deepEqual((await mimi.parts()).map((p) => [p.streams, p.stateBytes]), [[0, 0], [0, 0]]);
      await assert.rejects(mimi.decode(a, latent), (e: Error & { code?: string }) => e.code === "stream_closed");
    } finally {
      await flow.dispose();
      await mimi.dispose();
    }
  });

  test("a stage held by both workers: frames in either equal the whole decoder, in order, and close frees both", async () => {
    const model = await resolveModel({ model: TINY_MODEL_DIR }, { cache: null, offline: true });
    const ld = model.config.mimi.quantizer.dimension;
    const latents = Array.from({ length: 12 }, (_, i) => new Float32Array(ld).map((_, j) => Math.cos(i * 5 + j)));
    const local = await createServices(model, { workers: false, simd: "baseline" });
    const ls = await local.mimi.openStream();
    const want: Float32Array[] = [];
    for (const l of latents) want.push(await local.mimi.decode(ls, l.slice()));
    await local.mimi.dispose();
    await local.flow.dispose();
    const n = (await plan("tiny")).length;
    const { flow, mimi } = await createServices(model, {
      workers: true,
      simd: "baseline",
      mimiSplit: 4,
      shareStage: true,
    });
    try {
      const s = await mimi.openStream();
      const parts = await mimi.parts();
      assert.deepEqual(parts.map((p) => p.stages), [{ from: 0, to: 4 }, { from: 4, to: 5 }, { from: 4, to: 5 }, {
        from: 5,
        to: n,
      }]);
      assert.deepEqual(parts.map((p) => p.streams), [1, 1, 1, 1]);
      // All in flight at once, then a reset: frames alternate between the two copies and still come out in order.
      const got = latents.map((l) => mimi.decode(s, l.slice()));
      const reset = mimi.reset(s);
      assert.deepEqual(await Promise.all(got), want);
      await reset;
      for (const [i, l] of latents.entries()) assert.deepEqual(await mimi.decode(s, l.slice()), want[i], `frame ${i}`);
      await mimi.closeStream(s);
      assert.deepEqual((await mimi.parts()).map((p) => [p.streams, p.stateBytes]), [[0, 0], [0, 0], [0, 0], [0, 0]]);
    } finally {
      await flow.dispose();
      await mimi.dispose();
    }
  });

  test("decodeStep: the first stages take the step's latent in its worker; a cancelled frame never goes on", async () => {
    const model = await resolveModel({ model: TINY_MODEL_DIR }, { cache: null, offline: true });
    const ids = [3, 17, 42, 5, 99, 7];
    const x0 = (i: number) => new Float32Array(32).map((_, j) => Math.sin(i * 32 + j) * 0.7);
    // One thread: the latents and frames of 4 steps.
    const local = await createServices(model, { workers: false, simd: "baseline" });
    const [lv, lf, lm] = [await local.flow.emptyVoice(), await local.flow.openStream(), await local.mimi.openStream()];
    await local.flow.beginChunk(lf, lv.id, ids, maxGenLen(ids.length), x0(0));
    const want: Float32Array[] = [];
    let input: Float32Array | null = null;
    for (let i = 1; i <= 4; i++) {
      input = (await local.flow.step(lf, input, x0(i), 1)).latent;
      want.push(await local.mimi.decode(lm, input.slice()));
    }
    await local.mimi.dispose();
    await local.flow.dispose();
    assert.equal(local.mimi.decodeStep, undefined, "one thread decodes the latent it is given");
    const whole = await createServices(model, { workers: true, simd: "baseline", mimiSplit: 0 });
    assert.equal(whole.mimi.decodeStep, undefined, "whole decoder in the other worker: none");
    await Promise.all([whole.flow.dispose(), whole.mimi.dispose()]);

    for (const split of [{ mimiSplit: 3 }, { mimiSplit: 4, shareStage: true }]) {
      const { flow, mimi } = await createServices(model, { workers: true, simd: "baseline", ...split });
      try {
        const [v, f, m] = [await flow.emptyVoice(), await flow.openStream(), await mimi.openStream()];
        const chunk = async (steps: number, last: "commit" | "cancel") => {
          await Promise.all([flow.beginChunk(f, v.id, ids, maxGenLen(ids.length), x0(0)), mimi.reset(m)]);
          const got: Promise<Float32Array>[] = [];
          let input: Float32Array | null = null;
          for (let i = 1; i <= steps; i++) {
            const stepped = flow.step(f, input, x0(i), 1);
            const ahead = mimi.decodeStep!(m, f);
            input = (await stepped).latent;
            if (i < steps || last === "commit") {
              ahead.commit();
              got.push(ahead.frame);
            } else {
              ahead.cancel();
              await assert.rejects(ahead.frame, (e: Error) => e.name === "PocketTtsError");
            }
          }
          return Promise.all(got);
        };
        // The last step ends the chunk: its frame stops after the first stages; the next chunk starts fresh.
        assert.deepEqual(await chunk(4, "cancel"), want.slice(0, 3), `${JSON.stringify(split)}: committed frames`);
        assert.deepEqual(await chunk(4, "commit"), want, `${JSON.stringify(split)}: after a cancelled frame and reset`);
        // A step that fails leaves no latent behind: the decode after it rejects instead of decoding an old one.
        const stepped = flow.step(f, null, new Float32Array(3), 1);
        const ahead = mimi.decodeStep!(m, f);
        ahead.commit();
        await assert.rejects(stepped);
        await assert.rejects(ahead.frame, /no step latent/);
        await mimi.closeStream(m);
        await flow.closeStream(f);
        assert.deepEqual((await mimi.parts()).map((p) => p.streams), (await mimi.parts()).map(() => 0));
      } finally {
        await flow.dispose();
        await mimi.dispose();
      }
    }
  });

  test("interleaved streams equal their solo audio with the automatic cut", async () => {
    await withTinyModel({ workers: 2 }, async (tts) => {
      const voice = await tts.loadVoice(TINY_VOICE);
      const texts = ["Hello there, friend!", "The park is lovely.", "One, two, three."];
      const options = (i: number) => ({ voice, seed: 31 + i, eosThreshold: 1e9, onWarning: () => {} });
      const solo: Float32Array[] = [];
      for (const [i, text] of texts.entries()) solo.push(await tts.generate(text, options(i)));
      const together = await Promise.all(texts.map((text, i) => tts.generate(text, options(i))));
      together.forEach((audio, i) => assert.deepEqual(audio, solo[i], `stream ${i}`));
    });
  });

  test("calls made mid-pipeline keep their order: reset and close never overtake a frame; dispose rejects", async () => {
    const model = await resolveModel({ model: TINY_MODEL_DIR }, { cache: null, offline: true });
    const ld = model.config.mimi.quantizer.dimension;
    const latents = Array.from({ length: 5 }, (_, i) => new Float32Array(ld).map((_, j) => Math.sin(i * 7 + j)));
    const local = await createServices(model, { workers: false, simd: "baseline" });
    const ls = await local.mimi.openStream();
    const want: Float32Array[] = [];
    for (const l of latents) want.push(await local.mimi.decode(ls, l.slice()));
    await local.mimi.dispose();
    await local.flow.dispose();
    const { flow, mimi } = await createServices(model, { workers: true, simd: "baseline", mimiSplit: 3 });
    try {
      const s = await mimi.openStream();
      for (let round = 0; round < 2; round++) {
        // Five frames in flight, then a reset, all without waiting: every frame is decoded before the reset.
        const got = latents.map((l) => mimi.decode(s, l.slice()));
        const reset = mimi.reset(s);
        assert.deepEqual(await Promise.all(got), want, `round ${round}`);
        await reset;
      }
      const got = latents.map((l) => mimi.decode(s, l.slice()));
      const closed = mimi.closeStream(s);
      assert.deepEqual(await Promise.all(got), want, "frames in flight finish before the close");
      await closed;
      assert.deepEqual((await mimi.parts()).map((p) => p.streams), [0, 0], "nothing left open in either worker");
      // Disposing with frames in flight rejects them (never a hang).
      const t = await mimi.openStream();
      const pending = Promise.allSettled(latents.map((l) => mimi.decode(t, l.slice())));
      await Promise.all([flow.dispose(), mimi.dispose()]);
      const settled = await pending;
      assert.ok(settled.some((r) => r.status === "rejected"), "frames after the dispose are rejected");
      for (const r of settled) {
        if (r.status === "rejected") assert.equal((r.reason as { code?: string }).code, "disposed");
      }
    } finally {
      await flow.dispose();
      await mimi.dispose();
    }
  });

  test("an abort mid-pipeline stops the stream and the next request is unaffected", async () => {
    await withTinyModel({ workers: 2, mimiSplit: 3 }, async (tts) => {
      const fresh = await tts.generate("Hi.", { seed: 4 });
      const ac = new AbortController();
      let frames = 0;
      await assert.rejects(async () => {
        for await (const _ of tts.stream("Hi.", { eosThreshold: 1e9, seed: 1, signal: ac.signal, onWarning() {} })) {
          if (++frames === 2) ac.abort();
        }
      });
      assert.ok(frames <= 4, `frames after abort: ${frames}`);
      for await (const _ of tts.stream("Hi there.", { eosThreshold: 1e9, seed: 1, onWarning() {} })) break;
      assert.equal(tts.activeStreams, 0);
      assert.deepEqual(await tts.generate("Hi.", { seed: 4 }), fresh);
    });
  });

  test("full-size checkpoint: the automatic split gives one thread's first frames bit for bit", async () => {
    const frames = async (workers: 0 | 2) => (await fullSizeFrames("Hello there.", { workers })).frames;
    const one = await frames(0);
    assert.deepEqual(await frames(2), one);
  });
});
