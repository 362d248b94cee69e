/**
 * The few Python `str` methods the reference's text preparation uses (`strip`, `split`, `isalnum`, `upper`),
 * reproduced on code points with CPython 3.11's character data, since JS `trim()`, `/\s/`, `/\w/` and
 * `toUpperCase()` disagree with them (see {@link ./python_unicode_data.ts}).
 *
 * @module
 */

import { ALNUM_RANGES, UPPER_MULTI, UPPER_SINGLE } from "./python_unicode_data.ts";

/**
 * Python's `str.isspace` set: bidi classes WS, B, S and category Zs. Unlike JS `\s` it includes U+001C–U+001F
 * and U+0085, and excludes U+FEFF.
 */
const PY_WHITESPACE: ReadonlySet<number> = new Set(
  Array.from(
    "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009" +
      "\u200a\u2028\u2029\u202f\u205f\u3000",
    (c) => c.charCodeAt(0),
  ),
);

/** Whether a code point is whitespace for Python (`chr(cp).isspace()`). All of them are in the BMP. */
export function pyIsSpace(cp: number): boolean {
  return PY_WHITESPACE.has(cp);
}

/** Python `str.strip()` with no argument. Whitespace is all BMP, so working on UTF-16 code units is exact. */
export function pyStrip(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && PY_WHITESPACE.has(text.charCodeAt(start))) start++;
  while (end > start && PY_WHITESPACE.has(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/** Python `str.split()` with no argument: runs of whitespace separate words; no empty words. */
export function pySplit(text: string): string[] {
  const words: string[] = [];
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    if (PY_WHITESPACE.has(text.charCodeAt(i))) {
      if (start >= 0) {
        words.push(text.slice(start, i));
        start = -1;
      }
    } else if (start < 0) {
      start = i;
    }
  }
  if (start >= 0) words.push(text.slice(start));
  return words;
}

/** Number of words as Python counts them: `len(text.split())`. */
export function pyWordCount(text: string): number {
  let count = 0;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const space = PY_WHITESPACE.has(text.charCodeAt(i));
    if (!space && !inWord) count++;
    inWord = !space;
  }
  return count;
}

let alnumStarts: Int32Array | undefined;
let alnumEnds: Int32Array | undefined;

function loadAlnum(): [Int32Array, Int32Array] {
  if (alnumStarts === undefined || alnumEnds === undefined) {
    const values = ALNUM_RANGES.split(",").map((v) => parseInt(v, 36));
    const n = values.length / 2;
    alnumStarts = new Int32Array(n);
    alnumEnds = new Int32Array(n);
    let next = 0;
    for (let i = 0; i < n; i++) {
      const start = next + values[2 * i];
      const end = start + values[2 * i + 1];
      alnumStarts[i] = start;
      alnumEnds[i] = end;
      next = end + 1;
    }
  }
  return [alnumStarts, alnumEnds];
}

/** Index of the last entry of a sorted array that is ≤ `cp`, or −1. */
function floorIndex(sorted: Int32Array, cp: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] <= cp) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/**
 * Whether a code point is alphanumeric for CPython 3.11 (`chr(cp).isalnum()`: a letter of category L*, or a
 * character with a numeric value such as `²`, `½`, `Ⅻ`). Combining marks, ZWSP, `_` and symbols are not.
 */
export function pyIsAlnum(cp: number): boolean {
  if (cp < 0x80) {
    return (cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a);
  }
  const [starts, ends] = loadAlnum();
  const i = floorIndex(starts, cp);
  return i >= 0 && cp <= ends[i];
}

interface UpperTables {
  starts: Int32Array;
  counts: Int32Array;
  strides: Int32Array;
  deltas: Int32Array;
  multi: Map<number, string>;
}

let upperTables: UpperTables | undefined;

function loadUpper(): UpperTables {
  if (upperTables === undefined) {
    const values = UPPER_SINGLE.split(",").map((v) => parseInt(v, 36));
    const n = values.length / 4;
    const tables: UpperTables = {
      starts: new Int32Array(n),
      counts: new Int32Array(n),
      strides: new Int32Array(n),
      deltas: new Int32Array(n),
      multi: new Map(),
    };
    let start = 0;
    for (let i = 0; i < n; i++) {
      start += values[4 * i];
      tables.starts[i] = start;
      tables.counts[i] = values[4 * i + 1];
      tables.strides[i] = values[4 * i + 2];
      tables.deltas[i] = values[4 * i + 3];
    }
    for (const entry of UPPER_MULTI.split(",")) {
      const [cp, mapped] = entry.split(":");
      tables.multi.set(parseInt(cp, 36), String.fromCodePoint(...mapped.split(".").map((v) => parseInt(v, 36))));
    }
    upperTables = tables;
  }
  return upperTables;
}

/**
 * Python's `chr(cp).upper()` (full case mapping, CPython 3.11): `ß` → `SS`, `ﬁ` → `FI`, `ŉ` → `ʼN`, titlecase
 * `ǅ` → `Ǆ`, `µ` → `Μ`; characters without a mapping come back unchanged.
 */
export function pyUpperChar(cp: number): string {
  if (cp < 0x80) return String.fromCharCode(cp >= 0x61 && cp <= 0x7a ? cp - 32 : cp);
  const tables = loadUpper();
  const multi = tables.multi.get(cp);
  if (multi !== undefined) return multi;
  const i = floorIndex(tables.starts, cp);
  if (i >= 0) {
    const offset = cp - tables.starts[i];
    if (offset % tables.strides[i] === 0 && offset / tables.strides[i] < tables.counts[i]) {
      return String.fromCodePoint(cp + tables.deltas[i]);
    }
  }
  return String.fromCodePoint(cp);
}
