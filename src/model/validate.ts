/**
 * Checking a resolved model's files before use: the weights' safetensors header and every tensor's name, shape
 * and dtype against the config (the reference's strict load), and the tokenizer file (parsed by the text
 * front-end's tokenizer, vocabulary within the embedding table).
 *
 * @module
 */
import { InvalidTokenizerError, InvalidWeightsError, PocketTtsError } from "../errors.ts";
import { SentencePieceTokenizer } from "../text/tokenizer.ts";
import type { ResolvedAsset, ResolvedModel } from "./assets.ts";
import type { PocketTtsConfig } from "./config.ts";
import { validateTensors } from "./layout.ts";
import { openSafetensors, type SafetensorsReader } from "./safetensors.ts";

/** Facts about a valid weights file. */
export interface WeightsSummary {
  /** Number of tensors. */
  tensors: number;
  /** Number of parameters (elements). */
  parameters: number;
  /** Tensor count per dtype. */
  dtypes: Record<string, number>;
  /** Size of the JSON header in bytes. */
  headerBytes: number;
  /** File size in bytes. */
  fileBytes: number;
  /** The `__metadata__` strings, or `null`. */
  metadata: Record<string, string> | null;
}

/** Facts about a valid tokenizer file. */
export interface TokenizerSummary {
  /** `"sentencepiece"` or `"tokenizers"` (from the config). */
  kind: string;
  /** Number of pieces. */
  vocabSize: number;
}

/**
 * Open a weights file for reading tensors: a local or cached file is read lazily from disk (header now, tensors on
 * demand); otherwise (browser cache, memory) from its bytes.
 *
 * @throws {InvalidWeightsError} when the header is malformed
 */
export async function openWeights(asset: ResolvedAsset): Promise<SafetensorsReader> {
  if (asset.path) return await openSafetensors(asset.path);
  const reader = await openSafetensors(await asset.read());
  return reader;
}

/**
 * Check a weights file against a config: a well-formed safetensors file whose tensors are exactly those the config
 * implies, with the same shapes and float dtypes.
 *
 * @throws {InvalidWeightsError} naming the file, the tensor and the problem
 */
export async function checkWeights(config: PocketTtsConfig, asset: ResolvedAsset): Promise<WeightsSummary> {
  let st: SafetensorsReader;
  try {
    st = await openWeights(asset);
  } catch (e) {
    if (e instanceof InvalidWeightsError && !e.message.startsWith(asset.source) && asset.path === null) {
      throw new InvalidWeightsError(`${asset.source}: ${e.message.replace(/^<bytes>: /, "")}`, {
        tensor: e.tensor,
        file: asset.source,
      });
    }
    throw e;
  }
  try {
    validateTensors(config, st.tensors, st.source === "<bytes>" ? asset.source : st.source);
    const dtypes: Record<string, number> = {};
    for (const t of st.tensors) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
    return {
      tensors: st.tensors.length,
      parameters: st.tensors.reduce((a, t) => a + t.numel, 0),
      dtypes,
      headerBytes: st.header.headerLength,
      fileBytes: st.header.byteLength,
      metadata: st.header.metadata ? { ...st.header.metadata } : null,
    };
  } finally {
    await st.close();
  }
}

/**
 * Check a tokenizer file: it parses (SentencePiece `.model` or HF `tokenizer.json`, per the config) and its
 * vocabulary fits the text embedding table (`n_bins` pieces at most).
 *
 * @throws {InvalidTokenizerError} naming the file and the problem
 */
export async function checkTokenizer(config: PocketTtsConfig, asset: ResolvedAsset): Promise<TokenizerSummary> {
  const kind = config.flow_lm.lookup_table.tokenizer;
  const bytes = await asset.read();
  let tok: SentencePieceTokenizer;
  try {
    tok = kind === "tokenizers"
      ? SentencePieceTokenizer.fromTokenizerJson(bytes)
      : SentencePieceTokenizer.fromModel(bytes);
  } catch (e) {
    if (e instanceof PocketTtsError) throw new InvalidTokenizerError(`${asset.source}: ${e.message}`, e);
    throw e;
  }
  const nBins = config.flow_lm.lookup_table.n_bins;
  if (tok.vocabSize > nBins) {
    throw new InvalidTokenizerError(
      `${asset.source}: ${tok.vocabSize} pieces, more than the config's lookup_table.n_bins ${nBins} ` +
        `(token ids would fall outside the embedding table)`,
    );
  }
  return { kind, vocabSize: tok.vocabSize };
}

/** Everything {@link validateModel} found. */
export interface ModelCheck {
  /** Weights facts. */
  weights: WeightsSummary;
  /** Tokenizer facts. */
  tokenizer: TokenizerSummary;
}

/**
 * Validate a resolved model's files: weights against the config, then the tokenizer.
 *
 * @throws {InvalidWeightsError} or {@link InvalidTokenizerError} naming the file and the problem
 */
export async function validateModel(model: ResolvedModel): Promise<ModelCheck> {
  const weights = await checkWeights(model.config, model.weights);
  const tokenizer = await checkTokenizer(model.config, model.tokenizer);
  return { weights, tokenizer };
}
