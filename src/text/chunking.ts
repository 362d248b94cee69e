/**
 * Splitting long text into the chunks the model generates one at a time: the reference's
 * `split_into_best_sentences` (pocket-tts 2.1.0), reproduced with its quirks, plus the per-chunk values the
 * generator needs.
 *
 * @module
 */

import { InvalidTextError } from "../errors.ts";
import { prepareText, type PrepareTextOptions } from "./prepare.ts";
import { pyStrip } from "./python_str.ts";

/** What the chunker needs from a tokenizer (a {@link SentencePieceTokenizer} fits). */
export interface ChunkTokenizer {
  /** Text to ids, without BOS/EOS. */
  encode(text: string): number[];
  /** Ids to text, as SentencePiece decodes them. */
  decode(ids: ArrayLike<number>): string;
}

/** Upstream's `MAX_TOKEN_PER_CHUNK`. */
export const DEFAULT_MAX_TOKENS_PER_CHUNK = 50;
/** Upstream's speaking-rate estimate, in tokens per second, used to bound generation length. */
export const TOKENS_PER_SECOND_ESTIMATE = 3.0;
/** Seconds of slack upstream adds to the estimated duration of a chunk. */
export const GEN_SECONDS_PADDING = 2.0;
/** Latent frames per second of the Mimi codec. */
export const FRAME_RATE = 12.5;

/** Options of {@link splitIntoChunks}. */
export interface SplitIntoChunksOptions extends PrepareTextOptions {
  /** Token budget per chunk (default 50). A sentence with no `, ; :` to split at stays whole even above it. */
  maxTokens?: number;
  /**
   * Called with upstream's warning text for every chunk whose re-tokenized length exceeds `maxTokens`
   * (`"Chunk has N tokens (max M), generation may skip words: '…'"`).
   */
  onWarning?: (message: string) => void;
}

/** A piece of text with the number of tokens it had in context. */
export interface TextSegment {
  /** Token count inside the text it was cut from (not re-tokenized). */
  tokenCount: number;
  /** The decoded text. */
  text: string;
}

/** One chunk to synthesise. */
export interface TextChunk {
  /** The chunk text, fed to the tokenizer as is. */
  text: string;
  /** Upstream's count: the sum of its segments' in-context counts (may differ from `ids.length`). */
  tokenCount: number;
  /** `encode(text)`: the tokens the generator conditions on. */
  ids: number[];
  /** Generation cap in frames: `ceil((ids.length / 3 + 2) * 12.5)`. */
  maxGenLen: number;
  /** Frames after end-of-speech for this chunk: 5 when it has at most 4 words, else 3. */
  framesAfterEos: number;
  /** `ids.length > maxTokens` (upstream logs a warning; generation may skip words). */
  exceedsMaxTokens: boolean;
}

const boundaryCache = new WeakMap<ChunkTokenizer, { sentenceEnd: number[]; fallback: number[] }>();

function boundaryIds(tokenizer: ChunkTokenizer): { sentenceEnd: number[]; fallback: number[] } {
  let ids = boundaryCache.get(tokenizer);
  if (ids === undefined) {
    // Upstream: `_, *end_of_sentence_tokens = tokenizer(".!...?")`; the first id is the dummy-prefix `▁`.
    ids = { sentenceEnd: tokenizer.encode(".!...?").slice(1), fallback: tokenizer.encode(",;:").slice(1) };
    boundaryCache.set(tokenizer, ids);
  }
  return ids;
}

/**
 * The ids that end a sentence: `encode(".!...?")` without its first id (with the reference vocabularies
 * `.`, `!`, `...`, `?`). Multi-character pieces such as `!!` or `."` are not in the set.
 */
export function sentenceEndIds(tokenizer: ChunkTokenizer): number[] {
  return [...boundaryIds(tokenizer).sentenceEnd];
}

/** The ids an oversized sentence may be split after: `encode(",;:")` without its first id. */
export function fallbackSplitIds(tokenizer: ChunkTokenizer): number[] {
  return [...boundaryIds(tokenizer).fallback];
}

