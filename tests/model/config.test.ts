// deno-lint-ignore-file no-explicit-any
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFixtureJson } from "../support/fixtures.ts";
import { modelDimensions, parseConfig, parseConfigText, type PocketTtsConfig } from "../../src/model/config.ts";
import { parseYaml } from "../../src/model/yaml.ts";
import {
  BUILTIN_LANGUAGES,
  builtinConfig,
  builtinLanguageNames,
  DEFAULT_LANGUAGE,
  predefinedVoiceUrl,
} from "../../src/model/builtin_configs.ts";
import { ConfigError } from "../../src/errors.ts";

/** The golden `full` config written the way the reference's YAML files are (block lists at the key's indent). */
const FULL_YAML = `# sig: synthetic full-size model, english_2026-04 architecture

weights_path: model.safetensors
weights_path_without_voice_cloning: null


flow_lm:
  insert_bos_before_voice: true
  dtype: float32
  flow:
    depth: 6
    dim: 512
  transformer:
    d_model: 1024
    hidden_scale: 4
    max_period: 10000
    num_heads: 16
    num_layers: 6
  lookup_table:
    dim: 1024
    n_bins: 4000
    tokenizer: sentencepiece
    tokenizer_path: ../text/tokenizer.model   # relative to this file
  #weights_path: final.safetensors

mimi:
  dtype: float32
  sample_rate: 24000
  inner_dim: 32
  outer_dim: 512
  channels: 1
  frame_rate: 12.5
  seanet:
    dimension: 512
    channels: 1
    n_filters: 64
    n_residual_layers: 1
    ratios:
    - 6
    - 5
    - 4
    kernel_size: 7
    residual_kernel_size: 3
    last_kernel_size: 3
    dilation_base: 2
    pad_mode: constant
    compress: 2
  transformer:
    d_model: 512
    num_heads: 8
    num_layers: 2
    layer_scale: 0.01
    context: 250
    dim_feedforward: 2048
    input_dimension: 512
    output_dimensions:
      - 512
  quantizer:
    dimension: 32
    output_dimension: 512
  #weights_path: codec.safetensors
`;

function clone<T>(x: T): T {
  return JSON.parse(JSON.stringify(x));
}

describe("YAML subset", () => {
  test("scalars, nesting, block and flow sequences, comments, quotes", () => {
    const v = parseYaml(`---
a: 1
b: -2.5e3
c: "x # not a comment"   # a comment
d: 'it''s'
e: hf://kyutai/pocket-tts/languages/english/model.safetensors@39592ff23c9ef80098bb74895d104c26275fe2c9
f: [6, 5, "4"]
g: {k: v, n: 3}
h: ~
i: yes
j: False
k:
l:
  - 1
  - two
m:
  n:
    o: .5
p: "\\u00e9\\n"
`);
    assert.deepEqual(v, {
      a: 1,
      b: -2500,
      c: "x # not a comment",
      d: "it's",
      e: "hf://kyutai/pocket-tts/languages/english/model.safetensors@39592ff23c9ef80098bb74895d104c26275fe2c9",
      f: [6, 5, "4"],
      g: { k: "v", n: 3 },
      h: null,
      i: true,
      j: false,
      k: null,
      l: [1, "two"],
      m: { n: { o: 0.5 } },
      p: "é\n",
    });
  });

  test("constructs outside the subset are errors naming the line", () => {
    const cases: [string, RegExp][] = [
      ["a: 1\na: 2\n", /line 2: duplicate key "a"/],
      ["a:\n  b: 1\n c: 2\n", /line 3: unexpected indentation/],
      ["a: &x 1\n", /line 1: unsupported YAML construct/],
      ["a: |\n  text\n", /line 1: unsupported YAML construct/],
      ["a:\n\t- 1\n", /line 2: tabs/],
      ["a:\n  - b: 1\n", /line 2: sequences of mappings/],
      ["a: 1\n---\nb: 2\n", /line 2: multiple YAML documents/],
      ["a: 'open\n", /line 1: unterminated string/],
      ["just words\nmore: 1\n", /line 2: unexpected content/],
    ];
    for (const [text, re] of cases) {
      assert.throws(() => parseYaml(text, "c.yaml"), (e: unknown) => {
        assert.ok(e instanceof ConfigError, text);
        assert.match(e.message, /^c\.yaml: /);
        assert.match(e.message, re, text);
        return true;
      });
    }
  });
});

