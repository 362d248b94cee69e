/**
 * Audio format detection by content (file signatures), never by file name, plus the structural checks that tell a
 * cut compressed file from a whole one (the decoders themselves decode what is there and stay silent about the rest).
 *
 * @module
 */
import { SUPPORTED_AUDIO_FORMATS, UnsupportedAudioError } from "../errors.ts";

/** The formats {@link detectAudioFormat} recognises as decodable. */
export type AudioFormat = "wav" | "flac" | "mp3" | "ogg_vorbis" | "ogg_opus" | "ogg_flac";

function ascii(b: Uint8Array, at: number, length: number): string {
  if (at + length > b.length) return "";
  return String.fromCharCode(...b.subarray(at, at + length));
}

/** Bytes taken by ID3v2 tags at the start (0 when there are none). Tags may repeat. */
export function id3v2Length(b: Uint8Array): number {
  let pos = 0;
  while (ascii(b, pos, 3) === "ID3" && pos + 10 <= b.length) {
    // Size: four 7-bit ("syncsafe") bytes, excluding the 10-byte header; a footer adds 10 more.
    const size = (b[pos + 6] << 21) | (b[pos + 7] << 14) | (b[pos + 8] << 7) | b[pos + 9];
    pos += 10 + size + (b[pos + 5] & 0x10 ? 10 : 0);
  }
  return pos;
}

