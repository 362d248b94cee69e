/**
 * @pocket/tts — Kyutai's Pocket TTS for every JavaScript runtime, on a Rust→WebAssembly SIMD core.
 *
 * Run as a program it is the CLI (`deno run -A mod.ts "Hello world"`); imported, it is the library.
 *
 * @example
 * ```ts
 * import { prepareText } from "@pocket/tts";
 * console.log(prepareText("hello world").text); // "Hello world."
 * ```
 *
 * @module
 */

export * from "./src/errors.ts";
export { prepareText, SentencePieceTokenizer, splitIntoChunks } from "./src/text/mod.ts";
export type { PreparedText, PrepareTextOptions, SplitIntoChunksOptions, TextChunk } from "./src/text/mod.ts";
export { VERSION } from "./src/version.ts";
export { checkVoiceFits, readVoiceFile, serializeVoiceState } from "./src/voice/voice_state.ts";
export type {
  AudioPromptVoiceFile,
  KvVoiceFile,
  VoiceFile,
  VoiceKvState,
  VoiceModelShape,
} from "./src/voice/voice_state.ts";
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