describe("config schema", () => {
  test("the reference-style YAML and the golden JSON give the same config", async () => {
    const json = await readFixtureJson("model/full/config.json");
    const fromJson = parseConfig(json, "full/config.json");
    const fromYaml = parseConfigText(FULL_YAML, { source: "full.yaml" });
    assert.deepEqual(fromYaml, fromJson);
    // defaults filled like the reference's pydantic models
    assert.equal(fromJson.mimi.transformer.max_period, 10000);
    assert.equal(fromJson.pad_with_spaces_for_short_inputs, false);
    assert.equal(fromJson.model_recommended_frames_after_eos, null);
    assert.equal(fromJson.flow_lm.weights_path, null);
    assert.equal(fromJson.default_temperature, undefined);
  });

  test("derived dimensions (golden README §1 table)", async () => {
    const full = modelDimensions(parseConfig(await readFixtureJson("model/full/config.json")));
    assert.deepEqual(
      [full.dModel, full.numLayers, full.numHeads, full.headDim, full.ffnDim, full.flowDim, full.flowDepth],
      [1024, 6, 16, 64, 4096, 512, 6],
    );
    assert.deepEqual([full.mimiDModel, full.mimiNumHeads, full.mimiNumLayers, full.mimiFfnDim, full.mimiContext], [
      512,
      8,
      2,
      2048,
      250,
    ]);
    assert.deepEqual([full.latentDim, full.seanetHop, full.resampleStride, full.samplesPerFrame], [32, 120, 16, 1920]);
    const tiny = modelDimensions(parseConfig(await readFixtureJson("model/tiny/config.json")));
    assert.deepEqual([tiny.dModel, tiny.numLayers, tiny.numHeads, tiny.headDim, tiny.ffnDim], [64, 2, 4, 16, 256]);
    assert.deepEqual([tiny.flowDim, tiny.mimiDModel, tiny.mimiFfnDim, tiny.mimiContext], [32, 64, 128, 20]);
  });

  test("unknown, missing and mistyped keys name the key", async () => {
    const base = await readFixtureJson<Record<string, unknown>>("model/tiny/config.json");
    const cases: [(c: Record<string, any>) => void, RegExp, string][] = [
      [
        (c) => (c.flow_lm.transformer.dropout = 0.1),
        /unknown key "flow_lm\.transformer\.dropout"/,
        "flow_lm.transformer.dropout",
      ],
      [(c) => (c.extra = 1), /unknown key "extra"/, "extra"],
      [(c) => delete c.mimi.seanet.ratios, /missing required key "mimi\.seanet\.ratios"/, "mimi.seanet.ratios"],
      [
        (c) => (c.flow_lm.transformer.num_heads = "4"),
        /flow_lm\.transformer\.num_heads must be an integer, got string "4"/,
        "flow_lm.transformer.num_heads",
      ],
      [
        (c) => (c.flow_lm.transformer.num_layers = 2.5),
        /num_layers must be an integer/,
        "flow_lm.transformer.num_layers",
      ],
      [(c) => (c.flow_lm.flow.dim = 0), /flow_lm\.flow\.dim must be an integer >= 1/, "flow_lm.flow.dim"],
      [(c) => (c.remove_semicolons = "yes"), /remove_semicolons must be true or false/, "remove_semicolons"],
      [(c) => (c.mimi.seanet.ratios = []), /ratios must be a non-empty list/, "mimi.seanet.ratios"],
      [
        (c) => (c.flow_lm.lookup_table.tokenizer = "bpe"),
        /must be one of "sentencepiece", "tokenizers"/,
        "flow_lm.lookup_table.tokenizer",
      ],
      [(c) => (c.flow_lm.flow.type = "drifting"), /flow_lm\.flow\.type must be one of "lsd"/, "flow_lm.flow.type"],
      [(c) => (c.mimi = [1]), /mimi must be a mapping, got a list/, "mimi"],
      // consistency checks
      [
        (c) => (c.flow_lm.transformer.num_heads = 3),
        /d_model 64 is not divisible into 3 heads/,
        "flow_lm.transformer.num_heads",
      ],
      [(c) => (c.flow_lm.transformer.num_heads = 64), /64 heads of even size/, "flow_lm.transformer.num_heads"],
      [
        (c) => (c.flow_lm.lookup_table.dim = 32),
        /lookup_table\.dim: 32 differs from flow_lm\.transformer\.d_model 64/,
        "flow_lm.lookup_table.dim",
      ],
      [(c) => (c.mimi.frame_rate = 12), /not an integer/, "mimi.frame_rate"],
      [
        (c) => (c.mimi.transformer.input_dimension = 32),
        /input_dimension: 32 differs from mimi\.seanet\.dimension 64/,
        "mimi.transformer.input_dimension",
      ],
      [
        (c) => (c.mimi.quantizer.output_dimension = 32),
        /output_dimension: 32 differs/,
        "mimi.quantizer.output_dimension",
      ],
    ];
    for (const [edit, re, key] of cases) {
      const c = clone(base);
      edit(c);
      assert.throws(() => parseConfig(c, "tiny/config.json"), (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(re));
        assert.equal(e.code, "invalid_config");
        assert.match(e.message, /^tiny\/config\.json: /);
        assert.match(e.message, re);
        assert.equal(e.key, key);
        return true;
      });
    }
  });

  test("post-2.1.0 keys are accepted", async () => {
    const c = clone(await readFixtureJson<Record<string, any>>("model/tiny/config.json"));
    c.default_temperature = 0.3;
    c.replace_characters = { "’": "'" };
    c.append_terminal_punctuation = true;
    c.flow_lm.flow.type = "lsd";
    const p = parseConfig(c);
    assert.equal(p.default_temperature, 0.3);
    assert.deepEqual(p.replace_characters, { "’": "'" });
    assert.throws(() => parseConfig({ ...c, replace_characters: { a: 1 } }), /mapping of strings to strings/);
  });

  test("bad JSON and bad YAML are ConfigErrors", () => {
    assert.throws(() => parseConfigText("{", { source: "x.json" }), /x\.json: not valid JSON/);
    assert.throws(
      () => parseConfigText("a: b: c\n", { source: "x.yaml" }),
      /x\.yaml: line 1: a mapping is not allowed here/,
    );
    assert.throws(() => parseConfigText("- 1\n- 2\n", { source: "x.yaml" }), /x\.yaml: the config must be a mapping/);
  });
});

