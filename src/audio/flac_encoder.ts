/**
 * A small streaming FLAC encoder (mono, 16-bit): no npm FLAC encoder is pure, maintained and small, and FLAC's
 * lossless core is short. Per block of 1920 samples (80 ms at 24 kHz, one model frame, so streaming adds no delay) it
 * writes a CONSTANT subframe for silence, else the best of the FIXED predictors of order 0–4 with partitioned Rice
 * residuals (partition order and parameters chosen by exact bit count), or VERBATIM when nothing is smaller. The
 * STREAMINFO block leaves the total length and MD5 at 0 ("unknown"), as a stream written before its end must.
 * Spec: RFC 9639.
 *
 * @module
 */
import { InvalidAudioError } from "../errors.ts";
import { concat } from "./bytes.ts";
import { WavStreamWriter } from "./wav.ts";

/** Samples per FLAC frame (fixed-blocksize stream; only the last frame may be shorter). */
export const FLAC_BLOCK = 1920;
const BITS = 16;
/** Sample rates with a 4-bit code in frame headers, by code (RFC 9639 §9.1.2). */
const FRAME_RATE_CODES = [0, 88200, 176400, 192000, 8000, 16000, 22050, 24000, 32000, 44100, 48000, 96000];

/** Appends bits, most significant first. */
class BitWriter {
  bytes = new Uint8Array(4096);
  length = 0; // whole bytes written
  #acc = 0; // pending bits (fewer than 8) in the low end
  #count = 0;

  write(value: number, bits: number): void {
    // Split wide fields so the accumulator stays within 31 bits.
    if (bits > 24) {
      this.write(Math.floor(value / 2 ** 16), bits - 16);
      this.write(value & 0xffff, 16);
      return;
    }
    this.#acc = (this.#acc << bits) | (value & ((1 << bits) - 1));
    this.#count += bits;
    while (this.#count >= 8) {
      this.#count -= 8;
      this.#push((this.#acc >>> this.#count) & 0xff);
    }
    this.#acc &= (1 << this.#count) - 1;
  }

  /** `q` zeros then a one (Rice quotient). */
  unary(q: number): void {
    while (q >= 24) {
      this.write(0, 24);
      q -= 24;
    }
    this.write(1, q + 1);
  }

