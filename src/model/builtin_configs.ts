/**
 * The published language models (pocket-tts 2.1.0, spec §1.5–1.7): their configs with the pinned Hugging Face
 * repositories, file paths and revisions, and where their predefined voices live.
 *
 * All share the Mimi codec and flow-head settings; they differ in layer count, weights, tokenizer and a few text
 * flags. Weights come from the gated `kyutai/pocket-tts` repository (with the voice-cloning encoder) or, failing
 * that, from the ungated `kyutai/pocket-tts-without-voice-cloning` (encoder zeroed).
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import { parseConfig, type PocketTtsConfig } from "./config.ts";

/** The gated repository (full weights, needed for voice cloning). */
export const GATED_REPO = "kyutai/pocket-tts";
/** The ungated repository (encoder zeroed; tokenizers and voice states). */
export const UNGATED_REPO = "kyutai/pocket-tts-without-voice-cloning";
/** Pinned revision of the gated repository. */
export const GATED_REVISION = "39592ff23c9ef80098bb74895d104c26275fe2c9";
/** Pinned revision of the ungated repository. */
export const UNGATED_REVISION = "d29db7978e464fb90cb3359ee0c69a273b9142cc";
/** Pinned revision of the gated `english_2026-04` weights. */
export const ENGLISH_2026_04_GATED_REVISION = "19f95fe2df36e79fbd9f10008595cc4c977a0fcc";
/** Pinned revision of the predefined voice states. */
export const VOICES_REVISION = "e041936c75475d350b405bc870bcf7c22da4e9e6";

/** The language used when none is given. */
export const DEFAULT_LANGUAGE = "english";

/** The 26 predefined voice names (the same for every language). */
export const PREDEFINED_VOICES: readonly string[] = Object.freeze([
  "alba",
  "marius",
  "javert",
  "jean",
  "cosette",
  "fantine",
  "eponine",
  "azelma",
  "anna",
  "vera",
  "charles",
  "paul",
  "george",
  "mary",
  "jane",
  "michael",
  "eve",
  "bill_boerst",
  "peter_yearsley",
  "stuart_bell",
  "caro_davy",
  "giovanni",
  "lola",
  "juergen",
  "rafael",
  "estelle",
]);

/** What distinguishes one published model. */
export interface BuiltinLanguage {
  /** Config name (`--language`). */
  readonly name: string;
  /** Kyutai's internal checkpoint id. */
  readonly sig: string;
  /** FlowLM layers. */
  readonly layers: number;
  /** The voice used when none is given. */
  readonly defaultVoice: string;
  /** Upstream calls the 24-layer models a preview. */
  readonly preview: boolean;
}

interface Entry extends BuiltinLanguage {
  weightsGated: string;
  weightsUngated: string;
  tokenizer: string;
  flags: Partial<
    Pick<
      PocketTtsConfig,
      "pad_with_spaces_for_short_inputs" | "remove_semicolons" | "model_recommended_frames_after_eos"
    >
  >;
  insertBos: boolean;
  innerDim: number;
}

function hf(repo: string, path: string, revision: string): string {
  return `hf://${repo}/${path}@${revision}`;
}

function lang(
  name: string,
  sig: string,
  layers: number,
  defaultVoice: string,
  flags: Entry["flags"] = {},
): Entry {
  return {
    name,
    sig,
    layers,
    defaultVoice,
    preview: layers === 24,
    weightsGated: hf(GATED_REPO, `languages/${name}/model.safetensors`, GATED_REVISION),
    weightsUngated: hf(UNGATED_REPO, `languages/${name}/model.safetensors`, UNGATED_REVISION),
    tokenizer: hf(UNGATED_REPO, `languages/${name}/tokenizer.model`, UNGATED_REVISION),
    flags,
    insertBos: true,
    innerDim: 32,
  };
}

