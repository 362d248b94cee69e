/**
 * Common English abbreviations and symbols: titles ("Dr." → "Doctor"), Latin ("e.g." → "for example"), street
 * types, "No. 5", and `&`, `+`, `=`, `@`, `#`, `×`, `÷`.
 *
 * @module
 */

/** Abbreviations that always expand (the period is part of the abbreviation). */
const ABBREVIATIONS: Record<string, string> = {
  "Mr.": "Mister",
  "Mrs.": "Missus",
  "Ms.": "Miz",
  "Dr.": "Doctor",
  "Prof.": "Professor",
  "Jr.": "Junior",
  "Sr.": "Senior",
  "Capt.": "Captain",
  "Gen.": "General",
  "Gov.": "Governor",
  "Sen.": "Senator",
  "Rep.": "Representative",
  "Lt.": "Lieutenant",
  "Sgt.": "Sergeant",
  "Mt.": "Mount",
  "Ave.": "Avenue",
  "Rd.": "Road",
  "Blvd.": "Boulevard",
  "Ln.": "Lane",
  "Inc.": "Incorporated",
  "Ltd.": "Limited",
  "Corp.": "Corporation",
  "Dept.": "Department",
  "Univ.": "University",
  "approx.": "approximately",
  "vs.": "versus",
  "e.g.": "for example",
  "i.e.": "that is",
  "etc.": "et cetera",
  "a.k.a.": "also known as",
  "cf.": "compare",
  "Fig.": "Figure",
  "fig.": "figure",
  "Vol.": "Volume",
  "vol.": "volume",
  "Ch.": "Chapter",
  "ch.": "chapter",
  "p.": "page",
  "pp.": "pages",
};

/** Abbreviations that may end a sentence: their period is kept when the sentence ends there. */
const SENTENCE_FINAL = new Set(["etc.", "Inc.", "Ltd.", "Corp.", "Jr.", "Sr."]);

const SYMBOLS: [RegExp, string][] = [
  [/\s*&\s*/g, " and "],
  [/(?<=\d)x(?=\d)/g, " by "],
  [/(?<=\d)\s+x\s+(?=\d)/g, " times "],
  [/\s*×\s*/g, " times "],
  [/\s*÷\s*/g, " divided by "],
  [/\s+\+\s+/g, " plus "],
  [/\s+=\s+/g, " equals "],
  [/\s+@\s+/g, " at "],
  [/#(?=\d)/g, "number "],
  [/(?<=\s|^)#(?=[A-Za-z])/g, "hashtag "],
];

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const ABBREVIATION = new RegExp(
  `(?<![\\w.])(${Object.keys(ABBREVIATIONS).map(escapeRegExp).join("|")})(?=(\\s+\\S)?)`,
  "g",
);

/**
 * Expands abbreviations and speaks symbols. "St." is "Saint" before a capitalised name and "Street" otherwise;
 * "No." is "number" before a digit.
 *
 * @example
 * ```ts
 * normalizeAbbreviations("Dr. Lee & Mr. Kim"); // "Doctor Lee and Mister Kim"
 * ```
 */
export function normalizeAbbreviations(text: string): string {
  let out = text.replace(ABBREVIATION, (abbr: string, _a, following: string | undefined, offset: number) => {
    const words = ABBREVIATIONS[abbr];
    // A sentence-final abbreviation keeps its period at the end of the text or before a capitalised word.
    const endsSentence = SENTENCE_FINAL.has(abbr) &&
      (following === undefined ? text.slice(offset + abbr.length).trim() === "" : /[A-Z]$/.test(following));
    return endsSentence ? `${words}.` : words;
  });
  out = out
    .replace(/(?<![\w.])St\.(?=\s+[A-Z])/g, "Saint")
    .replace(/(?<=[A-Za-z]\s)St\./g, "Street")
    .replace(/(?<![\w.])No\.(?=\s*\d)/g, "number")
    .replace(/(?<![\w.])no\.(?=\s*\d)/g, "number");
  for (const [pattern, words] of SYMBOLS) out = out.replace(pattern, words);
  return out;
}