/**
 * Upstream's `_find_boundary_indices`: 0, then every index whose token is not a boundary token while the
 * previous one was (a split after each run of boundary tokens), then `ids.length`.
 *
 * @param ids the token ids
 * @param boundary the boundary token ids
 * @returns the segment limits
 */
export function findBoundaryIndices(ids: ArrayLike<number>, boundary: Iterable<number>): number[] {
  const set = new Set(boundary);
  const indices = [0];
  let previousWasBoundary = false;
  for (let i = 0; i < ids.length; i++) {
    if (set.has(ids[i])) {
      previousWasBoundary = true;
    } else {
      if (previousWasBoundary) indices.push(i);
      previousWasBoundary = false;
    }
  }
  indices.push(ids.length);
  return indices;
}

/**
 * Upstream's `_segments_from_boundaries`: each `[start, end)` range decoded back to text, with its token count.
 *
 * @param tokenizer decodes the ranges
 * @param ids the token ids
 * @param boundaries limits from {@link findBoundaryIndices}
 * @returns the segments
 */
export function segmentsFromBoundaries(
  tokenizer: ChunkTokenizer,
  ids: readonly number[],
  boundaries: readonly number[],
): TextSegment[] {
  const segments: TextSegment[] = [];
  for (let i = 0; i + 1 < boundaries.length; i++) {
    const start = boundaries[i];
    const end = boundaries[i + 1];
    segments.push({ tokenCount: end - start, text: tokenizer.decode(ids.slice(start, end)) });
  }
  return segments;
}

/**
 * Splits every segment over `maxTokens` after its commas, semicolons and colons: the stripped segment is
 * re-tokenized and cut after each run of `encode(",;:")` ids; a segment that yields a single piece stays whole.
 *
 * @param tokenizer the tokenizer
 * @param segments sentence segments
 * @param maxTokens the token budget
 * @returns the segments the greedy packer consumes
 */
export function refineOversizedSegments(
  tokenizer: ChunkTokenizer,
  segments: readonly TextSegment[],
  maxTokens: number,
): TextSegment[] {
  const { fallback } = boundaryIds(tokenizer);
  const refined: TextSegment[] = [];
  for (const segment of segments) {
    if (segment.tokenCount <= maxTokens) {
      refined.push(segment);
      continue;
    }
    const ids = tokenizer.encode(pyStrip(segment.text));
    const pieces = segmentsFromBoundaries(tokenizer, ids, findBoundaryIndices(ids, fallback));
    if (pieces.length > 1) refined.push(...pieces);
    else refined.push(segment);
  }
  return refined;
}

/**
 * Upstream's greedy packing: segments are joined with a space while the summed in-context counts stay within
 * `maxTokens`; each chunk is stripped.
 *
 * @param segments refined segments
 * @param maxTokens the token budget
 * @returns chunk texts with their summed counts
 */
export function packSegments(segments: readonly TextSegment[], maxTokens: number): TextSegment[] {
  const chunks: TextSegment[] = [];
  let current = "";
  let count = 0;
  for (const segment of segments) {
    if (current === "") {
      current = segment.text;
      count = segment.tokenCount;
      continue;
    }
    if (count + segment.tokenCount > maxTokens) {
      chunks.push({ tokenCount: count, text: pyStrip(current) });
      current = segment.text;
      count = segment.tokenCount;
    } else {
      current += " " + segment.text;
      count += segment.tokenCount;
    }
  }
  if (current !== "") chunks.push({ tokenCount: count, text: pyStrip(current) });
  return chunks;
}

