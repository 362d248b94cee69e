import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { readFixture, readFixtureJson } from "../support/fixtures.ts";
import { ensureFullWeights, FULL_WEIGHTS_BYTES } from "../support/full_weights.ts";
import { parseConfig } from "../../src/model/config.ts";
import { builtinConfig, builtinLanguageNames } from "../../src/model/builtin_configs.ts";
import { decoderOutputConvName, expectedTensors, validateTensors } from "../../src/model/layout.ts";
import { bf16ToFloat32, openSafetensors, toFloat32 } from "../../src/model/safetensors.ts";
import {
  fnv1a32,
  mulberry32,
  syntheticCheckpoint,
  syntheticInit,
  syntheticTensor,
} from "../../src/model/synthetic_weights.ts";

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

const fullConfig = async () => parseConfig(await readFixtureJson("model/full/config.json"));

describe("synthetic weights (SYNTHETIC-WEIGHTS.md)", () => {
  test("PRNG trace for flow_lm.emb_std (§4)", () => {
    assert.equal(fnv1a32("flow_lm.emb_std"), 0xfc728271);
    const next = mulberry32(0xfc728271);
    assert.deepEqual([next(), next(), next()], [0x41a18465, 0xb9ab1120, 0x0afe1ffa]);
  });

  test("check values of the full config (§4 table): seeds, first values, BF16 bits", async () => {
    const config = await fullConfig();
    const table: [string, number | null, number[], number[] | null][] = [
      ["flow_lm.conditioner.embed.weight", 0x57116808, [0.40234375, 0.0390625, 0.142578125, -0.69921875], [
        0x3ece,
        0x3d20,
        0x3e12,
        0xbf33,
      ]],
      ["flow_lm.transformer.layers.0.self_attn.in_proj.weight", 0x3255324d, [
        0.02197265625,
        0.0267333984375,
        0.0057373046875,
        -0.0341796875,
      ], [0x3cb4, 0x3cdb, 0x3bbc, 0xbd0c]],
      ["flow_lm.flow_net.time_embed.0.freqs", null, [1.0, 0.9296875, 0.8671875, 0.8046875], [
        0x3f80,
        0x3f6e,
        0x3f5e,
        0x3f4e,
      ]],
      ["mimi.decoder.model.0.conv.weight", 0x596a0950, [
        -0.0186767578125,
        -0.02099609375,
        0.0220947265625,
        -0.023193359375,
      ], [0xbc99, 0xbcac, 0x3cb5, 0xbcbe]],
      ["mimi.decoder_transformer.transformer.layers.1.layer_scale_2.scale", 0x167428b0, [
        0.099609375,
        0.1064453125,
        0.099609375,
        0.0966796875,
      ], [0x3dcc, 0x3dda, 0x3dcc, 0x3dc6]],
      ["flow_lm.emb_std", 0xfc728271, [0.953125, 1.046875, 0.91015625, 0.9453125], [0x3f74, 0x3f86, 0x3f69, 0x3f72]],
      [
        "mimi.decoder.model.11.conv.weight",
        null,
        [0.003997802734375, 0.00469970703125, 0.0107421875, 0.00634765625],
        null,
      ],
      ["mimi.upsample.convtr.convtr.weight", null, [-0.2001953125, 1.2265625, -0.796875, -1.1015625], null],
      ["flow_lm.speaker_proj_weight", null, [0.1953125, -0.2373046875, 0.2353515625, 0.10595703125], null],
    ];
    for (const [name, seed, values, bits] of table) {
      if (seed !== null) assert.equal(fnv1a32(name), seed, name);
      const t = syntheticTensor(config, name);
      assert.deepEqual(Array.from(bf16ToFloat32(t.data.subarray(0, 4))), values, name);
      if (bits) assert.deepEqual(Array.from(t.data.subarray(0, 4)), bits, name);
    }
    assert.equal(syntheticTensor(config, "mimi.decoder.model.11.conv.weight").init.rule, 9);
    assert.equal(syntheticTensor(config, "mimi.upsample.convtr.convtr.weight").tensor.fanIn, 2);
    assert.equal(syntheticTensor(config, "flow_lm.speaker_proj_weight").tensor.fanIn, 32);
  });

  test("the tiny checkpoint is reproduced bit for bit", async () => {
    const config = parseConfig(await readFixtureJson("model/tiny/config.json"));
    const bytes = syntheticCheckpoint(config);
    assert.equal(bytes.length, 1_428_100);
    assert.equal(await sha256Hex(bytes), "ea2a6adde9a0cd78c018967d3286705664129ec13e442b692f35eef0807504d8");
    assert.deepEqual(bytes, await readFixture("model/tiny/model.safetensors"));
  });

  test("the full-size checkpoint: generated on demand, sha256 as recorded, loads and validates", async () => {
    const path = await ensureFullWeights(); // throws unless sha256 = 022694d1…6759
    const config = await fullConfig();
    const st = await openSafetensors(path);
    try {
      assert.equal(st.header.byteLength, FULL_WEIGHTS_BYTES);
      assert.equal(st.tensors.length, 214);
      assert.equal(st.header.headerLength, 24_896);
      validateTensors(config, st.tensors, path);
      let params = 0;
      let sum = 0;
      for await (const { info, bytes } of st.entries()) {
        const f = toFloat32({ dtype: info.dtype, bytes });
        params += f.length;
        if (info.name === "flow_lm.emb_std") sum = f.reduce((a, b) => a + b, 0);
      }
      assert.equal(params, 109_502_146);
      assert.ok(Math.abs(sum / 32 - 1) < 0.05, `emb_std mean ${sum / 32}`); // rule 3: 1 ± 0.1
    } finally {
      await st.close();
    }
  });

  // The golden generator is a reference to compare against, never a dependency: when the shared golden folder is
  // present, its tensor inventory and scale rules must agree with ours for every published config, not only for the
  // two configs whose file hashes are recorded.
  const reference = "/work/shared/golden/tools/synth-weights.mjs";
  test("agrees with the golden generator's inventory and rules for every published config", {
    skip: existsSync(reference) ? false : "golden tools not present",
  }, async () => {
    const ref = await import(pathToFileURL(reference).href);
    const configs = [...builtinLanguageNames().map((n) => builtinConfig(n)), await fullConfig()];
    for (const config of configs) {
      const ours = expectedTensors(config);
      const theirs = ref.tensorSpecs(config) as {
        name: string;
        shape: number[];
        init: { kind: string; center?: number; halfwidth?: number };
      }[];
      assert.deepEqual(ours.map((t) => [t.name, [...t.shape]]), theirs.map((t) => [t.name, t.shape]));
      const outputConv = decoderOutputConvName(config);
      for (let i = 0; i < ours.length; i++) {
        const a = syntheticInit(ours[i], outputConv);
        const b = theirs[i].init;
        assert.equal(a.kind, b.kind, ours[i].name);
        if (a.kind === "uniform") {
          assert.equal(a.center, b.center, ours[i].name);
          assert.ok(Math.abs(a.halfwidth - b.halfwidth!) <= 1e-15 * a.halfwidth, ours[i].name);
        }
      }
    }
  });
});
