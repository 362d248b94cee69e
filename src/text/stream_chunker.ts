/**
 * Chunking text that arrives in pieces (an LLM's deltas) with a rule that depends only on the text, never on how it
 * was cut into deltas, so the same text gives the same chunks — and, with a seed, the same samples — whether it
 * came whole or one character at a time.
 *
 * **The rule.** The text is read as words (runs of non-whitespace; a word is complete once whitespace, an SSML
 * tag or the end of the stream follows it). Each chunk's text is its words joined by single spaces, normalised
 * (when asked) and prepared with the reference's `prepare_text_prompt` (first letter capitalised, `.` appended
 * after a final letter or digit); its size is the token count of that text.
 * 1. A chunk closes after a word that ends a sentence (`.`, `!`, `?`, `…`, possibly followed by closing quotes or
 *    brackets, and not an abbreviation such as `Dr.`, `e.g.`, `U.S.` or an initial) when it holds at least
 *    {@link STREAM_MIN_TOKENS} tokens — or whatever its size, when it is the stream's first chunk, so speech
 *    starts after the first sentence.
 * 2. When adding a word would take the chunk over `maxTokens` (50), the chunk closes before it: after its last
 *    clause end (`,`, `;`, `:`, `—` or a sentence end) when it has one, otherwise after its last word. A single
 *    word over the budget becomes a chunk of its own (with the reference's warning).
 * 3. An SSML `<break>`, `<p>` or `<s>` tag, and the end of the stream, close the chunk.
 *
 * @module
 */

import { type ChunkTokenizer, DEFAULT_MAX_TOKENS_PER_CHUNK, makeChunk, type TextChunk } from "./chunking.ts";
import { type NormalizeLanguage, normalizeText } from "./normalize_en.ts";
import { prepareText, type PrepareTextOptions } from "./prepare.ts";
import { pyIsSpace } from "./python_str.ts";
import type { SpeechItem } from "./speech_plan.ts";
import { isSsml, type SsmlEvent, SsmlParser } from "./ssml.ts";

/** A chunk after the first closes at a sentence end only once it holds this many tokens. */
export const STREAM_MIN_TOKENS = 20;

/** Options of {@link StreamChunker}. */
export interface StreamChunkerOptions extends PrepareTextOptions {
  /** Token budget per chunk (default 50). */
  maxTokens?: number;
  /** Normaliser applied to each chunk's text before preparation (default: none). */
  normalize?: NormalizeLanguage;
  /** Receives the reference's warning for a chunk over budget (a single very long word). */
  onWarning?: (message: string) => void;
}

