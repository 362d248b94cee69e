/**
 * Rational resampling exactly as `scipy.signal.resample_poly(x, up, down)` with its defaults, which is what the
 * reference uses to bring a voice prompt to 24 kHz (its `convert_audio`).
 *
 * SciPy's algorithm, step by step:
 * - `up` and `down` are divided by their gcd;
 * - the filter is `firwin(2·half + 1, 1/max(up, down), window=("kaiser", 5.0))` with `half = 10·max(up, down)`: a
 *   windowed sinc `c·sinc(c·m)` (`m` = tap − half) times a Kaiser window (β 5), normalised to unit sum (DC gain 1),
 *   then multiplied by `up` (the gain lost to zero-stuffing);
 * - `upfirdn` zero-stuffs the input by `up`, convolves with the filter and keeps every `down`-th sample, with zeros
 *   outside the input (`padtype="constant"`); SciPy pads the filter so that output `i` is centred on input time
 *   `i·down/up`: `y[i] = Σ_m x[m]·h[half + i·down − m·up]`;
 * - the output has `ceil(n·up / down)` samples.
 *
 * Here that sum is computed polyphase: the taps `h[half + i·down − m·up]` for one output all share the phase
 * `(half + i·down) mod up`, so each output reads only its ≈ `2·half/up` non-zero taps. For float32 input SciPy casts
 * the filter to float32 and sums in float32 (`upfirdn`'s loop, oldest sample first); so does this, with every product
 * and partial sum rounded by `Math.fround`, which makes the result equal SciPy's bit for bit up to the last-bit
 * differences a float64 `sin` may make in the filter design.
 *
 * @module
 */
import { InvalidAudioError } from "../errors.ts";

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0 (power series; converges fast for the β of a window). */
function besselI0(x: number): number {
  const q = (x * x) / 4;
  let term = 1;
  let sum = 1;
  for (let k = 1; term > sum * 1e-17; k++) {
    term *= q / (k * k);
    sum += term;
  }
  return sum;
}

/** `sinc(x) = sin(πx)/(πx)`, as NumPy computes it. */
function sinc(x: number): number {
  if (x === 0) return 1;
  const y = Math.PI * x;
  return Math.sin(y) / y;
}

/**
 * SciPy's `firwin(taps, cutoff, window=("kaiser", beta))` low-pass design (cutoff relative to Nyquist, odd tap count,
 * `scale=True`: unit gain at DC).
 */
function kaiserLowpass(taps: number, cutoff: number, beta: number): Float64Array {
  const h = new Float64Array(taps);
  const alpha = (taps - 1) / 2;
  let sum = 0;
  for (let n = 0; n < taps; n++) {
    const m = n - alpha;
    const r = m / alpha;
    const window = besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / besselI0(beta);
    h[n] = cutoff * sinc(cutoff * m) * window;
    sum += h[n];
  }
  for (let n = 0; n < taps; n++) h[n] /= sum;
  return h;
}

/** A resampling filter split into its `up` phases, each stored in the order the convolution reads it. */
interface PolyphaseFilter {
  half: number;
  /**
   * Phase `p` holds the float32 taps `up·h[p + k·up]` for k = K−1 … 0 (flipped, as SciPy stores them), so that a sum
   * runs from the oldest input sample to the newest, in SciPy's order.
   */
  phases: Float32Array[];
}

const filterCache = new Map<string, PolyphaseFilter>();

function polyphaseFilter(up: number, down: number): PolyphaseFilter {
  const key = `${up}/${down}`;
  let filter = filterCache.get(key);
  if (filter) return filter;
  const maxRate = Math.max(up, down);
  const half = 10 * maxRate;
  const h = kaiserLowpass(2 * half + 1, 1 / maxRate, 5.0);
  const phases: Float32Array[] = [];
  for (let p = 0; p < up; p++) {
    const taps = Math.ceil((h.length - p) / up);
    const phase = new Float32Array(taps);
    // SciPy casts the design to the input's dtype (float32), then multiplies by `up` in float32.
    for (let k = 0; k < taps; k++) phase[taps - 1 - k] = Math.fround(Math.fround(h[p + k * up]) * up);
    phases.push(phase);
  }
  filter = { half, phases };
  if (filterCache.size >= 16) filterCache.delete(filterCache.keys().next().value!);
  filterCache.set(key, filter);
  return filter;
}

function checkFactor(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidAudioError("invalid_audio", `invalid resampling ${name} ${value}: expected a positive integer`);
  }
}

/**
 * Resample by the rational factor `up/down`, equal to `scipy.signal.resample_poly(x, up, down)` with its defaults
 * (Kaiser-windowed FIR, β 5.0, half-length 10·max(up, down) after dividing both by their gcd; zero padding; output
 * length `ceil(x.length · up / down)`). See the module description for the algorithm.
 *
 * @example
 * ```ts
 * const at24k = resamplePoly(samples22050, 160, 147); // what the reference does to a 22.05 kHz prompt
 * ```
 *
 * @param x the input samples
 * @param up upsampling factor (a positive integer)
 * @param down downsampling factor (a positive integer)
 * @returns the resampled signal (a copy when `up/down` reduces to 1)
 * @throws {InvalidAudioError} `"invalid_audio"` when a factor is not a positive integer
 */
export function resamplePoly(x: Float32Array, up: number, down: number): Float32Array {
  checkFactor("up factor", up);
  checkFactor("down factor", down);
  const g = gcd(up, down);
  up /= g;
  down /= g;
  if (up === 1 && down === 1) return x.slice();
  const { half, phases } = polyphaseFilter(up, down);
  const n = x.length;
  const outLength = Math.ceil((n * up) / down);
  const out = new Float32Array(outLength);
  for (let i = 0; i < outLength; i++) {
    // y[i] = Σ_m x[m]·h[t − m·up] with t = half + i·down: the taps of phase t mod up. SciPy's float32 path rounds
    // every product and every partial sum to float32, adding from the oldest input sample to the newest.
    const t = half + i * down;
    const p = t % up;
    const phase = phases[p];
    const first = (t - p) / up - phase.length + 1; // the input index of the phase's first (flipped) tap
    const jStart = first < 0 ? -first : 0; // zero padding before the input…
    const jEnd = Math.min(phase.length, n - first); // …and after it
    let acc = 0;
    for (let j = jStart; j < jEnd; j++) acc = Math.fround(acc + Math.fround(phase[j] * x[first + j]));
    out[i] = acc;
  }
  return out;
}

/**
 * Resample from one sample rate to another with {@link resamplePoly} (`up/down = to/from` reduced by their gcd),
 * the reference's `convert_audio`. Equal rates return a copy.
 *
 * @example
 * ```ts
 * const { samples, sampleRate } = await decodeAudio(await Deno.readFile("me.flac"));
 * const prompt = resample(samples, sampleRate, 24000);
 * ```
 *
 * @param samples mono input samples
 * @param fromRate their sample rate (a positive integer)
 * @param toRate the wanted sample rate (a positive integer)
 * @returns the samples at `toRate`
 * @throws {InvalidAudioError} `"invalid_audio"` when a rate is not a positive integer
 */
export function resample(samples: Float32Array, fromRate: number, toRate: number): Float32Array {
  checkFactor("source rate", fromRate);
  checkFactor("target rate", toRate);
  return resamplePoly(samples, toRate, fromRate);
}
