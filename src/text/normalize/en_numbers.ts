/**
 * English number words: cardinals, ordinals, decimals, years and digit-by-digit reading, from digit strings
 * (so values beyond 2^53 keep every digit). US style: no "and" after hundreds, hyphenated tens ("twenty-one").
 *
 * @module
 */

const ONES = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
  "ten",
  "eleven",
  "twelve",
  "thirteen",
  "fourteen",
  "fifteen",
  "sixteen",
  "seventeen",
  "eighteen",
  "nineteen",
];
const TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
/** Scale words for groups of three digits, up to 10^33. */
const SCALES = [
  "",
  "thousand",
  "million",
  "billion",
  "trillion",
  "quadrillion",
  "quintillion",
  "sextillion",
  "septillion",
  "octillion",
  "nonillion",
  "decillion",
];
/** Ordinal forms of the words a cardinal can end with. */
const ORDINAL_WORDS: Record<string, string> = {
  zero: "zeroth",
  one: "first",
  two: "second",
  three: "third",
  five: "fifth",
  eight: "eighth",
  nine: "ninth",
  twelve: "twelfth",
};

function below100(n: number): string {
  if (n < 20) return ONES[n];
  const tens = TENS[Math.floor(n / 10)];
  return n % 10 === 0 ? tens : `${tens}-${ONES[n % 10]}`;
}

function below1000(n: number): string {
  const hundreds = Math.floor(n / 100);
  const rest = n % 100;
  if (hundreds === 0) return below100(rest);
  return rest === 0 ? `${ONES[hundreds]} hundred` : `${ONES[hundreds]} hundred ${below100(rest)}`;
}

/**
 * Reads a string of ASCII digits as a cardinal ("1200" → "one thousand two hundred"). Leading zeros are ignored;
 * numbers of more than 36 digits are read digit by digit.
 *
 * @example
 * ```ts
 * cardinalWords("1000021"); // "one million twenty-one"
 * ```
 */
export function cardinalWords(digits: string): string {
  const trimmed = digits.replace(/^0+(?=\d)/, "");
  if (trimmed.length > SCALES.length * 3) return digitWords(digits);
  const groups: number[] = [];
  for (let end = trimmed.length; end > 0; end -= 3) groups.unshift(Number(trimmed.slice(Math.max(0, end - 3), end)));
  if (groups.every((g) => g === 0)) return "zero";
  const words: string[] = [];
  groups.forEach((g, i) => {
    if (g === 0) return;
    const scale = SCALES[groups.length - 1 - i];
    words.push(scale ? `${below1000(g)} ${scale}` : below1000(g));
  });
  return words.join(" ");
}

/**
 * The ordinal of a cardinal's words: only the last word changes ("twenty-one" → "twenty-first").
 *
 * @example
 * ```ts
 * ordinalWords("102"); // "one hundred second"
 * ```
 */
export function ordinalWords(digits: string): string {
  return toOrdinal(cardinalWords(digits));
}

/** Turns the last word of cardinal words into its ordinal ("forty" → "fortieth"). */
export function toOrdinal(cardinal: string): string {
  const match = /([a-z]+)$/.exec(cardinal)!;
  const last = match[1];
  const ordinal = ORDINAL_WORDS[last] ?? (last.endsWith("y") ? `${last.slice(0, -1)}ieth` : `${last}th`);
  return cardinal.slice(0, match.index) + ordinal;
}

/**
 * Each digit as a word ("007" → "zero zero seven").
 *
 * @example
 * ```ts
 * digitWords("42"); // "four two"
 * ```
 */
export function digitWords(digits: string): string {
  return Array.from(digits, (d) => ONES[Number(d)]).join(" ");
}

/**
 * A decimal number as read aloud: integer part as a cardinal, then "point" and each decimal digit
 * ("3.14" → "three point one four", ".5" → "point five"). Thousands separators (`,`) are ignored.
 *
 * @example
 * ```ts
 * numberWords("-1,234.5"); // "minus one thousand two hundred thirty-four point five"
 * ```
 */
export function numberWords(text: string): string {
  let sign = "";
  let body = text;
  if (body.startsWith("-") || body.startsWith("−")) {
    sign = "minus ";
    body = body.slice(1);
  } else if (body.startsWith("+")) {
    sign = "plus ";
    body = body.slice(1);
  }
  const [integer, fraction] = body.replaceAll(",", "").split(".");
  const head = integer === "" ? "" : cardinalWords(integer);
  const tail = fraction === undefined || fraction === "" ? "" : `point ${digitWords(fraction)}`;
  return sign + [head, tail].filter((s) => s !== "").join(" ");
}

/**
 * A year as spoken: 1100–1999 and 2010–2099 in pairs ("nineteen ninety-nine", "twenty twenty-four", "nineteen oh
 * five", "nineteen hundred"), 2000–2009 as cardinals ("two thousand five"), anything else as a cardinal.
 *
 * @example
 * ```ts
 * yearWords("1984"); // "nineteen eighty-four"
 * ```
 */
export function yearWords(digits: string): string {
  const year = Number(digits);
  if (digits.length !== 4 || year < 1100 || year > 2099 || (year >= 2000 && year < 2010)) return cardinalWords(digits);
  const high = Math.floor(year / 100);
  const low = year % 100;
  if (low === 0) return `${below100(high)} hundred`;
  return `${below100(high)} ${low < 10 ? `oh ${ONES[low]}` : below100(low)}`;
}

/** The plural of a year's or decade's last word ("nineteen ninety" → "nineteen nineties"). */
export function decadeWords(digits: string): string {
  const words = yearWords(digits);
  return words.endsWith("y") ? `${words.slice(0, -1)}ies` : `${words}s`;
}

/**
 * A fraction `n/d` read aloud: "one half", "three quarters", "two thirds", "five eighths".
 *
 * @example
 * ```ts
 * fractionWords("3", "4"); // "three quarters"
 * ```
 */
export function fractionWords(numerator: string, denominator: string): string {
  const n = cardinalWords(numerator);
  const one = Number(numerator) === 1;
  let d: string;
  if (Number(denominator) === 2) d = one ? "half" : "halves";
  else if (Number(denominator) === 4) d = one ? "quarter" : "quarters";
  else d = ordinalWords(denominator) + (one ? "" : "s");
  return `${n} ${d}`;
}
