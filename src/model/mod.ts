/**
 * Model files of @pocket/tts: safetensors reading and writing, the config schema (JSON and YAML), the published
 * languages with their pinned Hugging Face sources, asset resolution with download and cache, validation of a
 * model's files against its config, the `info` command, and deterministic synthetic checkpoints.
 *
 * @example
 * ```ts
 * import { openWeights, resolveModel, validateModel } from "./mod.ts";
 *
 * const model = await resolveModel({ language: "english" }, { onProgress: (e) => console.log(e) });
 * await validateModel(model);
 * const weights = await openWeights(model.weights);
 * for (const t of weights.tensors) {
 *   const bytes = await weights.read(t); // raw little-endian bytes, t.dtype, t.shape
 * }
 * await weights.close();
 * ```
 *
 * @module
 */

export {
  bf16ToFloat32,
  type DType,
  DTYPE_SIZES,
  f16ToFloat32,
  float32ToBf16,
  FLOAT_DTYPES,
  MAX_HEADER_BYTES,
  openSafetensors,
  type OpenSafetensorsOptions,
  parseSafetensors,
  parseSafetensorsHeader,
  planSafetensors,
  readHeaderLength,
  type SafetensorsHeader,
  type SafetensorsPlan,
  SafetensorsReader,
  serializeSafetensors,
  type TensorBytes,
  type TensorEntry,
  type TensorInfo,
  toBigInt64,
  toFloat32,
  toFloat32Into,
  writeSafetensors,
} from "./safetensors.ts";
export { parseYaml, type YamlValue } from "./yaml.ts";
export {
  type ConfigFormat,
  type FlowConfig,
  type FlowLMConfig,
  type FlowLMTransformerConfig,
  type LookupTableConfig,
  type MimiConfig,
  type MimiTransformerConfig,
  type ModelDimensions,
  modelDimensions,
  parseConfig,
  parseConfigText,
  type PocketTtsConfig,
  type QuantizerConfig,
  type SEANetConfig,
} from "./config.ts";
export {
  BUILTIN_LANGUAGES,
  builtinConfig,
  type BuiltinLanguage,
  builtinLanguage,
  builtinLanguageNames,
  DEFAULT_LANGUAGE,
  ENGLISH_2026_04_GATED_REVISION,
  GATED_REPO,
  GATED_REVISION,
  PREDEFINED_VOICES,
  predefinedVoiceUrl,
  UNGATED_REPO,
  UNGATED_REVISION,
  VOICES_REVISION,
} from "./builtin_configs.ts";
export {
  checkTensors,
  decoderOutputConvName,
  type ExpectedTensor,
  expectedTensors,
  type FoundTensor,
  parameterCount,
  type TensorRole,
  TIMESTEP_EMBEDDING_SIZE,
  validateTensors,
  type WeightProblem,
} from "./layout.ts";
export { envFlag, envFrom, type EnvReader, hasFileSystem, runtimeEnv } from "./env.ts";
export {
  assetBaseName,
  assetFolder,
  type AssetRef,
  DEFAULT_HF_ENDPOINT,
  formatAssetRef,
  formatHfUrl,
  hfEndpoint,
  type HfRef,
  hfResolveUrl,
  isPinnedRevision,
  parseAssetRef,
  parseHfUrl,
} from "./hf_url.ts";
export {
  describeCause,
  httpGet,
  type HttpGetOptions,
  type HttpResult,
  NetworkUnreachableError,
  type ProgressCallback,
  type ProgressEvent,
  readBody,
} from "./download.ts";
export {
  type AssetCache,
  BrowserCache,
  type CachedFile,
  type CacheEntryMeta,
  type CacheExpectations,
  cacheKey,
  defaultCacheDir,
  FsCache,
  MemoryCache,
  openCache,
  sha256Hex,
} from "./cache.ts";
export {
  type AssetOptions,
  fetchAsset,
  type FetchAssetOptions,
  type ModelSource,
  type ResolvedAsset,
  type ResolvedModel,
  resolveModel,
} from "./assets.ts";
export {
  checkTokenizer,
  checkWeights,
  type ModelCheck,
  openWeights,
  type TokenizerSummary,
  validateModel,
  type WeightsSummary,
} from "./validate.ts";
export { createProgressBar, formatProgress, type ProgressBar, type ProgressBarOptions } from "./progress_bar.ts";
export { INFO_USAGE, type InfoIo, infoReportJson, infoReportText, runInfo } from "./info.ts";
export {
  fillSyntheticTensor,
  fnv1a32,
  mulberry32,
  syntheticCheckpoint,
  type SyntheticInit,
  syntheticInit,
  type SyntheticTensor,
  syntheticTensor,
  timestepFrequencies,
  toBf16Bits,
  writeSyntheticCheckpoint,
} from "./synthetic_weights.ts";
