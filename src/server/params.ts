/**
 * Request fields shared by the endpoints: the input text (with its length limit) and the generation extensions
 * `seed`, `temperature`, `lsd_steps`. Each bad value is a 400 naming the field; JSON numbers and form strings are
 * both accepted.
 *
 * @module
 */

import { HttpError } from "./errors.ts";

/** The generation extensions of a request. */
export interface GenerationParams {
  seed?: number;
  temperature?: number;
  lsdSteps?: number;
}

function bad(param: string, what: string): HttpError {
  return new HttpError(400, "invalid_value", `${param} must be ${what}`, { param });
}

/** A number field (a JSON number, or a numeric form string), `undefined` when absent or null. */
export function numberField(value: unknown, param: string): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value.trim()) : NaN;
  if (!Number.isFinite(n) || (typeof value === "string" && value.trim() === "")) throw bad(param, "a number");
  return n;
}

/** The text to speak: a non-blank string of at most `maxChars` characters. */
export function inputText(value: unknown, param: string, maxChars: number): string {
  if (typeof value !== "string") throw bad(param, "a string (the text to speak)");
  if (value.trim() === "") {
    throw new HttpError(400, "empty_text", `${param} is empty: give the text to speak`, { param });
  }
  if (value.length > maxChars) {
    throw new HttpError(
      400,
      "input_too_long",
      `${param} has ${value.length} characters; this server accepts at most ${maxChars} per request`,
      { param },
    );
  }
  return value;
}

/** `seed` (an integer in [0, 2³²)), `temperature` ([0, 5]) and `lsd_steps` (an integer in [1, 64]). */
export function generationParams(get: (name: string) => unknown): GenerationParams {
  const seed = numberField(get("seed"), "seed");
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32)) {
    throw bad("seed", "an integer from 0 to 4294967295");
  }
  const temperature = numberField(get("temperature"), "temperature");
  if (temperature !== undefined && !(temperature >= 0 && temperature <= 5)) throw bad("temperature", "from 0 to 5");
  const lsdSteps = numberField(get("lsd_steps"), "lsd_steps");
  if (lsdSteps !== undefined && !(Number.isInteger(lsdSteps) && lsdSteps >= 1 && lsdSteps <= 64)) {
    throw bad("lsd_steps", "an integer from 1 to 64");
  }
  return { seed, temperature, lsdSteps };
}
