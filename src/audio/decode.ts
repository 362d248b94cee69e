/**
 * `decodeAudio`: any supported audio file → mono float samples at the file's own rate. WAV is decoded here
 * ({@link decodeWav}); FLAC, MP3 and Ogg go to the `@wasm-audio-decoders` family, imported on first use
 * (`codec_import.ts`).
 *
 * @module
 */
import { InvalidAudioError } from "../errors.ts";
import { type AudioFormat, detectAudioFormat, findMpegFrame, id3v2Length, mpegIsCut, oggIsCut } from "./detect.ts";
import {
  type DecodedChannels,
  loadFlacDecoder,
  loadMpegDecoder,
  loadOggOpusDecoder,
  loadOggVorbisDecoder,
  type StreamDecoder,
} from "./codec_import.ts";
import { decodeWav, toMono, WAV_UNKNOWN_LENGTH } from "./wav.ts";

/**
 * The default {@link DecodeAudioOptions.maxSeconds}: 5 minutes, about 58 MB of mono float32 at 48 kHz. Longer files
 * are cut there (see {@link DecodedAudio.truncated}).
 *
 * @example
 * ```ts
 * const all = await decodeAudio(bytes, { maxSeconds: 2 * DEFAULT_MAX_DECODE_SECONDS }); // allow 10 minutes
 * ```
 */
export const DEFAULT_MAX_DECODE_SECONDS = 300;

/** Options of {@link decodeAudio}. */
export interface DecodeAudioOptions {
  /**
   * Decode at most this many seconds of audio (default {@link DEFAULT_MAX_DECODE_SECONDS}); decoding stops there and
   * the rest of the file is never decoded, so a small, highly compressed file cannot expand to gigabytes of samples.
   */
  maxSeconds?: number;
}

/** Mono audio decoded by {@link decodeAudio}. */
export interface DecodedAudio {
  /** The samples, channels averaged to one, as float32 in [−1, 1]; at most `maxSeconds` of them. */
  samples: Float32Array;
  /** Samples per second (Opus always decodes at 48000). */
  sampleRate: number;
  /** Channels in the file, before averaging. */
  channels: number;
  /** The format detected from the bytes. */
  format: AudioFormat;
  /** Whether the file holds more than `maxSeconds` of audio (`samples` are then its first `maxSeconds`). */
  truncated: boolean;
  /**
   * Sample frames the decoder produced before it was stopped (≥ `samples.length`): what decoding held in memory at
   * most, beyond the result, is one piece of input's worth of these.
   */
  framesDecoded: number;
}

const FORMAT_NAMES: Record<AudioFormat, string> = {
  wav: "WAV",
  flac: "FLAC",
  mp3: "MP3",
  ogg_vorbis: "Ogg Vorbis",
  ogg_opus: "Ogg Opus",
  ogg_flac: "Ogg FLAC",
};

/**
 * A streamed WAV cannot know its length, so writers put a placeholder in the `data` size and readers stop at the end
 * of the bytes. Placeholders seen in the wild: the reference's 10⁹ frames, 0xFFFFFFFF, and sizes near 2³¹ (sox and
 * others). A `data` chunk declaring less than this, but holding less, is a cut file.
 */
function isStreamingPlaceholder(dataSize: number, frameBytes: number): boolean {
  return dataSize >= Math.min(WAV_UNKNOWN_LENGTH * frameBytes, 0x7f000000);
}

function decodeWavMono(bytes: Uint8Array, maxSeconds: number): DecodedAudio {
  // One frame past the limit tells a longer file from one of exactly `maxSeconds`.
  const head = decodeWav(bytes, { maxFrames: 0 });
  const limit = Math.floor(maxSeconds * head.sampleRate);
  const wav = decodeWav(bytes, { maxFrames: limit + 1 });
  const frameBytes = (wav.channels * Number(wav.encoding.replace(/\D/g, ""))) / 8; // "pcm24" → 3 bytes a sample
  if (wav.truncated && !isStreamingPlaceholder(wav.dataSize, frameBytes)) {
    throw new InvalidAudioError(
      "truncated_audio",
      `WAV file is cut short: its data chunk declares ${Math.floor(wav.dataSize / frameBytes)} sample frames, ` +
        "the file holds fewer",
    );
  }
  const mono = toMono(wav);
  const truncated = mono.length > limit;
  return {
    samples: truncated ? mono.slice(0, limit) : mono,
    sampleRate: wav.sampleRate,
    channels: wav.channels,
    format: "wav",
    truncated,
    framesDecoded: wav.length,
  };
}

/** Total samples per channel a FLAC STREAMINFO block declares (0 = unknown). */
function flacTotalSamples(b: Uint8Array): number {
  const body = id3v2Length(b) + 8; // "fLaC", then the STREAMINFO block's 4-byte header
  if (body + 18 > b.length) return 0;
  // Bytes 10–17: sample rate (20 bits), channels − 1 (3), bits − 1 (5), total samples (36).
  return (b[body + 13] & 0x0f) * 2 ** 32 + ((b[body + 14] << 24) >>> 0) + (b[body + 15] << 16) +
    (b[body + 16] << 8) + b[body + 17];
}

