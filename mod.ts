/**
 * @pocket/tts — Kyutai's Pocket TTS for every JavaScript runtime, on a Rust→WebAssembly SIMD core.
 *
 * Run as a program it is the CLI (`deno run -A mod.ts "Hello world"`); imported, it is the library.
 *
 * @example
 * ```ts
 * import { encodeWav, TTSModel } from "@pocket/tts";
 *
 * const tts = await TTSModel.load();                 // English; downloaded from Hugging Face on first use
 * const voice = await tts.loadVoice("alba");
 * for await (const frame of tts.stream("Hello world.", { voice })) {
 *   // a Float32Array of 1920 samples (80 ms at 24 kHz), as soon as it is generated
 * }
 * const audio = await tts.generate("Hello again.", { voice });
 * await Deno.writeFile("hello.wav", encodeWav(audio, tts.sampleRate));
 * tts.dispose();
 * ```
 *
 * @module
 */

export * from "./src/errors.ts";
export {
  normalizeEnglish,
  normalizeText,
  prepareText,
  SentencePieceTokenizer,
  splitIntoChunks,
} from "./src/text/mod.ts";
export type { NormalizeLanguage } from "./src/text/mod.ts";
export type { PreparedText, PrepareTextOptions, SplitIntoChunksOptions, TextChunk } from "./src/text/mod.ts";
export { VERSION } from "./src/version.ts";
export { TTSModel, Voice } from "./src/generate/tts_model.ts";
export type { GenerateOptions, TTSModelLoadOptions } from "./src/generate/tts_model.ts";
export type { ChunkReport } from "./src/generate/generation.ts";
export { type Caption, toWebVtt } from "./src/generate/captions.ts";
export type { TextDeltas } from "./src/generate/text_stream.ts";
export { isSsml, parseSsml, SsmlError } from "./src/text/ssml.ts";
export type { SsmlEvent } from "./src/text/ssml.ts";
export {
  createAudioEncoder,
  decodeAudio,
  decodeWav,
  DEFAULT_MAX_DECODE_SECONDS,
  detectAudioFormat,
  encodeWav,
  OUTPUT_FORMATS,
  resample,
  resamplePoly,
  SPEED_RANGE,
  TimeStretcher,
  toMono,
  WavStreamWriter,
} from "./src/audio/mod.ts";
export type {
  AudioEncoder,
  AudioEncoderOptions,
  AudioFormat,
  DecodeAudioOptions,
  DecodedAudio,
  DecodedWav,
  DecodeWavOptions,
  EncodeWavOptions,
  OutputFormat,
  WavSampleEncoding,
  WavSampleFormat,
} from "./src/audio/mod.ts";
export { BUILTIN_LANGUAGES, PREDEFINED_VOICES } from "./src/model/builtin_configs.ts";
export type { BuiltinLanguage } from "./src/model/builtin_configs.ts";
export type {
  FlowConfig,
  FlowLMConfig,
  FlowLMTransformerConfig,
  LookupTableConfig,
  MimiConfig,
  MimiTransformerConfig,
  PocketTtsConfig,
  QuantizerConfig,
  SEANetConfig,
} from "./src/model/config.ts";
export type { ResolvedAsset, ResolvedModel } from "./src/model/assets.ts";
export type { AssetRef, HfRef } from "./src/model/hf_url.ts";
export type { ProgressCallback, ProgressEvent } from "./src/model/download.ts";
export type { SimdVariant } from "./src/runtime/simd_detect.ts";
export type { WasmSource } from "./src/runtime/wasm.ts";
export { PieceType } from "./src/text/mod.ts";
export type { ChunkTokenizer, PieceTypeValue } from "./src/text/mod.ts";
export { checkVoiceFits, readVoiceFile, serializeVoiceState } from "./src/voice/voice_state.ts";
export type {
  AudioPromptVoiceFile,
  KvVoiceFile,
  VoiceFile,
  VoiceKvState,
  VoiceModelShape,
} from "./src/voice/voice_state.ts";
export type { AudioSamples, CloneOptions } from "./src/voice/clone.ts";
export { GaussianNoise } from "./src/generate/noise.ts";
export type { GaussianNoiseOptions } from "./src/generate/noise.ts";

if (import.meta.main) {
  const { runCli } = await import("./src/cli.ts");
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  const argv: string[] = g.Deno ? g.Deno.args : g.process.argv.slice(2);
  const code = await runCli(argv);
  if (g.Deno) g.Deno.exit(code);
  else g.process.exit(code);
}
