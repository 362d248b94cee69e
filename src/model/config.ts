/**
 * The model config: the reference's schema (pocket-tts 2.1.0 `utils/config.py`), read from JSON or YAML, validated
 * strictly (unknown keys are errors, as with the reference's `extra="forbid"`), with defaults filled in, plus the
 * consistency checks a loader relies on (heads divide the model width, frame rates agree, …).
 *
 * Keys added upstream after 2.1.0 (`default_temperature`, `append_terminal_punctuation`,
 * `capitalize_first_letter`, `replace_characters`, `flow.type`) are accepted so newer config files load; they are
 * left undefined when absent.
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import { parseYaml } from "./yaml.ts";

/** FlowLM flow head settings. */
export interface FlowConfig {
  /** Width of the flow head MLP. */
  dim: number;
  /** Number of residual blocks. */
  depth: number;
  /** Sampler kind (post-2.1.0 key); only `"lsd"` is supported. */
  type?: "lsd";
}

/** FlowLM transformer settings. */
export interface FlowLMTransformerConfig {
  /** Model width. */
  d_model: number;
  /** FFN width = `d_model × hidden_scale`. */
  hidden_scale: number;
  /** RoPE max period. */
  max_period: number;
  /** Attention heads. */
  num_heads: number;
  /** Transformer layers. */
  num_layers: number;
}

/** Text embedding table and tokenizer. */
export interface LookupTableConfig {
  /** Embedding width (equals the transformer's `d_model`). */
  dim: number;
  /** Vocabulary size; the table has `n_bins + 1` rows (the last is padding). */
  n_bins: number;
  /** Tokenizer kind: `"sentencepiece"` (`.model`) or `"tokenizers"` (HF `tokenizer.json`, later configs). */
  tokenizer: "sentencepiece" | "tokenizers";
  /** Where the tokenizer file comes from (`hf://…`, URL or path relative to the config). */
  tokenizer_path: string;
}

/** The FlowLM part of the config. */
export interface FlowLMConfig {
  /** Compute dtype (`"float32"`). */
  dtype: string;
  /** Flow head. */
  flow: FlowConfig;
  /** Backbone transformer. */
  transformer: FlowLMTransformerConfig;
  /** Text embedding and tokenizer. */
  lookup_table: LookupTableConfig;
  /** Separate FlowLM weights (unused by the published configs). */
  weights_path: string | null;
  /** Whether a learned `bos_before_voice` vector precedes the voice conditioning (current models). */
  insert_bos_before_voice: boolean;
}

/** SEANet encoder/decoder settings. */
export interface SEANetConfig {
  /** Latent width at the SEANet output (200 Hz). */
  dimension: number;
  /** Audio channels. */
  channels: number;
  /** Base number of filters. */
  n_filters: number;
  /** Residual blocks per stage. */
  n_residual_layers: number;
  /** Decoder upsampling ratios (the encoder uses them reversed). */
  ratios: number[];
  /** First conv kernel size. */
  kernel_size: number;
  /** Residual block conv kernel size. */
  residual_kernel_size: number;
  /** Last conv kernel size. */
  last_kernel_size: number;
  /** Dilation growth per residual layer. */
  dilation_base: number;
  /** Padding mode (`"constant"`: causal). */
  pad_mode: string;
  /** Residual hidden width divisor. */
  compress: number;
}

/** Mimi transformer (encoder and decoder side) settings. */
export interface MimiTransformerConfig {
  /** Model width. */
  d_model: number;
  /** Input width (a projection exists when it differs from `d_model`). */
  input_dimension: number;
  /** Output widths (a projection exists for each that differs from `d_model`). */
  output_dimensions: number[];
  /** Attention heads. */
  num_heads: number;
  /** Layers. */
  num_layers: number;
  /** LayerScale init (`null`: no LayerScale). */
  layer_scale: number | null;
  /** Causal attention window in 200 Hz steps. */
  context: number;
  /** RoPE max period (default 10000). */
  max_period: number;
  /** FFN width. */
  dim_feedforward: number;
}