/**
 * Splits text into chunks exactly as the reference's `split_into_best_sentences` does, and adds what the
 * generator needs per chunk. Steps: prepare the whole text ({@link prepareText}) and strip it; tokenize; cut
 * after each run of sentence-end tokens (`.`, `!`, `...`, `?`) and decode the pieces; split oversized sentences
 * after `, ; :`; pack greedily by summed token counts.
 *
 * Reproduced quirks of 2.1.0: `3.14` becomes `3. 14` (the `.` is a sentence end and the pieces are re-joined
 * with a space); a closing quote after `.` can move to the next chunk; only the first character of the whole
 * text is capitalised; `padWithSpacesForShortInputs` has no effect (the padding is stripped).
 *
 * @example
 * ```ts
 * const chunks = splitIntoChunks(tokenizer, "Hello world. How are you?", { maxTokens: 50 });
 * chunks.map((c) => c.text); // ["Hello world. How are you?"]
 * ```
 *
 * @param tokenizer the tokenizer (the boundary ids come from it)
 * @param text the raw text
 * @param options token budget and preparation flags
 * @returns the chunks, in order
 * @throws {InvalidTextError} (code `"empty_text"`) when the text is empty or whitespace only, or when a chunk
 *   decodes to whitespace only (possible only with U+2581 `▁` in the text, which decodes as a space)
 */
export function splitIntoChunks(
  tokenizer: ChunkTokenizer,
  text: string,
  options: SplitIntoChunksOptions = {},
): TextChunk[] {
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS_PER_CHUNK;
  const prepareOptions: PrepareTextOptions = {
    padWithSpacesForShortInputs: options.padWithSpacesForShortInputs,
    removeSemicolons: options.removeSemicolons,
  };
  const prepared = pyStrip(prepareText(text, prepareOptions).text);
  const ids = tokenizer.encode(prepared);
  const sentences = segmentsFromBoundaries(
    tokenizer,
    ids,
    findBoundaryIndices(ids, boundaryIds(tokenizer).sentenceEnd),
  );
  const packed = packSegments(refineOversizedSegments(tokenizer, sentences, maxTokens), maxTokens);
  return packed.map(({ text: chunkText, tokenCount }, index) => {
    if (chunkText === "") {
      // Only a literal U+2581 (which decodes as a space) can produce this; the reference returns the empty chunk
      // and then fails in `prepare_text_prompt` when generating it.
      throw new InvalidTextError(
        `Text prompt cannot be empty: chunk ${index + 1} of ${packed.length} decodes to whitespace only ` +
          "(the text's U+2581 characters decode as spaces)",
        "empty_text",
      );
    }
    return makeChunk(tokenizer, chunkText, tokenCount, prepareText(chunkText, prepareOptions).framesAfterEos, {
      maxTokens,
      onWarning: options.onWarning,
    });
  });
}

/**
 * A chunk from its final text: tokenized as is, with the generation cap and the over-budget warning.
 *
 * @example
 * ```ts
 * const chunk = makeChunk(tokenizer, "Hello world.", 3, 5, { maxTokens: 50 });
 * ```
 *
 * @param tokenizer the tokenizer
 * @param text the chunk text, fed to the tokenizer as is
 * @param tokenCount the count reported as `tokenCount`
 * @param framesAfterEos the chunk's frames-after-EOS default
 * @param options the token budget and the warning sink
 * @returns the chunk
 */
export function makeChunk(
  tokenizer: ChunkTokenizer,
  text: string,
  tokenCount: number,
  framesAfterEos: number,
  options: { maxTokens: number; onWarning?: (message: string) => void },
): TextChunk {
  const ids = tokenizer.encode(text);
  const exceedsMaxTokens = ids.length > options.maxTokens;
  if (exceedsMaxTokens && options.onWarning) {
    const preview = Array.from(text).slice(0, 50).join("");
    options.onWarning(
      `Chunk has ${ids.length} tokens (max ${options.maxTokens}), generation may skip words: '${preview}...'`,
    );
  }
  return {
    text,
    tokenCount,
    ids,
    maxGenLen: Math.ceil((ids.length / TOKENS_PER_SECOND_ESTIMATE + GEN_SECONDS_PADDING) * FRAME_RATE),
    framesAfterEos,
    exceedsMaxTokens,
  };
}