/**
 * Input pieces fed to a decoder: the first is small, later ones grow (at most doubling) while the audio decoded so
 * far per input byte says the next piece stays within the remaining budget. A decoder returns everything a piece
 * holds at once, so the piece size bounds what decoding can overshoot the limit by.
 */
const FIRST_PIECE_BYTES = 256;
const MAX_PIECE_BYTES = 16 * 1024;

/** What the decoding loop gathered: mono pieces, counts and the decoders' reports. */
class Gathered {
  pieces: Float32Array[] = [];
  frames = 0;
  sampleRate = 0;
  channels = 0;
  bitDepth = 0;
  errors: { message: string }[] = [];

  /** Mixes one decoder output down to mono (after the integer rescale) and keeps it. */
  add(out: DecodedChannels): void {
    this.errors.push(...out.errors);
    const n = out.samplesDecoded;
    if (n === 0 || out.channelData.length === 0) return;
    this.sampleRate ||= out.sampleRate;
    this.channels ||= out.channelData.length;
    if (out.bitDepth) this.bitDepth ||= out.bitDepth;
    if (out.bitDepth && out.bitDepth <= 24) rescaleIntegers(out.channelData, out.bitDepth, n);
    this.pieces.push(mixDown(out.channelData, n));
    this.frames += n;
  }

  /** The first `limit` mono samples gathered. */
  samples(limit: number): Float32Array {
    const out = new Float32Array(Math.min(this.frames, limit));
    let at = 0;
    for (const p of this.pieces) {
      if (at >= out.length) break;
      const take = p.subarray(0, out.length - at);
      out.set(take, at);
      at += take.length;
    }
    return out;
  }
}

/**
 * The FLAC decoder scales a b-bit sample s to s / (2^(b−1) − 1); WAV decoding (and the reference) use s / 2^(b−1).
 * Recover s (exact in float32 up to 24 bits) and rescale, so that FLAC and WAV of the same PCM give the same samples.
 */
function rescaleIntegers(channels: Float32Array[], bits: number, n: number): void {
  const full = 2 ** (bits - 1);
  for (const channel of channels) {
    for (let i = 0; i < n; i++) channel[i] = Math.round(channel[i] * (full - 1)) / full;
  }
}

function mixDown(channels: Float32Array[], n: number): Float32Array {
  if (channels.length === 1) return channels[0].slice(0, n);
  const mono = new Float32Array(n);
  for (const channel of channels) for (let i = 0; i < n; i++) mono[i] += channel[i];
  for (let i = 0; i < n; i++) mono[i] /= channels.length;
  return mono;
}

/**
 * `@wasm-audio-decoders/flac` (0.2.11) ends a frame where the next frame's sync code starts, so a file's last frame
 * is never decoded (and the check below would call every multi-frame file cut). A copy of the first frame's opening
 * bytes after the data gives the last frame its end; the copy itself is incomplete and dropped.
 */
function frameSyncAfter(b: Uint8Array): Uint8Array {
  let at = id3v2Length(b) + 4; // after "fLaC": metadata blocks, each a flag/type byte and a 24-bit length
  for (let last = false; !last && at + 4 <= b.length; at += 4 + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3])) {
    last = (b[at] & 0x80) !== 0;
  }
  return b.slice(at, Math.min(at + 16, b.length));
}

async function openDecoder(format: AudioFormat): Promise<StreamDecoder> {
  return format === "mp3"
    ? new (await loadMpegDecoder()).MPEGDecoder()
    : format === "ogg_opus"
    ? new (await loadOggOpusDecoder()).OggOpusDecoder()
    : format === "ogg_vorbis"
    ? new (await loadOggVorbisDecoder()).OggVorbisDecoder()
    : new (await loadFlacDecoder()).FLACDecoder();
}

/**
 * Feeds the file to the format's decoder piece by piece until it ends or more than `maxSeconds` were decoded;
 * whatever the decoder throws on bad data becomes `corrupt_audio`. Returns whether the whole file was decoded.
 */
async function runDecoder(format: AudioFormat, b: Uint8Array, maxSeconds: number, got: Gathered): Promise<boolean> {
  const decoder = await openDecoder(format);
  const limit = () => got.sampleRate ? Math.floor(maxSeconds * got.sampleRate) : Infinity;
  try {
    await decoder.ready;
    let piece = FIRST_PIECE_BYTES;
    for (let at = 0; at < b.length;) {
      // Copies: the decoders may keep or transfer what they are given, and must not touch a caller's buffer.
      const input = b.slice(at, at + piece);
      at += input.length;
      got.add(await decoder.decode(input));
      if (got.frames > limit()) return false; // one frame past the limit: the file is longer
      const perByte = got.frames / at;
      const room = perByte > 0 ? (limit() - got.frames) / perByte : Infinity;
      piece = Math.max(FIRST_PIECE_BYTES, Math.min(2 * piece, MAX_PIECE_BYTES, Math.floor(room)));
    }
    if (format === "flac") got.add(await decoder.decode(frameSyncAfter(b)));
    if (decoder.flush) got.add(await decoder.flush());
    return true;
  } catch (cause) {
    throw new InvalidAudioError(
      "corrupt_audio",
      `${FORMAT_NAMES[format]} data is damaged: the decoder failed (${cause instanceof Error ? cause.message : cause})`,
      { cause },
    );
  } finally {
    decoder.free();
  }
}