/** The dummy quantizer: a 1×1 conv from the latent to `output_dimension`. */
export interface QuantizerConfig {
  /** Latent width (32). */
  dimension: number;
  /** Output width. */
  output_dimension: number;
}

/** The Mimi codec part of the config. */
export interface MimiConfig {
  /** Compute dtype. */
  dtype: string;
  /** Audio sample rate (24000). */
  sample_rate: number;
  /** Audio channels. */
  channels: number;
  /** Latent frame rate (12.5 Hz). */
  frame_rate: number;
  /** SEANet. */
  seanet: SEANetConfig;
  /** Encoder and decoder transformers. */
  transformer: MimiTransformerConfig;
  /** Quantizer. */
  quantizer: QuantizerConfig;
  /** Separate Mimi weights (unused by the published configs). */
  weights_path: string | null;
  /** Width of the downsampled encoder output (`null`: SEANet dimension). */
  inner_dim: number | null;
  /** Width of the upsampler's input (`null`: SEANet dimension). */
  outer_dim: number | null;
}

/** A complete, validated model config (reference key names). */
export interface PocketTtsConfig {
  /** FlowLM. */
  flow_lm: FlowLMConfig;
  /** Mimi. */
  mimi: MimiConfig;
  /** The full weights (gated repository for the published models). */
  weights_path: string | null;
  /** Weights without the voice-cloning encoder (ungated), used when `weights_path` cannot be had. */
  weights_path_without_voice_cloning: string | null;
  /** Pad short inputs with spaces (2026-01 model). */
  pad_with_spaces_for_short_inputs: boolean;
  /** Remove semicolons from the text. */
  remove_semicolons: boolean;
  /** Frames to emit after EOS recommended for this model (`null`: automatic). */
  model_recommended_frames_after_eos: number | null;
  /** Default sampling temperature (post-2.1.0 key). */
  default_temperature?: number;
  /** Append terminal punctuation when missing (post-2.1.0 key). */
  append_terminal_punctuation?: boolean;
  /** Upper-case the first letter (post-2.1.0 key). */
  capitalize_first_letter?: boolean;
  /** Per-character replacements before tokenization (post-2.1.0 key). */
  replace_characters?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------------------------

type Field =
  | { t: "int"; min?: number; def?: number | null; nullable?: boolean; optional?: boolean }
  | { t: "number"; def?: number | null; nullable?: boolean; optional?: boolean; positive?: boolean }
  | { t: "bool"; def?: boolean; optional?: boolean }
  | { t: "string"; def?: string | null; nullable?: boolean; optional?: boolean; oneOf?: readonly string[] }
  | { t: "ints"; min?: number; nonEmpty?: boolean }
  | { t: "strmap"; optional?: boolean }
  | { t: "obj"; fields: Schema };
type Schema = Record<string, Field>;

const pos = { t: "int", min: 1 } as const;

const SCHEMA: Schema = {
  flow_lm: {
    t: "obj",
    fields: {
      dtype: { t: "string", oneOf: ["float32", "bfloat16", "float16"] },
      flow: { t: "obj", fields: { dim: pos, depth: pos, type: { t: "string", optional: true, oneOf: ["lsd"] } } },
      transformer: {
        t: "obj",
        fields: { d_model: pos, hidden_scale: pos, max_period: pos, num_heads: pos, num_layers: pos },
      },
      lookup_table: {
        t: "obj",
        fields: {
          dim: pos,
          n_bins: pos,
          tokenizer: { t: "string", oneOf: ["sentencepiece", "tokenizers"] },
          tokenizer_path: { t: "string" },
        },
      },
      weights_path: { t: "string", nullable: true, def: null },
      insert_bos_before_voice: { t: "bool", def: false },
    },
  },
  mimi: {
    t: "obj",
    fields: {
      dtype: { t: "string", oneOf: ["float32", "bfloat16", "float16"] },
      sample_rate: pos,
      channels: pos,
      frame_rate: { t: "number", positive: true },
      seanet: {
        t: "obj",
        fields: {
          dimension: pos,
          channels: pos,
          n_filters: pos,
          n_residual_layers: { t: "int", min: 0 },
          ratios: { t: "ints", min: 1, nonEmpty: true },
          kernel_size: pos,
          residual_kernel_size: pos,
          last_kernel_size: pos,
          dilation_base: pos,
          pad_mode: { t: "string" },
          compress: pos,
        },
      },
      transformer: {
        t: "obj",
        fields: {
          d_model: pos,
          input_dimension: pos,
          output_dimensions: { t: "ints", min: 1, nonEmpty: true },
          num_heads: pos,
          num_layers: { t: "int", min: 0 },
          layer_scale: { t: "number", nullable: true },
          context: pos,
          max_period: { t: "number", def: 10000, positive: true },
          dim_feedforward: pos,
        },
      },
      quantizer: { t: "obj", fields: { dimension: pos, output_dimension: pos } },
      weights_path: { t: "string", nullable: true, def: null },
      inner_dim: { t: "int", min: 1, nullable: true, def: null },
      outer_dim: { t: "int", min: 1, nullable: true, def: null },
    },
  },
  weights_path: { t: "string", nullable: true, def: null },
  weights_path_without_voice_cloning: { t: "string", nullable: true, def: null },
  pad_with_spaces_for_short_inputs: { t: "bool", def: false },
  remove_semicolons: { t: "bool", def: false },
  model_recommended_frames_after_eos: { t: "int", min: 0, nullable: true, def: null },
  default_temperature: { t: "number", optional: true },
  append_terminal_punctuation: { t: "bool", optional: true },
  capitalize_first_letter: { t: "bool", optional: true },
  replace_characters: { t: "strmap", optional: true },
};

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `${typeof v} ${JSON.stringify(v)}`;
}

