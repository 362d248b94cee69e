/**
 * WAV (RIFF/WAVE) encoding and decoding, browser-safe (no `node:` imports).
 *
 * Encoding writes 16-bit PCM exactly as the reference CLI's `StreamingWAVWriter` does (`clamp(x, −1, 1) · 32767`
 * computed in float32, truncated toward zero) or 32-bit IEEE float. A WAV written while samples are still being
 * produced cannot know its length, so the reference writes a header that claims 10⁹ sample frames and never patches
 * it; {@link wavHeader}, {@link encodeWav} (`unknownLength`) and {@link WavStreamWriter} reproduce that header byte for
 * byte. Readers that stop at the end of the stream (ffmpeg, browsers, {@link decodeWav}) play such files fine.
 *
 * Header layouts:
 * - `pcm16`: the canonical 44 bytes — `RIFF`, `WAVE`, a 16-byte `fmt ` chunk (format 1), `data`.
 * - `float32`: 58 bytes — `RIFF`, `WAVE`, an 18-byte `fmt ` chunk (format 3 = `WAVE_FORMAT_IEEE_FLOAT`, `cbSize` 0),
 *   a `fact` chunk holding the sample count, `data`. This is what the WAVE specification asks of non-PCM formats (and
 *   what libsndfile and SciPy write); readers that only know the 44-byte layout still find `data` by walking chunks.
 *   With an unknown length, `fact` and `data` claim 10⁹ sample frames (data size 4·10⁹ bytes for mono), the same
 *   convention as `pcm16`.
 *
 * @module
 */
import { InvalidAudioError } from "../errors.ts";

/** Sample encodings the encoder writes. */
export type WavSampleFormat = "pcm16" | "float32";

/** Sample encodings the decoder reads. */
export type WavSampleEncoding = "pcm8" | "pcm16" | "pcm24" | "pcm32" | "float32" | "float64";

/**
 * The sample-frame count an unknown-length header claims: 10⁹, the reference's streaming placeholder (about 11.5
 * hours at 24 kHz). Where `10⁹ × bytes per frame` would not fit the 32-bit RIFF size (float32 with more than one
 * channel), the claim is the largest whole number of frames that fits.
 */
export const WAV_UNKNOWN_LENGTH = 1_000_000_000;

const FORMAT_PCM = 1;
const FORMAT_IEEE_FLOAT = 3;
const FORMAT_EXTENSIBLE = 0xfffe;
const U32_MAX = 0xffffffff;

/** Options of {@link wavHeader}. */
export interface WavHeaderOptions {
  /** Sample encoding (default `"pcm16"`). */
  format?: WavSampleFormat;
  /** Interleaved channels (default 1). */
  channels?: number;
  /**
   * Samples per channel that will follow the header. Omit it for the reference's unknown-length convention
   * ({@link WAV_UNKNOWN_LENGTH} frames claimed, never patched).
   */
  length?: number;
}

/** Options of {@link encodeWav}. */
export interface EncodeWavOptions {
  /** Sample encoding (default `"pcm16"`). */
  format?: WavSampleFormat;
  /** Interleaved channels in `samples` (default 1). */
  channels?: number;
  /**
   * Write the reference's streaming header (claims {@link WAV_UNKNOWN_LENGTH} frames) instead of the true length,
   * so the bytes equal what a streamed write of the same audio produces (default `false`).
   */
  unknownLength?: boolean;
  /**
   * Milliseconds of zeros appended after the samples (default 0). The reference CLI appends 200 ms:
   * `round(sampleRate · ms / 1000)` samples per channel.
   */
  trailingSilenceMs?: number;
}

/** Options of the {@link WavStreamWriter} constructor. */
export interface WavStreamWriterOptions {
  /** Sample encoding (default `"pcm16"`). */
  format?: WavSampleFormat;
  /** Interleaved channels of every frame (default 1). */
  channels?: number;
}

/** Options of {@link decodeWav}. */
export interface DecodeWavOptions {
  /**
   * Decode at most this many sample frames (default: all); the rest of the `data` chunk is left undecoded, so a
   * caller that needs only the start of a long file never holds all of it as floats.
   */
  maxFrames?: number;
}

