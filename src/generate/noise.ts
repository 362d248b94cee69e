/**
 * The seeded Gaussian noise that starts each FlowLM call's flow decoding: x₀ = N(0, 1) · √temperature, 32 values
 * per call (the reference draws one such vector for every FlowLM call, including the prefills whose output is
 * discarded; see the golden README §2.1).
 *
 * The stream is defined exactly, so a seed gives the same values in every runtime:
 *
 * 1. **Uniforms**: mulberry32 with a 32-bit state. Each output `r` (an unsigned 32-bit integer) becomes
 *    `u = (r + 0.5) / 2³²`, which lies strictly inside (0, 1).
 * 2. **Normals**: Box–Muller on consecutive uniform pairs `(u₁, u₂)`:
 *    `ρ = √(−2·ln u₁)`, `z₀ = ρ·cos(2π·u₂)`, `z₁ = ρ·sin(2π·u₂)`, emitted in that order, in float64.
 *    `ln`, `cos` and `sin` are computed here from `+ − × ÷` only (series evaluated in a fixed order), not with
 *    `Math.log`/`Math.cos`, whose last bit differs between engines; `√` is IEEE `Math.sqrt`.
 * 3. **Scaling**: `x = f32(z · √temperature)` (the product in float64, then rounded to float32). Temperature 0
 *    gives exact zeros. With a `clamp`, values with `|x| > clamp` are redrawn (a truncated normal by rejection).
 *
 * The reference uses torch's generator, so its noise cannot be reproduced bit for bit; tests inject the reference's
 * rows instead (the FlowLM calls accept x₀ directly).
 *
 * @module
 */

import { ConfigError } from "../errors.ts";

const TWO_POW_32 = 4294967296;
const LN2 = 0.6931471805599453;

/**
 * mulberry32: a 32-bit-state PRNG returning unsigned 32-bit integers. Same sequence in every runtime (integer
 * arithmetic only).
 */
export class Mulberry32 {
  #a: number;

  /**
   * A generator at the start of the stream of `seed`.
   *
   * @param seed any integer; only its low 32 bits are used
   */
  constructor(seed: number) {
    this.#a = seed >>> 0;
  }