function validate(schema: Schema, value: unknown, path: string, source: string): Record<string, unknown> {
  const at = (k: string) => (path ? `${path}.${k}` : k);
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(`${source}: ${path || "the config"} must be a mapping, got ${typeName(value)}`, path);
  }
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) {
    if (!Object.hasOwn(schema, k)) {
      const known = Object.keys(schema).join(", ");
      throw new ConfigError(`${source}: unknown key "${at(k)}" (allowed here: ${known})`, at(k));
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(schema)) {
    const key = at(k);
    const bad = (what: string): never => {
      throw new ConfigError(`${source}: ${key} must be ${what}, got ${typeName(v[k])}`, key);
    };
    if (!Object.hasOwn(v, k) || v[k] === undefined) {
      if (f.t === "obj" || f.t === "ints" || !("def" in f || ("optional" in f && f.optional))) {
        throw new ConfigError(`${source}: missing required key "${key}"`, key);
      }
      if ("def" in f && f.def !== undefined) out[k] = f.def;
      continue;
    }
    const x = v[k];
    if (x === null && "nullable" in f && f.nullable) {
      out[k] = null;
      continue;
    }
    switch (f.t) {
      case "obj":
        out[k] = validate(f.fields, x, key, source);
        break;
      case "int":
        if (typeof x !== "number" || !Number.isSafeInteger(x)) bad("an integer");
        if (f.min !== undefined && (x as number) < f.min) bad(`an integer >= ${f.min}`);
        out[k] = x;
        break;
      case "number":
        if (typeof x !== "number" || !Number.isFinite(x)) bad("a number");
        if (f.positive && (x as number) <= 0) bad("a positive number");
        out[k] = x;
        break;
      case "bool":
        if (typeof x !== "boolean") bad("true or false");
        out[k] = x;
        break;
      case "string":
        if (typeof x !== "string") bad("a string");
        if (f.oneOf && !f.oneOf.includes(x as string)) bad(`one of ${f.oneOf.map((s) => `"${s}"`).join(", ")}`);
        out[k] = x;
        break;
      case "ints": {
        if (!Array.isArray(x)) bad("a list of integers");
        const arr = x as unknown[];
        if (f.nonEmpty && arr.length === 0) bad("a non-empty list of integers");
        if (!arr.every((e) => typeof e === "number" && Number.isSafeInteger(e) && e >= (f.min ?? -Infinity))) {
          bad(`a list of integers >= ${f.min}`);
        }
        out[k] = [...arr];
        break;
      }
      case "strmap": {
        if (x === null || typeof x !== "object" || Array.isArray(x)) bad("a mapping of strings to strings");
        const m = x as Record<string, unknown>;
        if (!Object.values(m).every((e) => typeof e === "string")) bad("a mapping of strings to strings");
        out[k] = { ...m };
        break;
      }
    }
  }
  return out;
}