/** A decoded WAV file. */
export interface DecodedWav {
  /** Samples per second. */
  sampleRate: number;
  /** Number of interleaved channels. */
  channels: number;
  /** Samples per channel (`samples.length / channels`; at most `maxFrames`). */
  length: number;
  /**
   * Every sample as float32, channel-interleaved (`[l0, r0, l1, r1, …]`), scaled to [−1, 1): integer PCM is divided
   * by 2^(bits−1) (8-bit PCM is unsigned and first offset by −128); float data is kept as is (float64 rounded).
   */
  samples: Float32Array;
  /** How the samples were stored in the file. */
  encoding: WavSampleEncoding;
  /**
   * `true` when the `data` chunk claims more bytes than the file holds — a truncated file, or a streamed file whose
   * header claims an unknown length (the reference's 10⁹ frames). The whole sample frames present were decoded.
   */
  truncated: boolean;
  /** Bytes the `data` chunk declares (a streamed file's placeholder, when the length was unknown at writing). */
  dataSize: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------------------------

function bytesPerSample(format: WavSampleFormat): number {
  if (format === "pcm16") return 2;
  if (format === "float32") return 4;
  throw new InvalidAudioError("invalid_audio", `unknown WAV sample format "${format}": use "pcm16" or "float32"`);
}

function checkSampleRate(sampleRate: number): void {
  if (!Number.isInteger(sampleRate) || sampleRate < 1 || sampleRate > U32_MAX) {
    throw new InvalidAudioError("invalid_audio", `invalid WAV sample rate ${sampleRate}: expected a positive integer`);
  }
}

function checkChannels(channels: number): void {
  if (!Number.isInteger(channels) || channels < 1 || channels > 0xffff) {
    throw new InvalidAudioError("invalid_audio", `invalid WAV channel count ${channels}: expected 1 to 65535`);
  }
}

function checkInterleaved(samples: Float32Array, channels: number): void {
  if (samples.length % channels !== 0) {
    throw new InvalidAudioError(
      "invalid_audio",
      `${samples.length} samples are not a whole number of frames of ${channels} interleaved channels`,
    );
  }
}

function writeAscii(view: DataView, offset: number, text: string): void {
  for (let i = 0; i < text.length; i++) view.setUint8(offset + i, text.charCodeAt(i));
}

/**
 * The header of a WAV file: everything before the first sample byte (44 bytes for `pcm16`, 58 for `float32`, see
 * the module description).
 *
 * @example
 * ```ts
 * const header = wavHeader(24000);                  // streaming header: claims 10⁹ frames, like the reference CLI
 * const exact = wavHeader(24000, { length: 48000 }); // a 2-second file's header
 * header.length; // 44
 * ```
 *
 * @param sampleRate samples per second (a positive integer)
 * @param options sample format, channels, and the length (omit it for an unknown length)
 * @throws {InvalidAudioError} `"invalid_audio"` when an argument is out of range or the data would exceed the 4 GiB
 *   a RIFF size can describe
 */
export function wavHeader(sampleRate: number, options: WavHeaderOptions = {}): Uint8Array {
  const format = options.format ?? "pcm16";
  const channels = options.channels ?? 1;
  const sampleBytes = bytesPerSample(format);
  checkSampleRate(sampleRate);
  checkChannels(channels);
  const blockAlign = channels * sampleBytes;
  const byteRate = sampleRate * blockAlign;
  if (byteRate > U32_MAX) {
    throw new InvalidAudioError("invalid_audio", `WAV byte rate ${byteRate} does not fit 32 bits`);
  }
  const float = format === "float32";
  const size = float ? 58 : 44;
  // Everything the RIFF size counts besides the data: "WAVE" and the chunk headers/bodies before the data.
  const overhead = size - 8;
  const maxFrames = Math.floor((U32_MAX - overhead) / blockAlign);
  let frames: number;
  if (options.length === undefined) {
    frames = Math.min(WAV_UNKNOWN_LENGTH, maxFrames);
  } else {
    frames = options.length;
    if (!Number.isInteger(frames) || frames < 0) {
      throw new InvalidAudioError("invalid_audio", `invalid WAV length ${frames}: expected a non-negative integer`);
    }
    if (frames > maxFrames) {
      throw new InvalidAudioError(
        "invalid_audio",
        `${frames} sample frames of ${blockAlign} bytes exceed the 4 GiB a WAV file can describe`,
      );
    }
  }
  const dataSize = frames * blockAlign;

  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  writeAscii(v, 0, "RIFF");
  v.setUint32(4, overhead + dataSize, true);
  writeAscii(v, 8, "WAVE");
  writeAscii(v, 12, "fmt ");
  v.setUint32(16, float ? 18 : 16, true);
  v.setUint16(20, float ? FORMAT_IEEE_FLOAT : FORMAT_PCM, true);
  v.setUint16(22, channels, true);
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, byteRate, true);
  v.setUint16(32, blockAlign, true);
  v.setUint16(34, sampleBytes * 8, true);
  let p = 36;
  if (float) {
    v.setUint16(36, 0, true); // cbSize: no extension
    writeAscii(v, 38, "fact");
    v.setUint32(42, 4, true);
    v.setUint32(46, frames, true);
    p = 50;
  }
  writeAscii(v, p, "data");
  v.setUint32(p + 4, dataSize, true);
  return out;
}