const ENTRIES: readonly Entry[] = [
  lang("english", "a0ac5076", 6, "alba"),
  {
    ...lang("english_2026-04", "a0ac5076", 6, "alba"),
    weightsGated: hf(GATED_REPO, "languages/english_2026-04/model.safetensors", ENGLISH_2026_04_GATED_REVISION),
  },
  {
    ...lang("english_2026-01", "b6369a24", 6, "alba", { pad_with_spaces_for_short_inputs: true }),
    tokenizer: hf(UNGATED_REPO, "tokenizer.model", UNGATED_REVISION),
    insertBos: false,
    innerDim: 512,
  },
  lang("german", "ba9816ab", 6, "juergen", { remove_semicolons: true }),
  lang("german_24l", "085f1405", 24, "juergen", { remove_semicolons: true }),
  lang("italian", "78c8126d", 6, "giovanni"),
  lang("italian_24l", "6ec79d0f", 24, "giovanni"),
  lang("portuguese", "4a4b1e3a", 6, "rafael"),
  lang("portuguese_24l", "56579f81", 24, "rafael"),
  lang("spanish", "8bcc8b3b", 6, "lola"),
  lang("spanish_24l", "afd6403b", 24, "lola"),
  lang("french_24l", "709d9f84", 24, "estelle", { remove_semicolons: true, model_recommended_frames_after_eos: 8 }),
];

/** The published languages, in the order above (the default first). */
export const BUILTIN_LANGUAGES: readonly BuiltinLanguage[] = Object.freeze(
  ENTRIES.map(({ name, sig, layers, defaultVoice, preview }) =>
    Object.freeze({ name, sig, layers, defaultVoice, preview })
  ),
);

/** Names accepted by {@link builtinConfig}. */
export function builtinLanguageNames(): string[] {
  return ENTRIES.map((e) => e.name);
}

function entry(name: string): Entry {
  const e = ENTRIES.find((x) => x.name === name);
  if (e) return e;
  if (name === "french") {
    throw new ConfigError(`language "french" has no 6-layer model at this version: use "french_24l"`);
  }
  throw new ConfigError(`unknown language "${name}" (available: ${builtinLanguageNames().join(", ")})`);
}

/**
 * The config of a published language model (a fresh, validated object).
 *
 * @param name a name from {@link builtinLanguageNames}
 * @throws {ConfigError} for an unknown name (and for `"french"`, which only exists as `french_24l`)
 */
export function builtinConfig(name: string = DEFAULT_LANGUAGE): PocketTtsConfig {
  const e = entry(name);
  return parseConfig({
    weights_path: e.weightsGated,
    weights_path_without_voice_cloning: e.weightsUngated,
    ...e.flags,
    flow_lm: {
      insert_bos_before_voice: e.insertBos,
      dtype: "float32",
      flow: { depth: 6, dim: 512 },
      transformer: { d_model: 1024, hidden_scale: 4, max_period: 10000, num_heads: 16, num_layers: e.layers },
      lookup_table: { dim: 1024, n_bins: 4000, tokenizer: "sentencepiece", tokenizer_path: e.tokenizer },
    },
    mimi: {
      dtype: "float32",
      sample_rate: 24000,
      inner_dim: e.innerDim,
      outer_dim: 512,
      channels: 1,
      frame_rate: 12.5,
      seanet: {
        dimension: 512,
        channels: 1,
        n_filters: 64,
        n_residual_layers: 1,
        ratios: [6, 5, 4],
        kernel_size: 7,
        residual_kernel_size: 3,
        last_kernel_size: 3,
        dilation_base: 2,
        pad_mode: "constant",
        compress: 2,
      },
      transformer: {
        d_model: 512,
        num_heads: 8,
        num_layers: 2,
        layer_scale: 0.01,
        context: 250,
        dim_feedforward: 2048,
        input_dimension: 512,
        output_dimensions: [512],
      },
      quantizer: { dimension: 32, output_dimension: 512 },
    },
  }, `language "${name}"`);
}

/** Description of a published language (sig, layers, default voice), or `undefined`. */
export function builtinLanguage(name: string): BuiltinLanguage | undefined {
  return BUILTIN_LANGUAGES.find((l) => l.name === name);
}

/**
 * Where a predefined voice's state file for a language lives (`hf://…` URL, pinned revision).
 *
 * @throws {ConfigError} for an unknown language or voice
 */
export function predefinedVoiceUrl(language: string, voice: string): string {
  const e = entry(language);
  if (!PREDEFINED_VOICES.includes(voice)) {
    throw new ConfigError(`unknown voice "${voice}" (predefined: ${PREDEFINED_VOICES.join(", ")})`);
  }
  return hf(UNGATED_REPO, `languages/${e.name}/embeddings/${voice}.safetensors`, VOICES_REVISION);
}