  /** The next unsigned 32-bit output. */
  nextUint32(): number {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(this.#a ^ (this.#a >>> 15), this.#a | 1);
    t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** The next uniform in (0, 1): `(r + 0.5) / 2³²`. */
  nextUniform(): number {
    return (this.nextUint32() + 0.5) / TWO_POW_32;
  }
}

const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0; // index of the high word

/**
 * Natural logarithm of a positive, finite, normal float64, from arithmetic only: `x = m·2ᵉ` with
 * `m ∈ [√½, √2)`, `ln m = 2·atanh(s)` with `s = (m − 1)/(m + 1)` summed as a series to s²³. Error below 2e-16
 * relative; identical in every runtime.
 */
export function detLog(x: number): number {
  bits[0] = x;
  let e = ((words[HI] >>> 20) & 0x7ff) - 1023;
  words[HI] = (words[HI] & 0x800fffff) | 0x3ff00000; // mantissa scaled into [1, 2)
  let m = bits[0];
  if (m > Math.SQRT2) {
    m /= 2;
    e += 1;
  }
  const s = (m - 1) / (m + 1);
  const s2 = s * s;
  // atanh(s)/s = Σ s^(2k)/(2k+1), k = 0…11, Horner from the highest term
  let p = 1 / 23;
  for (let k = 10; k >= 0; k--) p = p * s2 + 1 / (2 * k + 1);
  return e * LN2 + 2 * s * p;
}

/** `[cos(2π·u), sin(2π·u)]` for `u ∈ [0, 1)`: quadrant from `4u` (exact), Taylor series on `[0, π/2)`. */
export function detCosSinTurn(u: number): [number, number] {
  const v = 4 * u;
  const q = Math.floor(v);
  const a = (v - q) * (Math.PI / 2);
  const a2 = a * a;
  // sin a = a·Σ (−a²)^k/(2k+1)!, cos a = Σ (−a²)^k/(2k)!, k = 0…12, Horner from the highest term
  let sp = 0, cp = 0;
  for (let k = 12; k >= 0; k--) {
    sp = sp * -a2 + 1 / FACT[2 * k + 1];
    cp = cp * -a2 + 1 / FACT[2 * k];
  }
  const sin = a * sp, cos = cp;
  switch (q & 3) {
    case 0:
      return [cos, sin];
    case 1:
      return [-sin, cos];
    case 2:
      return [-cos, -sin];
    default:
      return [sin, -cos];
  }
}

const FACT: number[] = (() => {
  const f = [1];
  for (let i = 1; i <= 26; i++) f.push(f[i - 1] * i);
  return f;
})();

/** Options of {@link GaussianNoise}. */
export interface GaussianNoiseOptions {
  /** Redraw values whose magnitude exceeds this (after scaling): a truncated normal. Default: no clamp. */
  clamp?: number;
}

/**
 * The seeded noise stream: each {@link next} call fills one x₀ (by default 32 values) with
 * `f32(N(0,1)·√temperature)` (see the module notes for the exact definition).
 *
 * @example
 * ```ts
 * const noise = new GaussianNoise(42, 0.7);
 * const x0 = noise.next(new Float32Array(32));
 * ```
 */
export class GaussianNoise {
  /** The seed the stream started from. */
  readonly seed: number;
  /** Variance scale: values are N(0, temperature). */
  readonly temperature: number;
  /** Magnitude limit, or `undefined`. */
  readonly clamp: number | undefined;
  #rng: Mulberry32;
  #std: number;
  #spare: number | null = null;

  /**
   * A stream at its start.
   *
   * @param seed any integer (low 32 bits used)
   * @param temperature variance scale (≥ 0); the reference's default is 0.7
   * @param options optional clamp
   * @throws {RangeError} for a negative or non-finite temperature or a non-positive clamp
   */
  constructor(seed: number, temperature: number, options: GaussianNoiseOptions = {}) {
    if (!(temperature >= 0) || !Number.isFinite(temperature)) {
      throw new RangeError(`temperature must be a finite number ≥ 0, got ${temperature}`);
    }
    if (options.clamp !== undefined && !(options.clamp > 0)) {
      throw new RangeError(`clamp must be > 0, got ${options.clamp}`);
    }
    this.seed = seed;
    this.temperature = temperature;
    this.clamp = options.clamp;
    this.#rng = new Mulberry32(seed);
    this.#std = Math.sqrt(temperature);
  }

  /** The next standard normal (float64). */
  nextStandard(): number {
    if (this.#spare !== null) {
      const z = this.#spare;
      this.#spare = null;
      return z;
    }
    const u1 = this.#rng.nextUniform(), u2 = this.#rng.nextUniform();
    const rho = Math.sqrt(-2 * detLog(u1));
    const [c, s] = detCosSinTurn(u2);
    this.#spare = rho * s;
    return rho * c;
  }

  /** Fills `out` with the next values of the stream and returns it. */
  next(out: Float32Array = new Float32Array(32)): Float32Array {
    for (let i = 0; i < out.length; i++) {
      if (this.temperature === 0) {
        out[i] = 0;
        continue;
      }
      let x = Math.fround(this.nextStandard() * this.#std);
      if (this.clamp !== undefined) {
        while (Math.abs(x) > this.clamp) x = Math.fround(this.nextStandard() * this.#std);
      }
      out[i] = x;
    }
    return out;
  }
}

/**
 * A `noise` option that replays recorded x₀ rows (`rows` holds `[n, width]` values) in FlowLM call order, e.g. the
 * reference's own noise in the golden tests or the CLI's `--noise-file`. `used()` tells how many rows were consumed.
 *
 * @example
 * ```ts
 * const replay = replayNoise(recordedRows);
 * await tts.generate(text, { noise: replay.noise });
 * ```
 * @throws {ConfigError} (from `noise`) when a call finds no row left
 */
export function replayNoise(
  rows: Float32Array,
  width = 32,
): { noise: (x0: Float32Array) => void; used: () => number } {
  let next = 0;
  const count = Math.floor(rows.length / width);
  return {
    noise: (x0) => {
      if (next >= count) throw new ConfigError(`the recorded noise has only ${count} rows`);
      x0.set(rows.subarray(next * width, (next + 1) * width));
      next++;
    },
    used: () => next,
  };
}