/**
 * Write samples into `out` at byte `offset` in the given format. pcm16 is the reference's conversion: clamp to
 * [−1, 1], multiply by 32767 in float32 (`Math.fround` reproduces the float32 product exactly: the double product of a
 * float32 and 32767 is exact), truncate toward zero. NaN becomes 0.
 */
function writeSamples(samples: Float32Array, format: WavSampleFormat, out: DataView, offset: number): void {
  const n = samples.length;
  if (format === "pcm16") {
    for (let i = 0; i < n; i++) {
      const x = samples[i];
      const c = x > 1 ? 1 : x < -1 ? -1 : x;
      out.setInt16(offset + 2 * i, Math.fround(c * 32767) | 0, true);
    }
  } else {
    for (let i = 0; i < n; i++) out.setFloat32(offset + 4 * i, samples[i], true);
  }
}

function silenceLength(sampleRate: number, ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new InvalidAudioError("invalid_audio", `invalid trailing silence ${ms} ms: expected a non-negative number`);
  }
  return Math.round((sampleRate * ms) / 1000);
}

/**
 * Encode samples as a complete WAV file.
 *
 * With `{ unknownLength: true, trailingSilenceMs: 200 }` the bytes equal the reference CLI's output for the same
 * audio (its streaming header, its int16 conversion, its 200 ms of trailing zeros).
 *
 * @example
 * ```ts
 * const samples = new Float32Array(24000).map((_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / 24000));
 * const wav = encodeWav(samples, 24000);                           // 16-bit PCM, exact header
 * const f32 = encodeWav(samples, 24000, { format: "float32" });    // IEEE float
 * const likeCli = encodeWav(samples, 24000, { unknownLength: true, trailingSilenceMs: 200 });
 * await Deno.writeFile("tone.wav", wav);
 * ```
 *
 * @param samples the audio, channel-interleaved when `channels` > 1; pcm16 clamps it to [−1, 1]
 * @param sampleRate samples per second (a positive integer)
 * @param options sample format, channels, streaming header, trailing silence
 * @returns the file's bytes
 * @throws {InvalidAudioError} `"invalid_audio"` when an argument is out of range
 */
export function encodeWav(samples: Float32Array, sampleRate: number, options: EncodeWavOptions = {}): Uint8Array {
  const format = options.format ?? "pcm16";
  const channels = options.channels ?? 1;
  const sampleBytes = bytesPerSample(format);
  checkSampleRate(sampleRate);
  checkChannels(channels);
  checkInterleaved(samples, channels);
  const silence = silenceLength(sampleRate, options.trailingSilenceMs ?? 0) * channels;
  const length = (samples.length + silence) / channels;
  const header = wavHeader(sampleRate, { format, channels, length: options.unknownLength ? undefined : length });
  const out = new Uint8Array(header.length + (samples.length + silence) * sampleBytes);
  out.set(header);
  writeSamples(samples, format, new DataView(out.buffer), header.length);
  return out; // the trailing silence is the zero-filled tail of `out`
}

/**
 * Writes a WAV incrementally: {@link WavStreamWriter.header} once (the reference's unknown-length header), then
 * {@link WavStreamWriter.encode} for each block of samples as it is produced, optionally
 * {@link WavStreamWriter.silence} at the end. The concatenated bytes equal {@link encodeWav} of all the samples with
 * `unknownLength: true` — suitable for stdout, a pipe or an HTTP response body.
 *
 * @example
 * ```ts
 * const writer = new WavStreamWriter(24000);
 * const out = Deno.stdout.writable.getWriter();
 * await out.write(writer.header());
 * for await (const frame of tts.stream("Hello world")) await out.write(writer.encode(frame));
 * await out.write(writer.silence(200)); // the reference CLI's 200 ms of trailing silence
 * await out.close();
 * ```
 */