describe("built-in languages (spec §1.5–1.6)", () => {
  test("the published list with flags, layers and pinned sources", () => {
    assert.equal(DEFAULT_LANGUAGE, "english");
    assert.deepEqual(builtinLanguageNames(), [
      "english",
      "english_2026-04",
      "english_2026-01",
      "german",
      "german_24l",
      "italian",
      "italian_24l",
      "portuguese",
      "portuguese_24l",
      "spanish",
      "spanish_24l",
      "french_24l",
    ]);
    const sigs = Object.fromEntries(BUILTIN_LANGUAGES.map((l) => [l.name, l.sig]));
    assert.equal(sigs["english"], "a0ac5076");
    assert.equal(sigs["french_24l"], "709d9f84");
    const en = builtinConfig();
    assert.equal(
      en.weights_path,
      "hf://kyutai/pocket-tts/languages/english/model.safetensors@39592ff23c9ef80098bb74895d104c26275fe2c9",
    );
    assert.equal(
      en.weights_path_without_voice_cloning,
      "hf://kyutai/pocket-tts-without-voice-cloning/languages/english/model.safetensors@d29db7978e464fb90cb3359ee0c69a273b9142cc",
    );
    assert.equal(
      en.flow_lm.lookup_table.tokenizer_path,
      "hf://kyutai/pocket-tts-without-voice-cloning/languages/english/tokenizer.model@d29db7978e464fb90cb3359ee0c69a273b9142cc",
    );
    assert.equal(en.flow_lm.insert_bos_before_voice, true);
    assert.equal(en.mimi.inner_dim, 32);
    assert.equal(
      builtinConfig("english_2026-04").weights_path,
      "hf://kyutai/pocket-tts/languages/english_2026-04/model.safetensors@19f95fe2df36e79fbd9f10008595cc4c977a0fcc",
    );
    const old = builtinConfig("english_2026-01");
    assert.equal(old.flow_lm.insert_bos_before_voice, false);
    assert.equal(old.mimi.inner_dim, 512);
    assert.equal(old.pad_with_spaces_for_short_inputs, true);
    assert.equal(
      old.flow_lm.lookup_table.tokenizer_path,
      "hf://kyutai/pocket-tts-without-voice-cloning/tokenizer.model@d29db7978e464fb90cb3359ee0c69a273b9142cc",
    );
    const fr = builtinConfig("french_24l");
    assert.equal(fr.flow_lm.transformer.num_layers, 24);
    assert.equal(fr.remove_semicolons, true);
    assert.equal(fr.model_recommended_frames_after_eos, 8);
    assert.equal(builtinConfig("german").remove_semicolons, true);
    assert.equal(builtinConfig("italian").remove_semicolons, false);
    assert.equal(builtinConfig("spanish_24l").flow_lm.transformer.num_layers, 24);
    // fresh objects: editing one does not leak into the next call
    (en as { remove_semicolons: boolean }).remove_semicolons = true;
    assert.equal(builtinConfig().remove_semicolons, false);
  });

  test("a built-in config equals the golden full config apart from its sources", async () => {
    const full = parseConfig(await readFixtureJson("model/full/config.json"));
    const en: PocketTtsConfig = builtinConfig("english");
    const strip = (c: PocketTtsConfig) => {
      const x = clone(c);
      x.weights_path = x.weights_path_without_voice_cloning = null;
      x.flow_lm.lookup_table.tokenizer_path = "";
      return x;
    };
    assert.deepEqual(strip(en), strip(full));
  });

  test("unknown names, french, voices", () => {
    assert.throws(() => builtinConfig("french"), /use "french_24l"/);
    assert.throws(() => builtinConfig("klingon"), /unknown language "klingon" \(available: english, /);
    assert.equal(
      predefinedVoiceUrl("italian", "giovanni"),
      "hf://kyutai/pocket-tts-without-voice-cloning/languages/italian/embeddings/giovanni.safetensors@e041936c75475d350b405bc870bcf7c22da4e9e6",
    );
    assert.throws(() => predefinedVoiceUrl("english", "bob"), /unknown voice "bob"/);
    assert.deepEqual(BUILTIN_LANGUAGES.map((l) => l.defaultVoice).slice(3, 12), [
      "juergen",
      "juergen",
      "giovanni",
      "giovanni",
      "rafael",
      "rafael",
      "lola",
      "lola",
      "estelle",
    ]);
  });
});
