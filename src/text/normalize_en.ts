/**
 * Opt-in English text normalisation (`normalize: "en"`), run before the reference's own text preparation: numbers,
 * currency, percentages, dates, times, units, abbreviations, URLs, e-mail addresses and symbols become the words a
 * reader would say. The reference does not normalise, so this is off unless asked for.
 *
 * The passes run in a fixed order, each on the previous one's output, so that a more specific pattern claims its
 * text before a general one: addresses, dates and times, amounts (currency, percentages, units), abbreviations and
 * symbols, then the remaining numbers (ordinals, fractions, ranges, years, decimals, cardinals).
 *
 * @module
 */

import { PocketTtsError } from "../errors.ts";
import { normalizeAbbreviations } from "./normalize/en_abbreviations.ts";
import { normalizeDatesAndTimes } from "./normalize/en_dates.ts";
import {
  cardinalWords,
  digitWords,
  fractionWords,
  numberWords,
  ordinalWords,
  yearWords,
} from "./normalize/en_numbers.ts";
import { normalizeAmounts } from "./normalize/en_units.ts";
import { normalizeWeb } from "./normalize/en_web.ts";

/** The normalisers available (`"en"`: English). */
export type NormalizeLanguage = "en";

const ORDINAL = /\b(\d+)(st|nd|rd|th)\b/g;
const FRACTION = /(?<![\w/.])(\d{1,3})\/(\d{1,3})(?![\w/])/g;
const RANGE = /(?<![\w.,-])(\d+(?:\.\d+)?)[-–](\d+(?:\.\d+)?)(?![\w.]?\d)/g;
const YEAR = /(?<![\w.,$-])(1[1-9]\d\d|20\d\d)(?![\w.,]?\d)/g;
const NUMBER = /(?<![\w.])([-−+]?)(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?![\w])/g;
const DIGITS = /\d+/g;

/** One end of a range: a year-like four-digit integer is read as a year ("1756–1791"). */
function rangeEnd(n: string): string {
  return /^(1[1-9]\d\d|20\d\d)$/.test(n) ? yearWords(n) : numberWords(n);
}

function normalizeNumbers(text: string): string {
  return text
    .replace(ORDINAL, (_all, digits: string) => ordinalWords(digits))
    // Only proper fractions with a common denominator are read as fractions; "24/7" and "50/50" are not.
    .replace(FRACTION, (_all, n: string, d: string) => {
      const common = Number(d) <= 10 || [12, 16, 32, 64, 100].includes(Number(d));
      return Number(n) < Number(d) && common ? fractionWords(n, d) : `${cardinalWords(n)} ${cardinalWords(d)}`;
    })
    .replace(RANGE, (_all, a: string, b: string) => `${rangeEnd(a)} to ${rangeEnd(b)}`)
    .replace(YEAR, (_all, y: string) => yearWords(y))
    // A sign counts only at the start of a word ("-5", not "3-5", which is a range above).
    // Leading zeros mean a code, not a quantity ("007" → "zero zero seven").
    .replace(NUMBER, (_all, sign: string, n: string) => /^0\d/.test(n) ? digitWords(n) : numberWords(sign + n))
    // Digits glued to letters ("MP3", "4K") are read as cardinals.
    .replace(DIGITS, (d) => ` ${cardinalWords(d)} `);
}

/**
 * Normalises English text for speech. Covered: cardinals, negatives, decimals, thousands separators, ordinals
 * (`21st`), fractions (`3/4`), ranges (`10-20`), years (`1999`) and decades (`1990s`); currency (`$ € £ ¥ ₹`, with
 * cents and `million`/`bn` scales); percentages; clock times (`9:30`, `5 pm`); dates (ISO, US `m/d/yyyy`, `March
 * 5th, 2024`, `5 March 2024`); units after a number (length, mass, volume, speed, time, frequency, power, data,
 * temperature); titles and common abbreviations; URLs, bare domains and e-mail addresses; `& + = @ # × ÷`.
 * Whitespace runs become single spaces.
 *
 * @example
 * ```ts
 * normalizeEnglish("Dr. Smith paid $3.50 on 2024-03-05 at 9:30 am.");
 * // "Doctor Smith paid three dollars and fifty cents on March fifth, twenty twenty-four at nine thirty a m."
 * ```
 *
 * @param text raw text
 * @returns the text with every covered pattern written out in words
 */
export function normalizeEnglish(text: string): string {
  let out = normalizeWeb(text);
  out = normalizeDatesAndTimes(out);
  out = normalizeAmounts(out);
  out = normalizeAbbreviations(out);
  out = normalizeNumbers(out);
  return out.replace(/[ \t]{2,}/g, " ").replace(/ +([,.;:!?])/g, "$1").trim();
}

/**
 * Applies the requested normaliser, or returns the text unchanged when none is requested.
 *
 * @example
 * ```ts
 * normalizeText("5%", "en"); // "five percent"
 * normalizeText("5%", undefined); // "5%"
 * ```
 */
export function normalizeText(text: string, language: NormalizeLanguage | undefined): string {
  if (language === undefined) return text;
  if (language === "en") return normalizeEnglish(text);
  throw new PocketTtsError("invalid_option", `unknown normalize language "${language}" (supported: "en")`);
}