// Words ending in "." that do not end a sentence.
const NON_FINAL = new Set([
  "Mr.",
  "Mrs.",
  "Ms.",
  "Dr.",
  "Prof.",
  "St.",
  "Mt.",
  "Jr.",
  "Sr.",
  "Capt.",
  "Gen.",
  "Gov.",
  "Sen.",
  "Rep.",
  "Lt.",
  "Sgt.",
  "No.",
  "no.",
  "vs.",
  "approx.",
  "cf.",
  "Fig.",
  "fig.",
  "Vol.",
  "vol.",
  "Ch.",
  "p.",
  "pp.",
  "Jan.",
  "Feb.",
  "Mar.",
  "Apr.",
  "Jun.",
  "Jul.",
  "Aug.",
  "Sep.",
  "Sept.",
  "Oct.",
  "Nov.",
  "Dec.",
]);
const CLOSERS = /["'”’»)\]}]*$/;

/** Whether a word ends a sentence (see the module's rule). */
export function endsSentence(word: string): boolean {
  const core = word.replace(CLOSERS, "");
  if (!/[.!?…]$/.test(core)) return false;
  if (!core.endsWith(".") || core.endsWith("..")) return true;
  const bare = core.replace(/^["'“‘«(\[{]+/, "");
  return !(NON_FINAL.has(bare) || /^(?:\p{L}\.)+$/u.test(bare));
}

function endsClause(word: string): boolean {
  return /[,;:—]$/.test(word.replace(CLOSERS, "")) || endsSentence(word);
}

/**
 * Turns text deltas into speech items (chunks and breaks) by the module's rule. Plain text unless the stream
 * starts (after whitespace) with `<speak>`, in which case it is parsed as the SSML subset.
 *
 * @example
 * ```ts
 * const chunker = new StreamChunker(tokenizer);
 * const items = [...chunker.push("Hello wor"), ...chunker.push("ld. How are"), ...chunker.push(" you?"), ...chunker.end()];
 * // [{type:"chunk", chunk:{text:"Hello world.",…}}, {type:"chunk", chunk:{text:"How are you?",…}}]
 * ```
 */
export class StreamChunker {
  #tokenizer: ChunkTokenizer;
  #maxTokens: number;
  #options: StreamChunkerOptions;
  /** Undecided until the first non-whitespace characters show whether this is SSML. */
  #mode: "undecided" | "plain" | "ssml" = "undecided";
  #head = "";
  #ssml = new SsmlParser();
  /** Complete words of the open chunk. */
  #words: string[] = [];
  /** The word being read (no whitespace has followed it yet). */
  #partial = "";
  #chunks = 0;
  #items = 0;

  /**
   * Creates a chunker for one stream of text.
   *
   * @param tokenizer counts and encodes chunk texts
   * @param options budget, normaliser and preparation flags
   */
  constructor(tokenizer: ChunkTokenizer, options: StreamChunkerOptions = {}) {
    this.#tokenizer = tokenizer;
    this.#maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS_PER_CHUNK;
    this.#options = options;
  }

  /** Reads the next delta and returns the items it completes. */
  push(delta: string): SpeechItem[] {
    const out: SpeechItem[] = [];
    if (this.#mode === "undecided") {
      this.#head += delta;
      const trimmed = this.#head.trimStart();
      if (trimmed.length < "<speak>".length && "<speak>".startsWith(trimmed)) return out;
      this.#mode = isSsml(this.#head) ? "ssml" : "plain";
      delta = this.#head;
      this.#head = "";
    }
    if (this.#mode === "plain") this.#text(delta, out);
    else for (const event of this.#ssml.push(delta)) this.#event(event, out);
    return out;
  }

  /**
   * Ends the stream: closes the open chunk.
   *
   * @throws {InvalidTextError} when the whole stream held no text and no break
   * @throws {SsmlError} an unfinished SSML document
   */
  end(): SpeechItem[] {
    const out: SpeechItem[] = [];
    if (this.#mode === "undecided") {
      this.#mode = "plain";
      this.#text(this.#head, out);
    }
    if (this.#mode === "ssml") { for (const event of this.#ssml.end()) this.#event(event, out); }
    this.#closeWord(out);
    this.#close(this.#words.length, out);
    if (this.#items === 0) prepareText(""); // throws the reference's empty-text error
    return out;
  }

  /**
   * The chunk that whitespace (or the end of the stream) arriving next would close together with the word being
   * read, when it would close one; otherwise `null`. Lets a generator prepare that chunk while it waits for text.
   * The chunk is only a guess: the text may continue the word instead (`3.` → `3.14`).
   */
  speculate(): TextChunk | null {
    const word = this.#partial;
    if (this.#mode === "undecided" || word === "" || !endsSentence(word)) return null;
    const words = [...this.#words, word];
    const count = this.#count(words);
    if (this.#words.length > 0 && count > this.#maxTokens) return null; // the chunk would be split first
    if (this.#chunks > 0 && count < STREAM_MIN_TOKENS) return null;
    const prepared = this.#prepare(words);
    const chunk = makeChunk(this.#tokenizer, prepared.text, 0, prepared.framesAfterEos, { maxTokens: this.#maxTokens });
    chunk.tokenCount = chunk.ids.length;
    return chunk;
  }

  #event(event: SsmlEvent, out: SpeechItem[]): void {
    if (event.type === "text") return this.#text(event.text, out);
    this.#closeWord(out);
    this.#close(this.#words.length, out);
    if (event.type === "break" && event.ms > 0) {
      out.push(event);
      this.#items++;
    }
  }

  #text(text: string, out: SpeechItem[]): void {
    for (const ch of text) {
      if (pyIsSpace(ch.codePointAt(0)!)) this.#closeWord(out);
      else this.#partial += ch;
    }
  }

  #closeWord(out: SpeechItem[]): void {
    if (this.#partial === "") return;
    const word = this.#partial;
    this.#partial = "";
    while (this.#words.length > 0 && this.#count([...this.#words, word]) > this.#maxTokens) {
      let cut = this.#words.length;
      for (let i = this.#words.length - 1; i >= 0; i--) {
        if (endsClause(this.#words[i])) {
          cut = i + 1;
          break;
        }
      }
      this.#close(cut, out);
    }
    this.#words.push(word);
    if (endsSentence(word) && (this.#chunks === 0 || this.#count(this.#words) >= STREAM_MIN_TOKENS)) {
      this.#close(this.#words.length, out);
    }
  }

  #prepare(words: readonly string[]): { text: string; framesAfterEos: number } {
    // (Padding for short inputs is left out: the reference strips it before tokenizing, too.)
    return prepareText(normalizeText(words.join(" "), this.#options.normalize), {
      removeSemicolons: this.#options.removeSemicolons,
    });
  }

  #count(words: readonly string[]): number {
    return this.#tokenizer.encode(this.#prepare(words).text).length;
  }

  /** Emits the first `n` words as a chunk. */
  #close(n: number, out: SpeechItem[]): void {
    if (n === 0) return;
    const words = this.#words.splice(0, n);
    const prepared = this.#prepare(words);
    const chunk: TextChunk = makeChunk(this.#tokenizer, prepared.text, 0, prepared.framesAfterEos, {
      maxTokens: this.#maxTokens,
      onWarning: this.#options.onWarning,
    });
    chunk.tokenCount = chunk.ids.length;
    out.push({ type: "chunk", chunk });
    this.#chunks++;
    this.#items++;
  }
}
