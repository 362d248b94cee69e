// The Mimi decoder's failure modes: bad configs, weights that do not fit, bad arguments and freed handles all give
// typed errors (never a wasm trap), and the core keeps working afterwards.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { freshCore, maxRelDiff, testVariants } from "../support/core.ts";
import { ConfigError, WasmCoreError } from "../../src/errors.ts";
import type { PocketTtsConfig } from "../../src/model/config.ts";
import { MimiDecoder, mimiDecoderParams } from "../../src/runtime/mimi_decoder.ts";
import { decoderCore, goldenCase, modelConfig } from "./support.ts";

const variant = testVariants[testVariants.length - 1];

/** A deep copy of `config` with `edit` applied (bypassing config validation, as a hand-made object would). */
function edited(config: PocketTtsConfig, edit: (c: PocketTtsConfig) => void): PocketTtsConfig {
  const c = structuredClone(config);
  edit(c);
  return c;
}

const isCoreError = (pattern: RegExp) => (e: unknown) =>
  e instanceof WasmCoreError && e.code === "wasm_call" && pattern.test(e.message);

describe(`Mimi decoder errors (${variant})`, () => {
  test("an empty weight store names the first missing tensor", async () => {
    const core = await freshCore(variant);
    const tiny = await modelConfig("tiny");
    assert.throws(
      () => MimiDecoder.create(core, tiny),
      isCoreError(/missing tensor 'mimi\.quantizer\.output_proj\.weight' \(expected shape \[64, 32, 1\]\)/),
    );
  });

  test("weights of another size name the tensor and both shapes", async () => {
    const { core } = await decoderCore("tiny", variant);
    const full = await modelConfig("full");
    assert.throws(
      () => MimiDecoder.create(core, full),
      isCoreError(/'mimi\.quantizer\.output_proj\.weight' has shape \[64, 32, 1\], expected \[512, 32, 1\]/),
    );
  });

  test("unsupported configs are ConfigErrors naming the key", async () => {
    const tiny = await modelConfig("tiny");
    const reflect = edited(tiny, (c) => c.mimi.seanet.pad_mode = "reflect");
    assert.throws(
      () => mimiDecoderParams(reflect),
      (e) => e instanceof ConfigError && e.key === "mimi.seanet.pad_mode",
    );
    const proj = edited(tiny, (c) => c.mimi.transformer.input_dimension = 32);
    assert.throws(() => mimiDecoderParams(proj), ConfigError);
    const rate = edited(tiny, (c) => c.mimi.frame_rate = 7);
    assert.throws(() => mimiDecoderParams(rate), (e) => e instanceof ConfigError && e.key === "mimi.frame_rate");
  });

  test("parameters the core rejects are typed errors, and the core keeps working", async () => {
    const { core, config } = await decoderCore("tiny", variant);
    const cases: [(c: PocketTtsConfig) => void, RegExp][] = [
      [(c) => c.mimi.transformer.num_heads = 3, /must split into 3 heads/],
      [(c) => c.mimi.transformer.context = 0, /context/],
      [(c) => c.mimi.seanet.ratios = [], /ratios/],
      [
        (c) => c.mimi.seanet.n_filters = 4,
        /'mimi\.decoder\.model\.0\.conv\.weight' has shape \[64, 64, 7\], expected \[32, 64, 7\]/,
      ],
      [
        (c) => c.mimi.transformer.dim_feedforward = 256,
        /'mimi\.decoder_transformer\.transformer\.layers\.0\.linear1\.weight'/,
      ],
      [(c) => {
        const big = 1 << 20;
        c.mimi.transformer.d_model = c.mimi.transformer.input_dimension = c.mimi.seanet.dimension = big;
        c.mimi.transformer.output_dimensions = [big];
        c.mimi.outer_dim = c.mimi.quantizer.output_dimension = big;
      }, /too large/],
    ];
    for (const [edit, pattern] of cases) {
      assert.throws(() => MimiDecoder.create(core, edited(config, edit)), isCoreError(pattern), String(pattern));
    }
    // The rejected calls took nothing from the store: the real decoder still builds and decodes.
    const golden = await goldenCase("tiny");
    const latent = await golden.float32("latent"), audio = await golden.float32("audio");
    await golden.close();
    const state = MimiDecoder.create(core, config).createState();
    const out = state.decode(latent.subarray(0, 64));
    assert.ok(maxRelDiff(out, audio.subarray(0, 2 * 1920)) < 1e-5);
  });

  test("bad arguments and freed handles are typed errors", async () => {
    const { core, config, mean } = await decoderCore("tiny", variant);
    assert.throws(
      () => MimiDecoder.create(core, config, { latentStats: { mean, std: new Float32Array(3) } }),
      isCoreError(/latentStats need 32 values/),
    );
    const decoder = MimiDecoder.create(core, config); // the rejected call above took nothing
    assert.throws(() => decoder.createState({ maxFrames: 0 }), isCoreError(/maxFrames/));
    assert.throws(() => decoder.createState({ maxFrames: 1.5 }), isCoreError(/maxFrames/));
    const state = decoder.createState({ maxFrames: 2 });
    assert.throws(() => state.decode(new Float32Array(33)), isCoreError(/not a multiple of 32/));
    assert.throws(() => state.decodeInto(new Float32Array(64), new Float32Array(100)), isCoreError(/too short/));
    assert.equal(state.decode(new Float32Array(0)).length, 0);
    assert.equal(state.tap("quantizer_out"), undefined, "taps are off by default");
    const other = decoder.createState();
    other.free();
    assert.throws(() => other.decode(new Float32Array(32)), isCoreError(/state has been freed/));
    decoder.free(); // frees `state` too
    assert.throws(() => state.reset(), isCoreError(/state has been freed/));
    assert.throws(() => decoder.createState(), isCoreError(/decoder has been freed/));
    decoder.free(); // idempotent
  });
});
