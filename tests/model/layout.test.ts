import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFixture, readFixtureJson } from "../support/fixtures.ts";
import { parseConfig } from "../../src/model/config.ts";
import { builtinConfig, builtinLanguageNames } from "../../src/model/builtin_configs.ts";
import {
  checkTensors,
  decoderOutputConvName,
  expectedTensors,
  parameterCount,
  validateTensors,
} from "../../src/model/layout.ts";
import { parseSafetensors, planSafetensors } from "../../src/model/safetensors.ts";
import { InvalidWeightsError } from "../../src/errors.ts";
import { corruptVariants } from "./corrupt_variants.ts";

const shapeOf = (c: ReturnType<typeof parseConfig>, name: string) =>
  expectedTensors(c).find((t) => t.name === name)?.shape;

describe("tensor layout implied by a config", () => {
  test("matches the golden tiny checkpoint exactly (150 tensors, strict)", async () => {
    const config = parseConfig(await readFixtureJson("model/tiny/config.json"));
    const st = parseSafetensors(await readFixture("model/tiny/model.safetensors"));
    assert.deepEqual(checkTensors(config, st.tensors), []);
    assert.equal(expectedTensors(config).length, 150);
    assert.equal(parameterCount(config), 705_770);
    validateTensors(config, st.tensors);
  });

  test("published models: tensor counts, parameters, file sizes and shapes from spec §1.6 and §6", () => {
    for (const name of builtinLanguageNames()) {
      const c = builtinConfig(name);
      const n = expectedTensors(c).length;
      const plan = planSafetensors(
        expectedTensors(c).map((t) => ({ name: t.name, dtype: "BF16" as const, shape: t.shape })),
      );
      if (name === "english_2026-01") {
        assert.equal(n, 213);
        assert.equal(plan.byteLength, 235_738_732); // the released tts_b6369a24.safetensors
      } else if (name.endsWith("_24l")) {
        assert.equal(n, 214 + 18 * 8);
        assert.ok(Math.abs(plan.byteLength - 672e6) < 1e6, `${name}: ${plan.byteLength}`); // "about 672 MB"
      } else {
        assert.equal(n, 214);
        assert.equal(parameterCount(c), 109_502_146);
        assert.equal(plan.byteLength, 219_029_196); // languages/english/model.safetensors
        assert.equal(plan.head.length - 8, 24_896); // its JSON header
      }
    }
    const en = builtinConfig("english");
    assert.deepEqual(shapeOf(en, "flow_lm.conditioner.embed.weight"), [4001, 1024]);
    assert.deepEqual(shapeOf(en, "flow_lm.bos_before_voice"), [1, 1, 1024]);
    assert.deepEqual(shapeOf(en, "flow_lm.speaker_proj_weight"), [1024, 32]);
    assert.deepEqual(shapeOf(en, "flow_lm.out_eos.weight"), [1, 1024]);
    assert.deepEqual(shapeOf(en, "flow_lm.transformer.layers.5.self_attn.in_proj.weight"), [3072, 1024]);
    assert.deepEqual(shapeOf(en, "flow_lm.flow_net.res_blocks.5.adaLN_modulation.1.weight"), [1536, 512]);
    assert.deepEqual(shapeOf(en, "flow_lm.flow_net.final_layer.adaLN_modulation.1.weight"), [1024, 512]);
    assert.deepEqual(shapeOf(en, "flow_lm.flow_net.time_embed.1.mlp.0.weight"), [512, 256]);
    assert.deepEqual(shapeOf(en, "mimi.quantizer.output_proj.weight"), [512, 32, 1]);
    assert.deepEqual(shapeOf(en, "mimi.upsample.convtr.convtr.weight"), [512, 1, 32]);
    assert.deepEqual(shapeOf(en, "mimi.downsample.conv.conv.weight"), [32, 512, 32]);
    assert.deepEqual(shapeOf(en, "mimi.decoder.model.0.conv.weight"), [512, 512, 7]);
    assert.deepEqual(shapeOf(en, "mimi.decoder.model.2.convtr.weight"), [512, 256, 12]);
    assert.deepEqual(shapeOf(en, "mimi.decoder.model.3.block.1.conv.weight"), [128, 256, 3]);
    assert.deepEqual(shapeOf(en, "mimi.decoder.model.8.convtr.weight"), [128, 64, 8]);
    assert.deepEqual(shapeOf(en, "mimi.decoder.model.11.conv.weight"), [1, 64, 3]);
    assert.deepEqual(shapeOf(en, "mimi.encoder.model.3.conv.weight"), [128, 64, 8]);
    assert.deepEqual(shapeOf(en, "mimi.encoder.model.9.conv.weight"), [512, 256, 12]);
    assert.deepEqual(shapeOf(en, "mimi.encoder.model.11.conv.weight"), [512, 512, 3]);
    assert.deepEqual(shapeOf(en, "mimi.decoder_transformer.transformer.layers.1.layer_scale_2.scale"), [512]);
    assert.equal(decoderOutputConvName(en), "mimi.decoder.model.11.conv.weight");
    const names = expectedTensors(en).map((t) => t.name);
    assert.equal(names.filter((n) => n.startsWith("mimi.encoder") || n.startsWith("mimi.downsample")).length, 43);
    assert.equal(names.filter((n) => /^mimi\.(decoder|quantizer|upsample)/.test(n)).length, 44);
    assert.equal(names.filter((n) => n.startsWith("flow_lm.flow_net.")).length, 68);
    assert.equal(names.filter((n) => n.length > 63).length, 16);
    const old = builtinConfig("english_2026-01");
    assert.deepEqual(shapeOf(old, "flow_lm.speaker_proj_weight"), [1024, 512]);
    assert.deepEqual(shapeOf(old, "mimi.downsample.conv.conv.weight"), [512, 512, 32]);
    assert.equal(shapeOf(old, "flow_lm.bos_before_voice"), undefined);
  });

  test("weights that disagree with the config: missing, extra, wrong shape, non-float dtype", async () => {
    const config = parseConfig(await readFixtureJson("model/tiny/config.json"));
    const valid = await readFixture("model/tiny/model.safetensors");
    const variants = corruptVariants(valid).filter((v) => v.needsConfig);
    assert.equal(variants.length, 4);
    for (const v of variants) {
      const st = parseSafetensors(v.bytes, "m.safetensors"); // a well-formed file
      assert.throws(() => validateTensors(config, st.tensors, "m.safetensors"), (e: unknown) => {
        assert.ok(e instanceof InvalidWeightsError, v.name);
        assert.match(e.message, v.expect, v.name);
        assert.match(e.message, /^m\.safetensors: /);
        assert.equal(e.tensor, v.tensor, v.name);
        return true;
      });
    }
  });

  test("a config with other dimensions names tensor, expected and actual shape, and counts the rest", async () => {
    const json = await readFixtureJson<{ flow_lm: { flow: { dim: number } } }>("model/tiny/config.json");
    json.flow_lm.flow.dim = 48;
    const st = parseSafetensors(await readFixture("model/tiny/model.safetensors"));
    const problems = checkTensors(parseConfig(json), st.tensors);
    assert.ok(problems.length > 10 && problems.every((p) => p.kind === "shape"));
    assert.throws(
      () => validateTensors(parseConfig(json), st.tensors),
      /tensor "flow_lm\.flow_net\.cond_embed\.bias": expected shape \[48\] \(from the config\), got \[32\] \(and \d+ more problems\)/,
    );
  });
});
