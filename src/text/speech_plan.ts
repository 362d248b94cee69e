/**
 * What a request speaks, in order: text chunks and (from SSML) breaks. {@link planSpeech} makes the plan of a whole
 * text: plain text is chunked exactly as the reference does; SSML is split at its breaks and `<p>`/`<s>` boundaries
 * and each run of text is chunked the same way.
 *
 * @module
 */

import { splitIntoChunks, type SplitIntoChunksOptions, type TextChunk } from "./chunking.ts";
import type { ChunkTokenizer } from "./chunking.ts";
import { type NormalizeLanguage, normalizeText } from "./normalize_en.ts";
import { isSsml, parseSsml } from "./ssml.ts";

/** One step of a speech plan: a text chunk to generate, or a silence. */
export type SpeechItem =
  | { type: "chunk"; chunk: TextChunk }
  /** Silence of `ms` milliseconds (placed at the nearest frame boundary by the generator). */
  | { type: "break"; ms: number };

/** Options of {@link planSpeech}. */
export interface PlanSpeechOptions extends SplitIntoChunksOptions {
  /** Normaliser applied to each run of text before the reference's preparation (default: none). */
  normalize?: NormalizeLanguage;
}

/**
 * The plan of a whole text: SSML when it starts with `<speak>`, plain text otherwise.
 *
 * @example
 * ```ts
 * planSpeech(tokenizer, '<speak>Hello.<break time="1s"/>World.</speak>');
 * // [{type:"chunk", chunk:{text:"Hello.",…}}, {type:"break", ms:1000}, {type:"chunk", chunk:{text:"World.",…}}]
 * ```
 *
 * @throws {InvalidTextError} empty text (plain text, or SSML without any text or break)
 * @throws {SsmlError} malformed SSML or an unsupported element
 */
export function planSpeech(tokenizer: ChunkTokenizer, text: string, options: PlanSpeechOptions = {}): SpeechItem[] {
  const chunk = (run: string): SpeechItem[] =>
    splitIntoChunks(tokenizer, normalizeText(run, options.normalize), options).map((c) => ({
      type: "chunk",
      chunk: c,
    }));
  if (!isSsml(text)) return chunk(text);
  const items: SpeechItem[] = [];
  let run = "";
  const flush = () => {
    if (run.trim() !== "") items.push(...chunk(run));
    run = "";
  };
  for (const event of parseSsml(text)) {
    if (event.type === "text") run += event.text;
    else {
      flush();
      if (event.type === "break" && event.ms > 0) items.push(event);
    }
  }
  flush();
  if (items.length === 0) chunk(""); // throws the reference's empty-text error
  return items;
}
