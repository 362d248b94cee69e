/**
 * Amounts with a meaning: currency ("$3.50" → "three dollars and fifty cents"), percentages ("5%" → "five
 * percent") and measurements after a number ("5 km" → "five kilometers", "20°C" → "twenty degrees Celsius").
 *
 * @module
 */

import { cardinalWords, numberWords } from "./en_numbers.ts";

interface Currency {
  one: string;
  many: string;
  centOne: string;
  centMany: string;
}

const CURRENCIES: Record<string, Currency> = {
  "$": { one: "dollar", many: "dollars", centOne: "cent", centMany: "cents" },
  "€": { one: "euro", many: "euros", centOne: "cent", centMany: "cents" },
  "£": { one: "pound", many: "pounds", centOne: "penny", centMany: "pence" },
  "¥": { one: "yen", many: "yen", centOne: "sen", centMany: "sen" },
  "₹": { one: "rupee", many: "rupees", centOne: "paisa", centMany: "paise" },
};

/** Unit symbols read after a number: [singular, plural]. Case matters (`m` metre, `M` is not a unit here). */
const UNITS: Record<string, [string, string]> = {
  km: ["kilometer", "kilometers"],
  m: ["meter", "meters"],
  cm: ["centimeter", "centimeters"],
  mm: ["millimeter", "millimeters"],
  mi: ["mile", "miles"],
  ft: ["foot", "feet"],
  yd: ["yard", "yards"],
  kg: ["kilogram", "kilograms"],
  g: ["gram", "grams"],
  mg: ["milligram", "milligrams"],
  lb: ["pound", "pounds"],
  lbs: ["pound", "pounds"],
  oz: ["ounce", "ounces"],
  l: ["liter", "liters"],
  L: ["liter", "liters"],
  ml: ["milliliter", "milliliters"],
  mL: ["milliliter", "milliliters"],
  mph: ["mile per hour", "miles per hour"],
  "km/h": ["kilometer per hour", "kilometers per hour"],
  kph: ["kilometer per hour", "kilometers per hour"],
  h: ["hour", "hours"],
  hr: ["hour", "hours"],
  hrs: ["hour", "hours"],
  min: ["minute", "minutes"],
  s: ["second", "seconds"],
  sec: ["second", "seconds"],
  ms: ["millisecond", "milliseconds"],
  Hz: ["hertz", "hertz"],
  kHz: ["kilohertz", "kilohertz"],
  MHz: ["megahertz", "megahertz"],
  GHz: ["gigahertz", "gigahertz"],
  W: ["watt", "watts"],
  kW: ["kilowatt", "kilowatts"],
  kWh: ["kilowatt hour", "kilowatt hours"],
  V: ["volt", "volts"],
  KB: ["kilobyte", "kilobytes"],
  kB: ["kilobyte", "kilobytes"],
  MB: ["megabyte", "megabytes"],
  GB: ["gigabyte", "gigabytes"],
  TB: ["terabyte", "terabytes"],
  "°C": ["degree Celsius", "degrees Celsius"],
  "°F": ["degree Fahrenheit", "degrees Fahrenheit"],
  "°": ["degree", "degrees"],
};

const SCALE_WORDS = "thousand|million|billion|trillion";
const NUMBER = String.raw`\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+`;
const CURRENCY = new RegExp(
  String.raw`(-|−)?([$€£¥₹])(${NUMBER})(?:\s?(${SCALE_WORDS}|[kKmMbB]n?)\b)?`,
  "g",
);
const PERCENT = new RegExp(String.raw`(?<![\w.])([-−+]?)(${NUMBER})\s?%`, "g");
const unitAlternatives = Object.keys(UNITS)
  .sort((a, b) => b.length - a.length)
  .map((u) => u.replace(/[/]/g, "\\/"))
  .join("|");
// `°` units may touch the number; letter units follow it with or without a space, and must end the word.
const MEASURE = new RegExp(
  String.raw`(?<![\w.])([-−]?)(${NUMBER})\s?(${unitAlternatives})(?![\w/])`,
  "g",
);
const SHORT_SCALES: Record<string, string> = { k: "thousand", m: "million", b: "billion", bn: "billion" };

function isOne(amount: string): boolean {
  return amount === "1";
}

function currencyWords(sign: string | undefined, symbol: string, amount: string, scale: string | undefined): string {
  const c = CURRENCIES[symbol];
  const minus = sign ? "minus " : "";
  if (scale !== undefined) {
    const scaleWord = SHORT_SCALES[scale.toLowerCase()] ?? scale;
    return `${minus}${numberWords(amount)} ${scaleWord} ${c.many}`;
  }
  const [integer, fraction = ""] = amount.replaceAll(",", "").split(".");
  if (fraction.length > 2) return `${minus}${numberWords(amount)} ${c.many}`;
  const units = Number(integer || "0");
  const cents = fraction === "" ? 0 : Number(fraction.padEnd(2, "0"));
  const main = `${cardinalWords(integer || "0")} ${units === 1 && integer.length <= 1 ? c.one : c.many}`;
  if (cents === 0) return minus + main;
  const sub = `${cardinalWords(String(cents))} ${cents === 1 ? c.centOne : c.centMany}`;
  return minus + (units === 0 ? sub : `${main} and ${sub}`);
}

/**
 * Replaces currency amounts, percentages and number + unit measurements with words.
 *
 * @example
 * ```ts
 * normalizeAmounts("It costs $1.05 and weighs 2 kg."); // "It costs one dollar and five cents and weighs two kilograms."
 * ```
 */
export function normalizeAmounts(text: string): string {
  return text
    .replace(
      CURRENCY,
      (_all, sign, symbol: string, amount: string, scale: string | undefined) =>
        currencyWords(sign, symbol, amount, scale),
    )
    .replace(PERCENT, (_all, sign: string, amount: string) => `${numberWords(sign + amount)} percent`)
    .replace(MEASURE, (_all, sign: string, amount: string, unit: string) => {
      const [one, many] = UNITS[unit];
      return `${numberWords(sign + amount)} ${isOne(amount) && sign === "" ? one : many}`;
    });
}