// MPEG audio frame headers (ISO 11172-3 / 13818-3): bitrates in kbit/s by [version 1 | 2/2.5][layer I, II, III].
const BITRATES = [
  [
    [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  ],
  [
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  ],
];
const MPEG_RATES = [44100, 48000, 32000];

/**
 * The length in bytes of the MPEG audio frame whose header starts at `at`: 0 for a free-format frame (length not in
 * the header), −1 when the 4 bytes there are not a valid header.
 */
export function mpegFrameLength(b: Uint8Array, at: number): number {
  if (at + 4 > b.length || b[at] !== 0xff || (b[at + 1] & 0xe0) !== 0xe0) return -1;
  const version = (b[at + 1] >> 3) & 3; // 0: MPEG 2.5, 1: reserved, 2: MPEG 2, 3: MPEG 1
  const layer = 4 - ((b[at + 1] >> 1) & 3); // 1, 2, 3 (4 = reserved code 0)
  const bitrateIndex = b[at + 2] >> 4;
  const rateIndex = (b[at + 2] >> 2) & 3;
  if (version === 1 || layer === 4 || bitrateIndex === 15 || rateIndex === 3) return -1;
  const kbps = BITRATES[version === 3 ? 0 : 1][layer - 1][bitrateIndex];
  if (kbps === 0) return 0;
  const rate = MPEG_RATES[rateIndex] / (version === 3 ? 1 : version === 2 ? 2 : 4);
  const pad = (b[at + 2] >> 1) & 1;
  if (layer === 1) return (Math.floor((12000 * kbps) / rate) + pad) * 4;
  const perFrame = layer === 3 && version !== 3 ? 72000 : 144000;
  return Math.floor((perFrame * kbps) / rate) + pad;
}

/** Where the first MPEG audio frame starts at or after `from`, confirmed by a second header right after it; or −1. */
export function findMpegFrame(b: Uint8Array, from: number, scanLimit = 65536): number {
  const end = Math.min(b.length - 4, from + scanLimit);
  for (let at = from; at <= end; at++) {
    const length = mpegFrameLength(b, at);
    if (length < 0) continue;
    // At the very start a lone frame (or a free-format one) is enough; further in, require the next header too, so
    // that stray 0xFFE0 bytes in junk are not taken for audio.
    if (at === from && (length === 0 || at + length >= b.length)) return at;
    if (length > 0 && mpegFrameLength(b, at + length) >= 0 && (b[at + 1] & 0xfe) === (b[at + length + 1] & 0xfe)) {
      return at;
    }
  }
  return -1;
}

/** The first packet of the first Ogg page (the stream's identification header), or an empty array. */
function firstOggPacket(b: Uint8Array): Uint8Array {
  if (b.length < 27) return new Uint8Array();
  const segments = b[26];
  let size = 0;
  for (let i = 0; i < segments && 27 + i < b.length; i++) {
    size += b[27 + i];
    if (b[27 + i] < 255) break;
  }
  const start = 27 + segments;
  return b.subarray(start, Math.min(start + size, b.length));
}

function unsupported(format: string, detail: string): UnsupportedAudioError {
  return new UnsupportedAudioError(
    "unsupported_audio",
    `${detail}; supported audio formats are ${SUPPORTED_AUDIO_FORMATS.join(", ")}`,
    format,
  );
}

/** Known signatures of formats we do not decode: [name, test]. */
const UNSUPPORTED_SIGNATURES: [string, (b: Uint8Array) => boolean][] = [
  ["MP4/M4A (AAC, ALAC or video)", (b) => ascii(b, 4, 4) === "ftyp"],
  ["QuickTime", (b) => ["moov", "mdat", "wide", "free", "skip"].includes(ascii(b, 4, 4))],
  ["WebM/Matroska", (b) => b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3],
  ["AIFF", (b) => ascii(b, 0, 4) === "FORM" && ["AIFF", "AIFC"].includes(ascii(b, 8, 4))],
  ["AAC (ADIF)", (b) => ascii(b, 0, 4) === "ADIF"],
  ["AMR", (b) => ascii(b, 0, 5) === "#!AMR"],
  ["Sun AU", (b) => ascii(b, 0, 4) === ".snd"],
  ["CAF", (b) => ascii(b, 0, 4) === "caff"],
  ["WavPack", (b) => ascii(b, 0, 4) === "wvpk"],
  ["Monkey's Audio", (b) => ascii(b, 0, 4) === "MAC "],
  ["ASF/WMA", (b) => b[0] === 0x30 && b[1] === 0x26 && b[2] === 0xb2 && b[3] === 0x75],
  ["FLV video", (b) => ascii(b, 0, 3) === "FLV"],
  ["MIDI", (b) => ascii(b, 0, 4) === "MThd"],
  ["MPEG video", (b) => b[0] === 0 && b[1] === 0 && b[2] === 1 && (b[3] === 0xba || b[3] === 0xb3)],
  ["MPEG transport stream", (b) => b.length > 188 && b[0] === 0x47 && b[188] === 0x47],
  ["safetensors (a voice or weights file, not audio)", (b) => b.length > 9 && b[8] === 0x7b && b[9] === 0x22],
];

/**
 * Detect an audio file's format from its bytes (signatures, never a file name): WAV (RIFF/WAVE, also RIFX and RF64,
 * which {@link decodeWav} then rejects with a precise message), FLAC, MP3 (MPEG audio layers I–III, after any ID3v2
 * tags), and Ogg carrying Vorbis, Opus or FLAC.
 *
 * @example
 * ```ts
 * detectAudioFormat(await Deno.readFile("prompt.flac")); // "flac", whatever the file is called
 * ```
 *
 * @param bytes the file (its first few kilobytes suffice unless an MP3 starts with junk)
 * @returns the format
 * @throws {UnsupportedAudioError} `"unsupported_audio"` for anything else — AAC/M4A, video, AIFF, other Ogg codecs,
 *   junk or empty bytes — naming what was detected and the supported formats
 */
export function detectAudioFormat(bytes: Uint8Array): AudioFormat {
  const b = bytes;
  if (b.length === 0) throw unsupported("empty", "empty audio data");
  const riff = ascii(b, 0, 4);
  if (riff === "RIFF" || riff === "RIFX" || riff === "RF64") {
    const form = ascii(b, 8, 4);
    if (form === "WAVE" || b.length < 12) return "wav";
    throw unsupported(form === "AVI " ? "AVI video" : `RIFF ${form}`, `unsupported audio format: RIFF "${form}"`);
  }
  if (ascii(b, 0, 4) === "OggS") {
    const packet = firstOggPacket(b);
    if (ascii(packet, 0, 8) === "OpusHead") return "ogg_opus";
    if (packet[0] === 1 && ascii(packet, 1, 6) === "vorbis") return "ogg_vorbis";
    if (packet[0] === 0x7f && ascii(packet, 1, 4) === "FLAC") return "ogg_flac";
    const codec = ascii(packet, 0, 8) === "Speex   "
      ? "Speex"
      : packet[0] === 0x80 && ascii(packet, 1, 6) === "theora"
      ? "Theora video"
      : ascii(packet, 0, 8) === "fishead\0"
      ? "Ogg Skeleton (video container)"
      : "an unknown codec";
    throw unsupported(`Ogg ${codec}`, `unsupported audio format: Ogg carrying ${codec}`);
  }
  const tags = id3v2Length(b);
  if (ascii(b, tags, 4) === "fLaC") return "flac";
  // ADTS AAC shares MPEG audio's sync word; its "layer" bits are 00, which MPEG audio reserves.
  if (b[tags] === 0xff && (b[tags + 1] & 0xf6) === 0xf0) {
    throw unsupported("AAC (ADTS)", "unsupported audio format: AAC");
  }
  // After ID3 tags, encoders may leave padding before the first frame: look a little further in.
  if (findMpegFrame(b, tags, tags > 0 ? 65536 : 0) >= 0) return "mp3";
  for (const [name, test] of UNSUPPORTED_SIGNATURES) {
    if (test(b)) throw unsupported(name, `unsupported audio format: ${name}`);
  }
  if (tags > 0) throw unsupported("unknown", "ID3-tagged data without MPEG audio frames");
  throw unsupported("unknown", "unrecognised audio data (no known file signature)");
}

/**
 * Whether an MPEG audio stream is cut inside a frame: walks the frames from `first` by their header lengths and
 * reports a frame that runs past the end. Walking stops quietly at anything that is not a frame header (an ID3v1 or
 * APE tag, trailing junk) or at a free-format frame, whose length the header does not give.
 */
export function mpegIsCut(b: Uint8Array, first: number): boolean {
  let at = first;
  for (;;) {
    const length = mpegFrameLength(b, at);
    if (length <= 0) return false;
    if (at + length > b.length) return true;
    at += length;
  }
}

/**
 * Whether an Ogg stream is cut: a page that runs past the end, or a last page without the end-of-stream flag
 * (RFC 3533 §6: every logical stream ends with a page flagged EOS).
 */
export function oggIsCut(b: Uint8Array): boolean {
  let at = 0;
  let lastFlags = -1;
  while (at + 27 <= b.length && ascii(b, at, 4) === "OggS") {
    const segments = b[at + 26];
    if (at + 27 + segments > b.length) return true;
    let body = 0;
    for (let i = 0; i < segments; i++) body += b[at + 27 + i];
    lastFlags = b[at + 5];
    at += 27 + segments + body;
    if (at > b.length) return true;
  }
  // A page header cut short.
  if (at < b.length && b.length - at < 27 && "OggS".startsWith(ascii(b, at, Math.min(4, b.length - at)))) return true;
  return lastFlags < 0 || (lastFlags & 0x04) === 0;
}