export class WavStreamWriter {
  /** Samples per second. */
  readonly sampleRate: number;
  /** Sample encoding. */
  readonly format: WavSampleFormat;
  /** Interleaved channels of every block. */
  readonly channels: number;
  #sampleBytes: number;

  /**
   * Create a writer for one stream.
   *
   * @param sampleRate samples per second (a positive integer)
   * @param options sample format (default `"pcm16"`) and channels (default 1)
   * @throws {InvalidAudioError} `"invalid_audio"` when an argument is out of range
   */
  constructor(sampleRate: number, options: WavStreamWriterOptions = {}) {
    this.format = options.format ?? "pcm16";
    this.channels = options.channels ?? 1;
    this.#sampleBytes = bytesPerSample(this.format);
    checkSampleRate(sampleRate);
    checkChannels(this.channels);
    this.sampleRate = sampleRate;
  }

  /**
   * The unknown-length header ({@link WAV_UNKNOWN_LENGTH} frames claimed), to be written first.
   *
   * @example
   * ```ts
   * new WavStreamWriter(24000).header().length; // 44
   * ```
   */
  header(): Uint8Array {
    return wavHeader(this.sampleRate, { format: this.format, channels: this.channels });
  }

  /**
   * The sample bytes of one block (no header), converted like {@link encodeWav}.
   *
   * @example
   * ```ts
   * const bytes = new WavStreamWriter(24000).encode(new Float32Array(1920)); // 3840 bytes of pcm16
   * ```
   *
   * @param samples the block, channel-interleaved when `channels` > 1
   * @throws {InvalidAudioError} `"invalid_audio"` when the block is not a whole number of frames
   */
  encode(samples: Float32Array): Uint8Array {
    checkInterleaved(samples, this.channels);
    const out = new Uint8Array(samples.length * this.#sampleBytes);
    writeSamples(samples, this.format, new DataView(out.buffer), 0);
    return out;
  }

  /**
   * The bytes of `ms` milliseconds of silence (`round(sampleRate · ms / 1000)` zero samples per channel).
   *
   * @example
   * ```ts
   * new WavStreamWriter(24000).silence(200).length; // 9600: 4800 zero samples of pcm16
   * ```
   *
   * @param ms duration in milliseconds (non-negative)
   * @throws {InvalidAudioError} `"invalid_audio"` when `ms` is negative or not finite
   */
  silence(ms: number): Uint8Array {
    return new Uint8Array(silenceLength(this.sampleRate, ms) * this.channels * this.#sampleBytes);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------------------------

/** Bytes 2–15 of every `KSDATAFORMAT_SUBTYPE_*` GUID whose first two bytes are a WAVE format code. */
const KSDATAFORMAT_SUFFIX = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

const FORMAT_NAMES: Readonly<Record<number, string>> = {
  0x0002: "Microsoft ADPCM",
  0x0006: "A-law",
  0x0007: "µ-law",
  0x0011: "IMA ADPCM",
  0x0031: "GSM 6.10",
  0x0050: "MPEG",
  0x0055: "MPEG layer 3",
};

function ascii(bytes: Uint8Array, offset: number): string {
  return String.fromCharCode(bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]);
}

interface FmtInfo {
  formatCode: number;
  channels: number;
  sampleRate: number;
  bits: number;
}

function parseFmt(bytes: Uint8Array, start: number, size: number): FmtInfo {
  if (size < 16) throw new InvalidAudioError("invalid_wav", `WAV fmt chunk has ${size} bytes; at least 16 are needed`);
  const v = new DataView(bytes.buffer, bytes.byteOffset + start, size);
  let formatCode = v.getUint16(0, true);
  const channels = v.getUint16(2, true);
  const sampleRate = v.getUint32(4, true);
  const bits = v.getUint16(14, true);
  if (formatCode === FORMAT_EXTENSIBLE) {
    if (size < 40) {
      throw new InvalidAudioError(
        "invalid_wav",
        `WAV fmt chunk is WAVE_FORMAT_EXTENSIBLE but has ${size} bytes; 40 are needed`,
      );
    }
    const guid = bytes.subarray(start + 24, start + 40);
    if (!KSDATAFORMAT_SUFFIX.every((b, i) => guid[2 + i] === b)) {
      const hex = Array.from(guid, (b) => b.toString(16).padStart(2, "0")).join("");
      throw new InvalidAudioError("unsupported_wav", `unsupported WAVE_FORMAT_EXTENSIBLE sub-format GUID ${hex}`);
    }
    formatCode = v.getUint16(24, true);
  }
  if (channels === 0) throw new InvalidAudioError("invalid_wav", "WAV fmt chunk declares 0 channels");
  if (sampleRate === 0) throw new InvalidAudioError("invalid_wav", "WAV fmt chunk declares a sample rate of 0 Hz");
  if (formatCode === FORMAT_PCM) {
    if (bits !== 8 && bits !== 16 && bits !== 24 && bits !== 32) {
      throw new InvalidAudioError(
        "unsupported_wav",
        `unsupported WAV PCM bit depth ${bits}: supported are 8, 16, 24 and 32`,
      );
    }
  } else if (formatCode === FORMAT_IEEE_FLOAT) {
    if (bits !== 32 && bits !== 64) {
      throw new InvalidAudioError(
        "unsupported_wav",
        `unsupported WAV float bit depth ${bits}: supported are 32 and 64`,
      );
    }
  } else {
    const name = FORMAT_NAMES[formatCode];
    throw new InvalidAudioError(
      "unsupported_wav",
      `unsupported WAV format code 0x${formatCode.toString(16).padStart(4, "0")}${name ? ` (${name})` : ""}: ` +
        "supported are PCM (1) and IEEE float (3)",
    );
  }
  return { formatCode, channels, sampleRate, bits };
}

function decodeSamples(
  bytes: Uint8Array,
  start: number,
  count: number,
  encoding: WavSampleEncoding,
): Float32Array {
  const out = new Float32Array(count);
  const v = new DataView(bytes.buffer, bytes.byteOffset + start);
  switch (encoding) {
    case "pcm8":
      for (let i = 0; i < count; i++) out[i] = (bytes[start + i] - 128) / 128;
      break;
    case "pcm16":
      for (let i = 0; i < count; i++) out[i] = v.getInt16(2 * i, true) / 32768;
      break;
    case "pcm24":
      for (let i = 0, p = start; i < count; i++, p += 3) {
        out[i] = (((bytes[p] | (bytes[p + 1] << 8) | (bytes[p + 2] << 16)) << 8) >> 8) / 8388608;
      }
      break;
    case "pcm32":
      for (let i = 0; i < count; i++) out[i] = v.getInt32(4 * i, true) / 2147483648;
      break;
    case "float32":
      for (let i = 0; i < count; i++) out[i] = v.getFloat32(4 * i, true);
      break;
    case "float64":
      for (let i = 0; i < count; i++) out[i] = v.getFloat64(8 * i, true);
      break;
  }
  return out;
}

/**
 * Decode a WAV file: PCM 8/16/24/32-bit and IEEE float 32/64-bit, plain or `WAVE_FORMAT_EXTENSIBLE`, any number of
 * channels.
 *
 * Chunks are walked by their sizes (odd sizes followed by their pad byte); chunks other than `fmt ` and `data` are
 * skipped, and they may come in any order. `blockAlign` and `byteRate` are not trusted: a frame is `channels × bits/8`
 * bytes (as Python's `wave` module does). A `data` chunk that claims more bytes than the file holds — a truncated
 * download, or a streamed file with the reference's unknown-length header — is not an error: the whole sample frames
 * present are decoded and `truncated` is set. A trailing partial frame is dropped.
 *
 * @example
 * ```ts
 * const wav = decodeWav(await Deno.readFile("prompt.wav"));
 * wav.sampleRate; // e.g. 22050
 * const mono = toMono(wav);
 * ```
 *
 * @param bytes the whole file
 * @param options `maxFrames`: decode only the first frames
 * @returns the sample rate, channels, channel-interleaved float32 samples, and whether the data was cut short
 * @throws {InvalidAudioError} `"not_wav"` (not RIFF/WAVE); `"truncated_wav"` (the file ends inside the RIFF header,
 *   inside the `fmt ` chunk, or — before both `fmt ` and `data` were found — inside a chunk or short of its RIFF size);
 *   `"missing_wav_chunk"` (a complete file without `fmt ` or `data`); `"unsupported_wav"` (format code, bit depth,
 *   RIFX/RF64); `"invalid_wav"` (0 channels, 0 Hz, a short `fmt ` chunk)
 */
export function decodeWav(bytes: Uint8Array | ArrayBuffer, options: DecodeWavOptions = {}): DecodedWav {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const n = b.length;
  if (n < 12) {
    const template = "RIFF\0\0\0\0WAVE";
    const prefixOk = n > 0 && Array.from(b).every((c, i) => (i >= 4 && i < 8) || c === template.charCodeAt(i));
    if (prefixOk) throw new InvalidAudioError("truncated_wav", `WAV file ends after ${n} bytes, inside its header`);
    throw new InvalidAudioError("not_wav", n === 0 ? "empty file: not a WAV file" : "not a WAV file (no RIFF header)");
  }
  const riff = ascii(b, 0);
  if (riff === "RIFX") throw new InvalidAudioError("unsupported_wav", "big-endian WAV (RIFX) is not supported");
  if (riff === "RF64") throw new InvalidAudioError("unsupported_wav", "64-bit WAV (RF64) is not supported");
  if (riff !== "RIFF") throw new InvalidAudioError("not_wav", "not a WAV file (no RIFF header)");
  if (ascii(b, 8) !== "WAVE") {
    throw new InvalidAudioError("not_wav", `not a WAV file: RIFF form type is "${ascii(b, 8)}", not "WAVE"`);
  }

  const v = new DataView(b.buffer, b.byteOffset, n);
  let fmt: FmtInfo | undefined;
  let data: { start: number; size: number } | undefined;
  let pos = 12;
  while (pos + 8 <= n) {
    const id = ascii(b, pos);
    const size = v.getUint32(pos + 4, true);
    const body = pos + 8;
    if (id === "fmt " && !fmt) {
      if (body + size > n) {
        throw new InvalidAudioError(
          "truncated_wav",
          `WAV fmt chunk declares ${size} bytes but the file ends after ${n - body}`,
        );
      }
      fmt = parseFmt(b, body, size);
    } else if (id === "data" && !data) {
      data = { start: body, size };
    }
    pos = body + size + (size & 1);
  }
  if (!fmt || !data) {
    const missing = fmt ? "data" : "fmt ";
    // pos < n: the file ends inside a chunk header; pos > n + 1: a chunk runs past the end of the file (pos = n + 1
    // is only a last odd-sized chunk without its pad byte); a RIFF size beyond the end: chunks are missing.
    if (pos < n) {
      throw new InvalidAudioError(
        "truncated_wav",
        `WAV file ends inside a chunk header at byte ${pos}, before its ${missing} chunk`,
      );
    }
    const declared = 8 + v.getUint32(4, true);
    if (pos > n + 1 || declared > n + 1) {
      throw new InvalidAudioError(
        "truncated_wav",
        `WAV file is cut short before its ${missing} chunk: ${n} bytes, its RIFF header declares ${declared}`,
      );
    }
    throw new InvalidAudioError("missing_wav_chunk", `WAV file has no ${missing} chunk`);
  }

  const sampleBytes = fmt.bits / 8;
  const frameBytes = fmt.channels * sampleBytes;
  const available = Math.min(data.size, n - data.start);
  const length = Math.min(Math.floor(available / frameBytes), options.maxFrames ?? Infinity);
  const encoding: WavSampleEncoding = fmt.formatCode === FORMAT_IEEE_FLOAT
    ? (fmt.bits === 64 ? "float64" : "float32")
    : (`pcm${fmt.bits}` as WavSampleEncoding);
  return {
    sampleRate: fmt.sampleRate,
    channels: fmt.channels,
    length,
    samples: decodeSamples(b, data.start, length * fmt.channels, encoding),
    encoding,
    truncated: available < data.size,
    dataSize: data.size,
  };
}

/**
 * Mix channel-interleaved audio down to one channel by averaging the channels of each frame. Mono input is returned
 * as is (the same array, not a copy).
 *
 * @example
 * ```ts
 * const mono = toMono(decodeWav(await Deno.readFile("stereo.wav")));
 * toMono({ channels: 2, samples: new Float32Array([1, 0, 0.5, 0.5]) }); // Float32Array [0.5, 0.5]
 * ```
 *
 * @param audio interleaved samples and their channel count (e.g. a {@link DecodedWav})
 * @returns one sample per frame
 * @throws {InvalidAudioError} `"invalid_audio"` when the channel count is not a positive integer or the samples are
 *   not a whole number of frames
 */
export function toMono(audio: { channels: number; samples: Float32Array }): Float32Array {
  const { channels, samples } = audio;
  checkChannels(channels);
  checkInterleaved(samples, channels);
  if (channels === 1) return samples;
  const length = samples.length / channels;
  const out = new Float32Array(length);
  for (let i = 0, p = 0; i < length; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += samples[p++];
    out[i] = sum / channels;
  }
  return out;
}
