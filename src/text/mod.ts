/**
 * The text front-end of @pocket/tts: the reference's text preparation, an exact SentencePiece unigram tokenizer
 * (`.model` and Hugging Face `tokenizer.json`), and the reference's chunking of long text; beyond the reference,
 * opt-in English normalisation, the SSML subset, and the chunking rule for text that arrives in pieces.
 *
 * @example
 * ```ts
 * import { prepareText, SentencePieceTokenizer, splitIntoChunks } from "@pocket/tts/text";
 *
 * const tokenizer = SentencePieceTokenizer.fromModel(await Deno.readFile("tokenizer.model"));
 * const { text, framesAfterEos } = prepareText("hello world"); // "Hello world.", 5
 * const ids = tokenizer.encode(text);
 * for (const chunk of splitIntoChunks(tokenizer, longText)) console.log(chunk.text, chunk.ids);
 * ```
 *
 * @module
 */

export { type PreparedText, prepareText, type PrepareTextOptions } from "./prepare.ts";
export { SentencePieceTokenizer } from "./tokenizer.ts";
export {
  type NormalizerSpec,
  parseSentencePieceModel,
  PieceType,
  type PieceTypeValue,
  type SentencePieceEntry,
  type SentencePieceModelProto,
  type TrainerSpec,
  type UnigramModelSpec,
  unigramSpecFromModelProto,
} from "./sentencepiece_model.ts";
export { unigramSpecFromTokenizerJson } from "./hf_tokenizer_json.ts";
export {
  type ChunkTokenizer,
  DEFAULT_MAX_TOKENS_PER_CHUNK,
  fallbackSplitIds,
  FRAME_RATE,
  GEN_SECONDS_PADDING,
  sentenceEndIds,
  splitIntoChunks,
  type SplitIntoChunksOptions,
  type TextChunk,
  type TextSegment,
  TOKENS_PER_SECOND_ESTIMATE,
} from "./chunking.ts";
export { normalizeEnglish, type NormalizeLanguage, normalizeText } from "./normalize_en.ts";
export {
  BREAK_STRENGTH_MS,
  breakFrames,
  isSsml,
  MAX_BREAK_MS,
  parseSsml,
  SsmlError,
  type SsmlEvent,
  SsmlParser,
} from "./ssml.ts";
export { planSpeech, type PlanSpeechOptions, type SpeechItem } from "./speech_plan.ts";
export { endsSentence, STREAM_MIN_TOKENS, StreamChunker, type StreamChunkerOptions } from "./stream_chunker.ts";