/**
 * Validate a config object (as parsed from JSON or YAML) and fill in defaults.
 *
 * Besides the schema, checks that a loader relies on: heads divide the widths with an even head size (RoPE
 * pairs), the text table width equals FlowLM's `d_model`, the SEANet width matches the Mimi transformer's input and
 * output, the channel counts agree, and the sample rate, SEANet hop and frame rate give an integer resampling stride.
 *
 * @param value the parsed config
 * @param source the config's path or URL, for messages
 * @throws {ConfigError} naming the key and the problem
 */
export function parseConfig(value: unknown, source = "config"): PocketTtsConfig {
  const c = validate(SCHEMA, value, "", source) as unknown as PocketTtsConfig;
  const err = (key: string, msg: string): never => {
    throw new ConfigError(`${source}: ${key}: ${msg}`, key);
  };
  const ft = c.flow_lm.transformer;
  if (ft.d_model % ft.num_heads !== 0 || (ft.d_model / ft.num_heads) % 2 !== 0) {
    err(
      "flow_lm.transformer.num_heads",
      `d_model ${ft.d_model} is not divisible into ${ft.num_heads} heads of even size`,
    );
  }
  if (c.flow_lm.lookup_table.dim !== ft.d_model) {
    err(
      "flow_lm.lookup_table.dim",
      `${c.flow_lm.lookup_table.dim} differs from flow_lm.transformer.d_model ${ft.d_model} (no projection exists)`,
    );
  }
  const mt = c.mimi.transformer;
  if (mt.d_model % mt.num_heads !== 0 || (mt.d_model / mt.num_heads) % 2 !== 0) {
    err("mimi.transformer.num_heads", `d_model ${mt.d_model} is not divisible into ${mt.num_heads} heads of even size`);
  }
  const sn = c.mimi.seanet;
  if (mt.input_dimension !== sn.dimension) {
    err("mimi.transformer.input_dimension", `${mt.input_dimension} differs from mimi.seanet.dimension ${sn.dimension}`);
  }
  if (mt.output_dimensions.some((d) => d !== sn.dimension)) {
    err(
      "mimi.transformer.output_dimensions",
      `[${mt.output_dimensions.join(", ")}] must all equal mimi.seanet.dimension ${sn.dimension}`,
    );
  }
  if (c.mimi.channels !== sn.channels) {
    err("mimi.seanet.channels", `${sn.channels} differs from mimi.channels ${c.mimi.channels}`);
  }
  if (sn.dimension % sn.compress !== 0) err("mimi.seanet.compress", `${sn.compress} does not divide ${sn.dimension}`);
  const hop = sn.ratios.reduce((a, b) => a * b, 1);
  const stride = c.mimi.sample_rate / hop / c.mimi.frame_rate;
  if (!Number.isInteger(stride)) {
    err(
      "mimi.frame_rate",
      `sample_rate ${c.mimi.sample_rate} / SEANet hop ${hop} / frame_rate ${c.mimi.frame_rate} is not an integer`,
    );
  }
  const outer = c.mimi.outer_dim ?? sn.dimension;
  if (stride !== 1 && outer % sn.dimension !== 0) {
    err("mimi.outer_dim", `${outer} is not a multiple of mimi.seanet.dimension ${sn.dimension}`);
  }
  if (c.mimi.quantizer.output_dimension !== outer) {
    err(
      "mimi.quantizer.output_dimension",
      `${c.mimi.quantizer.output_dimension} differs from the upsampler's input width ${outer} (mimi.outer_dim)`,
    );
  }
  return c;
}