  /** Pad with zero bits to a byte boundary. */
  align(): void {
    if (this.#count > 0) this.write(0, 8 - this.#count);
  }

  #push(byte: number): void {
    if (this.length === this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes[this.length++] = byte;
  }

  take(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

function crc8(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x8005) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** Residuals of the FIXED predictor of `order` (RFC 9639 §9.2.5), for samples `order…n−1`. */
function fixedResidual(x: Int32Array, order: number, out: Int32Array): void {
  for (let i = order; i < x.length; i++) {
    let r: number;
    switch (order) {
      case 0:
        r = x[i];
        break;
      case 1:
        r = x[i] - x[i - 1];
        break;
      case 2:
        r = x[i] - 2 * x[i - 1] + x[i - 2];
        break;
      case 3:
        r = x[i] - 3 * x[i - 1] + 3 * x[i - 2] - x[i - 3];
        break;
      default:
        r = x[i] - 4 * x[i - 1] + 6 * x[i - 2] - 4 * x[i - 3] + x[i - 4];
    }
    out[i - order] = r;
  }
}

const zigzag = (r: number) => (r >= 0 ? 2 * r : -2 * r - 1);

const MAX_RICE = 14; // 4-bit parameters; 15 is the escape code

/**
 * The cheapest partitioning of the zig-zagged residuals `u` of a `block`-sample frame (the first partition is
 * `predictorOrder` shorter): partition order, one Rice parameter per partition, and the exact size in bits. A
 * partition's cost with parameter k is `count·(k+1) + Σ(u >> k)`; the sums are computed once for the finest partitions
 * and added up for coarser ones.
 */
function bestPartitioning(u: Uint32Array, block: number, predictorOrder: number) {
  let maxOrder = 0;
  while (maxOrder < 8 && block % (2 << maxOrder) === 0 && block >> (maxOrder + 1) > predictorOrder) maxOrder++;
  const parts = 1 << maxOrder;
  const size = block >> maxOrder;
  // sums[k][j] = Σ(u >> k) over finest partition j
  let sums = Array.from({ length: MAX_RICE + 1 }, () => new Float64Array(parts));
  for (let j = 0, at = 0; j < parts; j++) {
    const end = (j + 1) * size - predictorOrder;
    for (; at < end; at++) for (let k = 0, v = u[at]; k <= MAX_RICE; k++) sums[k][j] += v >>> k;
  }
  let best = { order: 0, params: [] as number[], bits: Infinity };
  for (let p = maxOrder; p >= 0; p--) {
    const count = 1 << p;
    const params: number[] = [];
    let bits = 6; // coding method + partition order
    for (let j = 0; j < count; j++) {
      const n = (block >> p) - (j === 0 ? predictorOrder : 0);
      let bestK = 0;
      let bestBits = Infinity;
      for (let k = 0; k <= MAX_RICE; k++) {
        const b = 4 + n * (k + 1) + sums[k][j];
        if (b < bestBits) [bestK, bestBits] = [k, b];
      }
      params.push(bestK);
      bits += bestBits;
    }
    if (bits < best.bits) best = { order: p, params, bits };
    // Halve the partitions: each coarser one sums two neighbours.
    sums = sums.map((row) => row.filter((_, j) => j < count / 2).map((_, j) => row[2 * j] + row[2 * j + 1]));
  }
  return best;
}

function writeSubframe(w: BitWriter, x: Int32Array): void {
  const n = x.length;
  if (x.every((v) => v === x[0])) {
    w.write(0b00000000, 8); // CONSTANT
    w.write(x[0], BITS);
    return;
  }
  const residual = new Int32Array(n);
  let best:
    | { order: number; bits: number; partitioning: ReturnType<typeof bestPartitioning>; u: Uint32Array }
    | undefined;
  for (let order = 0; order <= 4 && order < n; order++) {
    fixedResidual(x, order, residual);
    const u = new Uint32Array(n - order);
    for (let i = 0; i < n - order; i++) u[i] = zigzag(residual[i]);
    const partitioning = bestPartitioning(u, n, order);
    const bits = order * BITS + partitioning.bits;
    if (bits < (best?.bits ?? n * BITS)) best = { order, bits, partitioning, u };
  }
  if (!best) {
    w.write(0b00000010, 8); // VERBATIM
    for (const v of x) w.write(v, BITS);
    return;
  }
  w.write(0b00010000 | (best.order << 1), 8); // FIXED, order in the low bits of the type
  for (let i = 0; i < best.order; i++) w.write(x[i], BITS);
  const { order: p, params } = best.partitioning;
  w.write(0, 2); // Rice coding, 4-bit parameters
  w.write(p, 4);
  const size = n >> p;
  for (let j = 0, at = 0; j < params.length; j++) {
    const k = params[j];
    const count = j === 0 ? size - best.order : size;
    w.write(k, 4);
    for (let i = 0; i < count; i++, at++) {
      const v = best.u[at];
      w.unary(v >>> k);
      if (k > 0) w.write(v & ((1 << k) - 1), k);
    }
  }
}

/** UTF-8-style coding of a frame number (RFC 9639 §9.1.5): 1 to 7 bytes. */
function codedNumber(n: number): number[] {
  if (n < 0x80) return [n];
  let count = 2; // total bytes: the lead byte holds 7 − count bits, each continuation byte 6
  while (n >= 2 ** (7 - count + 6 * (count - 1)) && count < 7) count++;
  const out: number[] = [];
  for (let i = 0; i < count - 1; i++) {
    out.unshift(0x80 | (n % 64));
    n = Math.floor(n / 64);
  }
  out.unshift(((0xff << (8 - count)) & 0xff) | n);
  return out;
}

/** Encodes a mono stream to FLAC frame by frame; see the module description. */
export class FlacStreamEncoder {
  #sampleRate: number;
  #rateCode: number;
  #pcm: WavStreamWriter;
  #pending = new Int32Array(FLAC_BLOCK);
  #filled = 0;
  #frame = 0;
  #started = false;

  /**
   * Create an encoder for one stream.
   *
   * @param sampleRate samples per second (FLAC stores up to 2²⁰ − 1 Hz)
   */
  constructor(sampleRate: number) {
    if (!Number.isInteger(sampleRate) || sampleRate < 1 || sampleRate >= 2 ** 20) {
      throw new InvalidAudioError("invalid_audio", `FLAC cannot store a sample rate of ${sampleRate} Hz`);
    }
    this.#sampleRate = sampleRate;
    // Frame headers carry the rate (decoders that see frames without the STREAMINFO need it): a table code, else
    // 16-bit Hz or tens of Hz, else "see STREAMINFO".
    const table = FRAME_RATE_CODES.indexOf(sampleRate);
    this.#rateCode = table > 0
      ? table
      : sampleRate < 65536
      ? 0b1101
      : sampleRate % 10 === 0 && sampleRate / 10 < 65536
      ? 0b1110
      : 0;
    this.#pcm = new WavStreamWriter(sampleRate);
  }

  /** Encode samples; returns the header (first call) and every frame completed. */
  push(samples: Float32Array): Uint8Array {
    const bytes = this.#pcm.encode(samples);
    const ints = new Int16Array(bytes.buffer, bytes.byteOffset, samples.length);
    const parts = [this.#header()];
    for (let i = 0; i < ints.length;) {
      const take = Math.min(FLAC_BLOCK - this.#filled, ints.length - i);
      this.#pending.set(ints.subarray(i, i + take), this.#filled);
      this.#filled += take;
      i += take;
      if (this.#filled === FLAC_BLOCK) parts.push(this.#encodeFrame(this.#pending));
    }
    return concat(parts);
  }

  /** The last (shorter) frame, if samples remain. */
  end(): Uint8Array {
    const parts = [this.#header()];
    if (this.#filled > 0) parts.push(this.#encodeFrame(this.#pending.slice(0, this.#filled), true));
    return concat(parts);
  }

  #header(): Uint8Array {
    if (this.#started) return new Uint8Array(0);
    this.#started = true;
    const w = new BitWriter();
    for (const c of "fLaC") w.write(c.charCodeAt(0), 8);
    w.write(1, 1); // last metadata block
    w.write(0, 7); // STREAMINFO
    w.write(34, 24);
    w.write(FLAC_BLOCK, 16); // min block size (the last frame may be shorter)
    w.write(FLAC_BLOCK, 16); // max block size
    w.write(0, 24); // min frame size: unknown
    w.write(0, 24); // max frame size: unknown
    w.write(this.#sampleRate, 20);
    w.write(0, 3); // channels − 1
    w.write(BITS - 1, 5);
    w.write(0, 36); // total samples: unknown (streamed)
    for (let i = 0; i < 4; i++) w.write(0, 32); // MD5: unknown
    return w.take();
  }

  #encodeFrame(x: Int32Array, last = false): Uint8Array {
    this.#filled = 0;
    const w = new BitWriter();
    w.write(0b11111111111110, 14); // sync
    w.write(0, 1); // reserved
    w.write(0, 1); // fixed block size
    w.write(0b0111, 4); // block size − 1 follows as 16 bits
    // The last frame states its rate as 16-bit Hz where it can: 2 more bytes keep a tiny final frame (1 sample,
    // CONSTANT) above the 13 bytes that the codec-parser of @wasm-audio-decoders/flac silently drops.
    const rateCode = last && this.#sampleRate < 65536 ? 0b1101 : this.#rateCode;
    w.write(rateCode, 4);
    w.write(0b0000, 4); // one channel
    w.write(0b100, 3); // 16 bits per sample
    w.write(0, 1); // reserved
    for (const b of codedNumber(this.#frame++)) w.write(b, 8);
    w.write(x.length - 1, 16);
    if (rateCode === 0b1101) w.write(this.#sampleRate, 16);
    if (rateCode === 0b1110) w.write(this.#sampleRate / 10, 16);
    w.write(crc8(w.bytes.subarray(0, w.length)), 8);
    writeSubframe(w, x);
    w.align();
    w.write(crc16(w.bytes.subarray(0, w.length)), 16);
    return w.take();
  }
}