async function decodeCompressed(format: AudioFormat, b: Uint8Array, maxSeconds: number): Promise<DecodedAudio> {
  const name = FORMAT_NAMES[format];
  const mpegStart = format === "mp3" ? findMpegFrame(b, id3v2Length(b), 65536) : -1;
  const cut = format === "mp3" ? mpegIsCut(b, mpegStart) : format === "flac" ? false : oggIsCut(b);
  if (cut) throw new InvalidAudioError("truncated_audio", `${name} file is cut short (it ends inside a frame or page)`);

  const got = new Gathered();
  const whole = await runDecoder(format, b, maxSeconds, got);
  if (whole && format === "flac") {
    const total = flacTotalSamples(b);
    if (total > 0 && got.frames < total) {
      throw new InvalidAudioError(
        "truncated_audio",
        `FLAC file is cut short: ${got.frames} of the ${total} samples its header declares were decoded`,
      );
    }
  }
  if (got.errors.length > 0) {
    throw new InvalidAudioError(
      "corrupt_audio",
      `${name} data is damaged: the decoder reported ${got.errors.length} error(s), first "${got.errors[0].message}"`,
    );
  }
  if (got.frames === 0) throw new InvalidAudioError("corrupt_audio", `${name} data holds no decodable audio`);
  const limit = Math.floor(maxSeconds * got.sampleRate);
  // mpg123 always outputs two channels; the frame header's channel mode tells mono (3) from stereo.
  const channels = mpegStart >= 0 && b[mpegStart + 3] >> 6 === 3 ? 1 : got.channels;
  return {
    samples: got.samples(limit),
    sampleRate: got.sampleRate,
    channels,
    format,
    truncated: got.frames > limit,
    framesDecoded: got.frames,
  };
}

/**
 * Decode an audio file of any supported format to mono float samples, detecting the format from the bytes (never
 * from a file name): WAV (PCM 8/16/24/32-bit, float 32/64-bit, plain or `WAVE_FORMAT_EXTENSIBLE`, any chunk layout),
 * FLAC (native and Ogg), MP3 (MPEG audio layers I–III), Ogg Vorbis and Ogg Opus. Channels are averaged. The FLAC, MP3
 * and Ogg decoders are WebAssembly npm packages loaded on first use (`npm:` specifiers in Deno; in Node and Bun they
 * must be installed next to this package). Resample with {@link resample} for the model's 24 kHz.
 *
 * A streamed WAV whose header claims an unknown length (the reference's 10⁹ frames, 0xFFFFFFFF, …) decodes to the
 * samples present; a WAV whose `data` chunk declares a real length it does not hold is a cut file.
 *
 * Decoding stops after `maxSeconds` (default 5 minutes): compressed files are fed to their decoder in small pieces
 * and the loop ends once the limit is passed, so memory stays bounded by the limit, not by what the file expands to
 * (10 MB of low-bitrate MP3 or Opus are hours of audio). `truncated` tells whether there was more.
 *
 * @example
 * ```ts
 * import { decodeAudio, resample } from "@pocket/tts";
 *
 * const { samples, sampleRate, format } = await decodeAudio(await Deno.readFile("me.mp3")); // format "mp3"
 * const prompt = resample(samples, sampleRate, 24000);
 * const head = await decodeAudio(await Deno.readFile("talk.opus"), { maxSeconds: 30 }); // head.truncated: longer
 * ```
 *
 * @param bytes the whole file
 * @param options `maxSeconds`: where decoding stops
 * @returns mono samples, their rate, the file's channel count and format, whether it was cut at `maxSeconds`
 * @throws {UnsupportedAudioError} `"unsupported_audio"` (AAC/M4A, video, other formats, junk, empty: the message names
 *   the supported formats) or `"codec_unavailable"` (the decoder package cannot be imported)
 * @throws {InvalidAudioError} the WAV codes of {@link decodeWav}; `"truncated_audio"` (a cut file);
 *   `"corrupt_audio"` (the decoder reports damaged frames or finds no audio); `"invalid_audio"` (a `maxSeconds` that
 *   is not a positive number)
 */
export async function decodeAudio(
  bytes: Uint8Array | ArrayBuffer,
  options: DecodeAudioOptions = {},
): Promise<DecodedAudio> {
  const maxSeconds = options.maxSeconds ?? DEFAULT_MAX_DECODE_SECONDS;
  if (!(maxSeconds > 0) || !Number.isFinite(maxSeconds)) {
    throw new InvalidAudioError("invalid_audio", `maxSeconds must be a positive number, got ${maxSeconds}`);
  }
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const format = detectAudioFormat(b);
  return format === "wav" ? decodeWavMono(b, maxSeconds) : await decodeCompressed(format, b, maxSeconds);
}