/** Config file formats. */
export type ConfigFormat = "json" | "yaml";

/**
 * Parse config text, JSON or YAML. Without an explicit format, a `.json` source or text starting with `{` is JSON,
 * anything else YAML.
 *
 * @param text the file content
 * @param options the format and a source name for messages
 * @throws {ConfigError} on a syntax error or an invalid config
 */
export function parseConfigText(
  text: string,
  options: { format?: ConfigFormat; source?: string } = {},
): PocketTtsConfig {
  const source = options.source ?? "config";
  const format = options.format ??
    (/\.json$/i.test(source) || text.trimStart().startsWith("{") ? "json" : "yaml");
  let value: unknown;
  if (format === "json") {
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`${source}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
  } else value = parseYaml(text, source);
  return parseConfig(value, source);
}

/** Dimensions derived from a config, as the engine and the `info` report use them. */
export interface ModelDimensions {
  /** FlowLM width. */
  dModel: number;
  /** FlowLM heads. */
  numHeads: number;
  /** FlowLM head size. */
  headDim: number;
  /** FlowLM layers. */
  numLayers: number;
  /** FlowLM FFN width. */
  ffnDim: number;
  /** Flow head width. */
  flowDim: number;
  /** Flow head residual blocks. */
  flowDepth: number;
  /** Text vocabulary (table rows = vocab + 1). */
  vocabSize: number;
  /** Latent width. */
  latentDim: number;
  /** Speaker projection input width (`inner_dim`). */
  innerDim: number;
  /** Upsampler input width (`outer_dim`). */
  outerDim: number;
  /** Mimi transformer width. */
  mimiDModel: number;
  /** Mimi transformer heads. */
  mimiNumHeads: number;
  /** Mimi transformer layers (each side). */
  mimiNumLayers: number;
  /** Mimi transformer FFN width. */
  mimiFfnDim: number;
  /** Mimi attention window (200 Hz steps). */
  mimiContext: number;
  /** SEANet hop (product of ratios). */
  seanetHop: number;
  /** Down/up-sampling stride between the SEANet rate and the latent rate. */
  resampleStride: number;
  /** Audio samples per latent frame. */
  samplesPerFrame: number;
  /** Audio sample rate. */
  sampleRate: number;
  /** Latent frame rate. */
  frameRate: number;
}

/** Derive the dimensions the engine needs from a validated config. */
export function modelDimensions(c: PocketTtsConfig): ModelDimensions {
  const ft = c.flow_lm.transformer;
  const mt = c.mimi.transformer;
  const sn = c.mimi.seanet;
  const hop = sn.ratios.reduce((a, b) => a * b, 1);
  const stride = c.mimi.sample_rate / hop / c.mimi.frame_rate;
  return {
    dModel: ft.d_model,
    numHeads: ft.num_heads,
    headDim: ft.d_model / ft.num_heads,
    numLayers: ft.num_layers,
    ffnDim: Math.trunc(ft.d_model * ft.hidden_scale),
    flowDim: c.flow_lm.flow.dim,
    flowDepth: c.flow_lm.flow.depth,
    vocabSize: c.flow_lm.lookup_table.n_bins,
    latentDim: c.mimi.quantizer.dimension,
    innerDim: c.mimi.inner_dim ?? sn.dimension,
    outerDim: c.mimi.outer_dim ?? sn.dimension,
    mimiDModel: mt.d_model,
    mimiNumHeads: mt.num_heads,
    mimiNumLayers: mt.num_layers,
    mimiFfnDim: mt.dim_feedforward,
    mimiContext: mt.context,
    seanetHop: hop,
    resampleStride: stride,
    samplesPerFrame: hop * stride,
    sampleRate: c.mimi.sample_rate,
    frameRate: c.mimi.frame_rate,
  };
}
