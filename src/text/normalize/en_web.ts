/**
 * URLs and e-mail addresses read aloud: "https://example.com/docs" → "example dot com slash docs",
 * "jane.doe@example.org" → "jane dot doe at example dot org". The scheme is dropped; digits are read one by one.
 *
 * @module
 */

import { digitWords } from "./en_numbers.ts";

const SYMBOL_WORDS: Record<string, string> = {
  ".": "dot",
  "/": "slash",
  "-": "dash",
  "_": "underscore",
  "@": "at",
  ":": "colon",
  "?": "question mark",
  "=": "equals",
  "&": "and",
  "#": "hash",
  "~": "tilde",
  "+": "plus",
  "%": "percent",
};

/** Reads the characters of an address: letters runs stay words, digits are read singly, symbols are named. */
function spellAddress(address: string): string {
  const words: string[] = [];
  for (const [, letters, digits, symbol] of address.matchAll(/([A-Za-z]+)|(\d+)|(.)/gsu)) {
    if (letters) words.push(letters.toLowerCase() === "www" ? "w w w" : letters);
    else if (digits) words.push(digitWords(digits));
    else if (SYMBOL_WORDS[symbol]) words.push(SYMBOL_WORDS[symbol]);
  }
  return words.join(" ");
}

// Trailing punctuation belongs to the sentence, not the address: an address ends on a letter, digit or `/`.
const URL = /\b(?:https?:\/\/|www\.)[^\s<>"]*[A-Za-z0-9\/]/g;
const EMAIL = /\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b/g;
// Bare domains with a common top-level domain ("example.com", "docs.deno.land").
const DOMAIN =
  /\b(?:[A-Za-z0-9-]+\.)+(?:com|org|net|edu|gov|io|dev|ai|app|co|uk|de|fr|land|info)\b(?:\/[^\s<>"]*[A-Za-z0-9\/])?/g;

/**
 * Replaces URLs, e-mail addresses and bare domains with their spoken form.
 *
 * @example
 * ```ts
 * normalizeWeb("Mail bob@site.io"); // "Mail bob at site dot io"
 * ```
 */
export function normalizeWeb(text: string): string {
  return text
    .replace(URL, (url) => spellAddress(url.replace(/^https?:\/\//, "").replace(/\/$/, "")))
    .replace(EMAIL, spellAddress)
    .replace(DOMAIN, (domain) => spellAddress(domain.replace(/\/$/, "")));
}
