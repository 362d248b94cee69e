/**
 * Dates and times read aloud in US English: "2024-03-05" and "3/5/2024" → "March fifth, twenty twenty-four",
 * "Jan. 5" → "January fifth", "5 January 2024" → "the fifth of January, twenty twenty-four", "3:05 pm" →
 * "three oh five p m", "15:00" → "fifteen hundred".
 *
 * @module
 */

import { cardinalWords, decadeWords, ordinalWords, yearWords } from "./en_numbers.ts";

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const MONTH_ABBREVIATIONS = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec";
const MONTH_NAME = `(${MONTHS.join("|")}|(?:${MONTH_ABBREVIATIONS})\\.?)`;

function monthName(text: string): string {
  const key = text.replace(/\.$/, "").slice(0, 3).toLowerCase();
  return MONTHS.find((m) => m.slice(0, 3).toLowerCase() === key)!;
}

function validDay(day: string): boolean {
  return Number(day) >= 1 && Number(day) <= 31;
}

function monthDayYear(month: number, day: string, year?: string): string {
  const head = `${MONTHS[month - 1]} ${ordinalWords(day)}`;
  return year === undefined ? head : `${head}, ${yearWords(year)}`;
}

const ISO_DATE = /\b(\d{4})-(\d{2})-(\d{2})\b/g;
const SLASH_DATE = /\b(\d{1,2})\/(\d{1,2})\/(\d{4})\b/g;
const MONTH_DAY = new RegExp(`\\b${MONTH_NAME} (\\d{1,2})(?:st|nd|rd|th)?\\b(?:,? (\\d{4})\\b)?`, "g");
const DAY_MONTH = new RegExp(
  `\\b(?:([Tt]he) )?(\\d{1,2})(?:st|nd|rd|th)? (?:of )?${MONTH_NAME}(?:,? (\\d{4})\\b)?`,
  "g",
);
const MONTH_YEAR = new RegExp(`\\b${MONTH_NAME} (\\d{4})\\b`, "g");
const DECADE = /\b(1[1-9]\d0|20\d0)s\b/g;
// "p.m." swallows its own periods; when it ends the text or a sentence (a capital follows), one period stays.
const MERIDIEM = String.raw`\s?([AaPp])(?:\.[Mm]\.(?=(\s+[A-Z]|\s*$))|\.[Mm]\.|[Mm]\b)`;
const TIME = new RegExp(String.raw`\b(\d{1,2}):(\d{2})(?::(\d{2}))?(?:${MERIDIEM})?`, "g");
const HOUR_MERIDIEM = new RegExp(String.raw`\b(\d{1,2})${MERIDIEM}`, "g");

function meridiem(letter: string | undefined, sentenceEnd: string | undefined): string {
  return letter === undefined ? "" : ` ${letter.toLowerCase()} m${sentenceEnd !== undefined ? "." : ""}`;
}

function timeWords(hour: string, minute: string, second: string | undefined, ampm?: string, end?: string): string {
  const h = cardinalWords(hour);
  const m = Number(minute);
  let words: string;
  if (m === 0 && second === undefined) {
    words = ampm !== undefined
      ? h
      : Number(hour) > 12 || hour.length === 2 && hour[0] === "0"
      ? `${h} hundred`
      : `${h} o'clock`;
  } else {
    words = `${h} ${m < 10 ? `oh ${cardinalWords(minute)}` : cardinalWords(minute)}`;
  }
  if (second !== undefined) words += ` and ${cardinalWords(second)} seconds`;
  return words + meridiem(ampm, end);
}

/**
 * Replaces dates, decades and clock times with their spoken form. Numeric dates are month first (US); a match
 * whose month or day is out of range is left alone.
 *
 * @example
 * ```ts
 * normalizeDatesAndTimes("On 2024-07-04 at 9:30 am"); // "On July fourth, twenty twenty-four at nine thirty a m"
 * ```
 */
export function normalizeDatesAndTimes(text: string): string {
  return text
    .replace(ISO_DATE, (all, y: string, m: string, d: string) => {
      const month = Number(m);
      return month >= 1 && month <= 12 && validDay(d) ? monthDayYear(month, d, y) : all;
    })
    .replace(SLASH_DATE, (all, m: string, d: string, y: string) => {
      const month = Number(m);
      return month >= 1 && month <= 12 && validDay(d) ? monthDayYear(month, d, y) : all;
    })
    .replace(MONTH_DAY, (all, name: string, d: string, y: string | undefined) => {
      if (!validDay(d)) return all;
      return monthDayYear(MONTHS.indexOf(monthName(name)) + 1, d, y);
    })
    .replace(DAY_MONTH, (all, the: string | undefined, d: string, name: string, y: string | undefined) => {
      if (!validDay(d)) return all;
      const head = `${the ?? "the"} ${ordinalWords(d)} of ${monthName(name)}`;
      return y === undefined ? head : `${head}, ${yearWords(y)}`;
    })
    .replace(MONTH_YEAR, (_all, name: string, y: string) => `${monthName(name)} ${yearWords(y)}`)
    .replace(DECADE, (_all, y: string) => decadeWords(y))
    .replace(TIME, (all, h: string, m: string, s?: string, ampm?: string, end?: string) => {
      if (Number(h) > 24 || Number(m) > 59 || (s !== undefined && Number(s) > 59)) return all;
      return timeWords(h, m, s, ampm, end);
    })
    .replace(HOUR_MERIDIEM, (all, h: string, ampm: string, end?: string) => {
      if (Number(h) < 1 || Number(h) > 12) return all;
      return cardinalWords(h) + meridiem(ampm, end);
    });
}
