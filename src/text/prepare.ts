/**
 * Text preparation before tokenization: the reference's `prepare_text_prompt` (pocket-tts 2.1.0).
 *
 * @module
 */

import { InvalidTextError } from "../errors.ts";
import { pyIsAlnum, pyStrip, pyUpperChar, pyWordCount } from "./python_str.ts";

/** Options of {@link prepareText}. */
export interface PrepareTextOptions {
  /**
   * Prefix 8 spaces when the prepared text has fewer than 5 words (upstream enables it only for
   * `english_2026-01`). Default `false`. The chunker strips the prepared text, so the padding never reaches the
   * tokenizer on the chunked path.
   */
  padWithSpacesForShortInputs?: boolean;
  /** Replace every `;` with `,` (upstream's German and French configs). Default `false`. */
  removeSemicolons?: boolean;
}

/** Result of {@link prepareText}. */
export interface PreparedText {
  /** The text to tokenize. */
  text: string;
  /**
   * Frames to generate after the end-of-speech flag when nothing else sets it: 5 when the text has at most 4
   * words, else 3 (upstream's guess of 3 or 1, plus the 2 that `generate_audio_stream` adds).
   */
  framesAfterEos: number;
}

/**
 * Prepares a text prompt exactly as the reference does:
 * 1. strip (Python whitespace, which includes U+001C–U+001F and U+0085 but not U+FEFF);
 * 2. replace `\n` with a space, then `\r` with a space, then `"  "` with `" "` — each a single
 *    non-overlapping pass, so 3 or 4 spaces become 2;
 * 3. optionally replace `;` with `,`;
 * 4. count words (Python `str.split()`): `framesAfterEos` is 5 for ≤ 4 words, else 3;
 * 5. uppercase the first character with Python's `str.upper` (`ß…` → `SS…`);
 * 6. append `.` when the last character is alphanumeric (Python `str.isalnum`);
 * 7. optionally prefix 8 spaces when fewer than 5 words remain.
 *
 * @example
 * ```ts
 * prepareText("hello world"); // { text: "Hello world.", framesAfterEos: 5 }
 * ```
 *
 * @param text the raw prompt
 * @param options preparation flags
 * @returns the prepared text and the frames-after-EOS default
 * @throws {InvalidTextError} (code `"empty_text"`) when the text is empty or whitespace only
 */
export function prepareText(text: string, options: PrepareTextOptions = {}): PreparedText {
  let prepared = pyStrip(text);
  if (prepared === "") throw new InvalidTextError("Text prompt cannot be empty", "empty_text");
  prepared = prepared.replaceAll("\n", " ").replaceAll("\r", " ").replaceAll("  ", " ");
  if (options.removeSemicolons) prepared = prepared.replaceAll(";", ",");
  const framesAfterEos = pyWordCount(prepared) <= 4 ? 5 : 3;

  // Upstream: `if not text[0].isupper(): text = text[0].upper() + text[1:]`. No character that `isupper()`
  // changes under `upper()` (checked over all of Unicode 14), so applying `upper()` unconditionally is the same.
  const first = prepared.codePointAt(0)!;
  const firstLength = first > 0xffff ? 2 : 1;
  prepared = pyUpperChar(first) + prepared.slice(firstLength);

  if (pyIsAlnum(lastCodePoint(prepared))) prepared += ".";
  if (options.padWithSpacesForShortInputs && pyWordCount(prepared) < 5) prepared = " ".repeat(8) + prepared;
  return { text: prepared, framesAfterEos };
}

/** The last code point of a non-empty string (a trailing surrogate pair counts as one). */
function lastCodePoint(text: string): number {
  const last = text.charCodeAt(text.length - 1);
  if (last >= 0xdc00 && last <= 0xdfff && text.length >= 2) {
    const high = text.charCodeAt(text.length - 2);
    if (high >= 0xd800 && high <= 0xdbff) return ((high - 0xd800) << 10) + (last - 0xdc00) + 0x10000;
  }
  return last;
}
