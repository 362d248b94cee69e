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
} from "./codec_import.ts";
import { decodeWav, toMono, WAV_UNKNOWN_LENGTH } from "./wav.ts";

/** Mono audio decoded by {@link decodeAudio}. */
export interface DecodedAudio {
  /** The samples, channels averaged to one, as float32 in [−1, 1]. */
  samples: Float32Array;
  /** Samples per second (Opus always decodes at 48000). */
  sampleRate: number;
  /** Channels in the file, before averaging. */
  channels: number;
  /** The format detected from the bytes. */
  format: AudioFormat;
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

function decodeWavMono(bytes: Uint8Array): DecodedAudio {
  const wav = decodeWav(bytes);
  const frameBytes = (wav.channels * Number(wav.encoding.replace(/\D/g, ""))) / 8; // "pcm24" → 3 bytes a sample
  if (wav.truncated && !isStreamingPlaceholder(wav.dataSize, frameBytes)) {
    throw new InvalidAudioError(
      "truncated_audio",
      `WAV file is cut short: ${wav.length} of the ${Math.floor(wav.dataSize / frameBytes)} sample frames its data ` +
        "chunk declares are present",
    );
  }
  return { samples: toMono(wav), sampleRate: wav.sampleRate, channels: wav.channels, format: "wav" };
}

/** Total samples per channel a FLAC STREAMINFO block declares (0 = unknown). */
function flacTotalSamples(b: Uint8Array): number {
  const body = id3v2Length(b) + 8; // "fLaC", then the STREAMINFO block's 4-byte header
  if (body + 18 > b.length) return 0;
  // Bytes 10–17: sample rate (20 bits), channels − 1 (3), bits − 1 (5), total samples (36).
  return (b[body + 13] & 0x0f) * 2 ** 32 + ((b[body + 14] << 24) >>> 0) + (b[body + 15] << 16) +
    (b[body + 16] << 8) + b[body + 17];
}

function checkDecoded(format: AudioFormat, out: DecodedChannels): void {
  const name = FORMAT_NAMES[format];
  if (out.errors.length > 0) {
    throw new InvalidAudioError(
      "corrupt_audio",
      `${name} data is damaged: the decoder reported ${out.errors.length} error(s), first "${out.errors[0].message}"`,
    );
  }
  if (out.samplesDecoded === 0 || out.channelData.length === 0) {
    throw new InvalidAudioError("corrupt_audio", `${name} data holds no decodable audio`);
  }
}

/**
 * The FLAC decoder scales a b-bit sample s to s / (2^(b−1) − 1); WAV decoding (and the reference) use s / 2^(b−1).
 * Recover s (exact in float32 up to 24 bits) and rescale, so that FLAC and WAV of the same PCM give the same samples.
 */
function rescaleIntegers(channels: Float32Array[], bits: number): void {
  const full = 2 ** (bits - 1);
  for (const channel of channels) {
    for (let i = 0; i < channel.length; i++) channel[i] = Math.round(channel[i] * (full - 1)) / full;
  }
}

function mixDown(out: DecodedChannels): Float32Array {
  const channels = out.channelData;
  const n = out.samplesDecoded;
  if (channels.length === 1) return channels[0].length === n ? channels[0] : channels[0].slice(0, n);
  const mono = new Float32Array(n);
  for (const channel of channels) for (let i = 0; i < n; i++) mono[i] += channel[i];
  for (let i = 0; i < n; i++) mono[i] /= channels.length;
  return mono;
}

/**
 * `@wasm-audio-decoders/flac` (0.2.11) ends a frame where the next frame's sync code starts, so a file's last frame
 * is never decoded (and the check below would call every multi-frame file cut). A copy of the first frame's opening
 * bytes after the data gives the last frame its end; the copy itself is incomplete and dropped. Returns a new buffer
 * (the decoders must not touch the caller's).
 */
function withFrameSyncAfter(b: Uint8Array): Uint8Array {
  let at = id3v2Length(b) + 4; // after "fLaC": metadata blocks, each a flag/type byte and a 24-bit length
  for (let last = false; !last && at + 4 <= b.length; at += 4 + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3])) {
    last = (b[at] & 0x80) !== 0;
  }
  const head = b.subarray(at, Math.min(at + 16, b.length));
  const out = new Uint8Array(b.length + head.length);
  out.set(b);
  out.set(head, b.length);
  return out;
}

/** Run the format's decoder over the whole file; whatever it throws on bad data becomes `corrupt_audio`. */
async function runDecoder(format: AudioFormat, b: Uint8Array): Promise<DecodedChannels> {
  const decoder = format === "mp3"
    ? new (await loadMpegDecoder()).MPEGDecoder()
    : format === "ogg_opus"
    ? new (await loadOggOpusDecoder()).OggOpusDecoder()
    : format === "ogg_vorbis"
    ? new (await loadOggVorbisDecoder()).OggVorbisDecoder()
    : new (await loadFlacDecoder()).FLACDecoder();
  try {
    await decoder.ready;
    // A copy: the decoders may keep or transfer what they are given, and must not touch a caller's buffer.
    const input = format === "flac" ? withFrameSyncAfter(b) : b.slice();
    return "decodeFile" in decoder ? await decoder.decodeFile(input) : decoder.decode(input);
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

async function decodeCompressed(format: AudioFormat, b: Uint8Array): Promise<DecodedAudio> {
  const name = FORMAT_NAMES[format];
  const mpegStart = format === "mp3" ? findMpegFrame(b, id3v2Length(b), 65536) : -1;
  const cut = format === "mp3" ? mpegIsCut(b, mpegStart) : format === "flac" ? false : oggIsCut(b);
  if (cut) throw new InvalidAudioError("truncated_audio", `${name} file is cut short (it ends inside a frame or page)`);

  const out = await runDecoder(format, b);
  if (format === "flac") {
    const total = flacTotalSamples(b);
    if (total > 0 && out.samplesDecoded < total) {
      throw new InvalidAudioError(
        "truncated_audio",
        `FLAC file is cut short: ${out.samplesDecoded} of the ${total} samples its header declares were decoded`,
      );
    }
  }
  checkDecoded(format, out);
  if (out.bitDepth && out.bitDepth <= 24) rescaleIntegers(out.channelData, out.bitDepth);
  // mpg123 always outputs two channels; the frame header's channel mode tells mono (3) from stereo.
  const channels = mpegStart >= 0 && b[mpegStart + 3] >> 6 === 3 ? 1 : out.channelData.length;
  return { samples: mixDown(out), sampleRate: out.sampleRate, channels, format };
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
 * @example
 * ```ts
 * import { decodeAudio, resample } from "@pocket/tts";
 *
 * const { samples, sampleRate, format } = await decodeAudio(await Deno.readFile("me.mp3")); // format "mp3"
 * const prompt = resample(samples, sampleRate, 24000);
 * ```
 *
 * @param bytes the whole file
 * @returns mono samples, their rate, the file's channel count and format
 * @throws {UnsupportedAudioError} `"unsupported_audio"` (AAC/M4A, video, other formats, junk, empty: the message names
 *   the supported formats) or `"codec_unavailable"` (the decoder package cannot be imported)
 * @throws {InvalidAudioError} the WAV codes of {@link decodeWav}; `"truncated_audio"` (a cut file);
 *   `"corrupt_audio"` (the decoder reports damaged frames or finds no audio)
 */
export async function decodeAudio(bytes: Uint8Array | ArrayBuffer): Promise<DecodedAudio> {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const format = detectAudioFormat(b);
  return format === "wav" ? decodeWavMono(b) : await decodeCompressed(format, b);
}
