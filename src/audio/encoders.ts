/**
 * Streaming audio encoders for the OpenAI speech API's `response_format`s. The server's contract:
 *
 * ```ts
 * const encoder = await createAudioEncoder(format, 24000); // throws UnsupportedAudioError for "aac", unknown names
 * headers["content-type"] = encoder.contentType;
 * for await (const frame of tts.stream(text, { voice })) write(encoder.push(frame)); // bytes now (maybe empty)
 * write(encoder.end());                                                              // the rest; then close
 * ```
 *
 * - `pcm`: raw signed 16-bit little-endian mono, the reference's int16 conversion; no header.
 * - `wav`: the reference CLI's streaming WAV (unknown-length header, then pcm16), bytes as from
 *   {@link WavStreamWriter}.
 * - `mp3`: MPEG-2 layer III through `@breezystack/lamejs` (pure JavaScript, 64 kbit/s CBR by default).
 * - `opus`: Opus in Ogg (RFC 7845) through `@evan/opus`'s WebAssembly build (libopus), 20 ms packets, one Ogg page per
 *   `push` that completes a packet; pre-skip and the end trim are set so decoders return exactly the input's length.
 * - `flac`: FLAC through this library's own encoder (`flac_encoder.ts`, lossless, fixed predictors + Rice codes).
 * - `aac`: not supported (no pure-WebAssembly AAC encoder worth shipping): {@link UnsupportedAudioError}.
 *
 * The codec packages are imported on first use, like the decoders (`codec_import.ts`).
 *
 * @module
 */
import { InvalidAudioError, UnsupportedAudioError } from "../errors.ts";
import { loadLame, loadOpusEncoder } from "./codec_import.ts";
import { FlacStreamEncoder } from "./flac_encoder.ts";
import { concat } from "./bytes.ts";
import { OggWriter } from "./ogg_writer.ts";
import { WavStreamWriter } from "./wav.ts";

/** The `response_format`s {@link createAudioEncoder} produces. */
export const OUTPUT_FORMATS = ["pcm", "wav", "mp3", "opus", "flac"] as const;

/** One of {@link OUTPUT_FORMATS}. */
export type OutputFormat = typeof OUTPUT_FORMATS[number];

/** A streaming encoder made by {@link createAudioEncoder}. */
export interface AudioEncoder {
  /** The format produced. */
  readonly format: OutputFormat;
  /** The HTTP `Content-Type` of the bytes. */
  readonly contentType: string;
  /**
   * Encode the next samples (mono float, any length); returns the bytes ready now, possibly none (an encoder that
   * works in fixed blocks keeps a remainder). The first call's bytes start with the format's header.
   */
  push(samples: Float32Array): Uint8Array;
  /** Flush: the remaining bytes of the stream. Call once, after the last `push`. */
  end(): Uint8Array;
}

/** Options of {@link createAudioEncoder}. */
export interface AudioEncoderOptions {
  /** Bit rate in kbit/s for `mp3` (default 64; a rate lame accepts at this sample rate) and `opus` (default 32). */
  kbps?: number;
}

const CONTENT_TYPES: Record<OutputFormat, string> = {
  pcm: "audio/pcm",
  wav: "audio/wav",
  mp3: "audio/mpeg",
  opus: "audio/ogg; codecs=opus",
  flac: "audio/flac",
};

const EMPTY = new Uint8Array(0);

/** The reference's float → int16 conversion, as {@link WavStreamWriter} writes it. */
function toInt16(samples: Float32Array, pcm: WavStreamWriter): Int16Array {
  const bytes = pcm.encode(samples);
  return new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
}

function pcmEncoder(sampleRate: number): AudioEncoder {
  const writer = new WavStreamWriter(sampleRate);
  return { format: "pcm", contentType: CONTENT_TYPES.pcm, push: (s) => writer.encode(s), end: () => EMPTY };
}

function wavEncoder(sampleRate: number): AudioEncoder {
  const writer = new WavStreamWriter(sampleRate);
  let started = false;
  const header = () => started ? EMPTY : (started = true, writer.header());
  return {
    format: "wav",
    contentType: CONTENT_TYPES.wav,
    push: (s) => concat([header(), writer.encode(s)]),
    end: header,
  };
}

/** The MPEG-1, 2 and 2.5 layer III sample rates. */
const MP3_RATES = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

async function mp3Encoder(sampleRate: number, kbps: number): Promise<AudioEncoder> {
  if (!MP3_RATES.includes(sampleRate)) {
    throw new InvalidAudioError("invalid_audio", `MP3 encodes ${MP3_RATES.join(", ")} Hz, not ${sampleRate}`);
  }
  const { Mp3Encoder } = await loadLame();
  const pcm = new WavStreamWriter(sampleRate);
  let lame;
  try {
    lame = new Mp3Encoder(1, sampleRate, kbps);
  } catch (cause) {
    throw new InvalidAudioError("invalid_audio", `MP3 cannot encode ${sampleRate} Hz at ${kbps} kbit/s`, { cause });
  }
  // lamejs returns Int8Array views of its own buffers, reused by the next call: copy them out as bytes.
  const bytes = (b: Int8Array | Uint8Array) => new Uint8Array(b.buffer, b.byteOffset, b.length).slice();
  return {
    format: "mp3",
    contentType: CONTENT_TYPES.mp3,
    push: (s) => bytes(lame.encodeBuffer(toInt16(s, pcm))),
    end: () => bytes(lame.flush()),
  };
}

const OPUS_RATES = [8000, 12000, 16000, 24000, 48000];
const OPUS_SET_BITRATE = 4002;
const OPUS_GET_LOOKAHEAD = 4027;
/** Our streams' serial number: fixed, so equal audio gives equal bytes (a single-stream file needs no other). */
const OGG_SERIAL = 0x504f4354; // "POCT"

async function opusEncoder(sampleRate: number, kbps: number): Promise<AudioEncoder> {
  if (!OPUS_RATES.includes(sampleRate)) {
    throw new InvalidAudioError("invalid_audio", `Opus encodes ${OPUS_RATES.join(", ")} Hz, not ${sampleRate}`);
  }
  const { Encoder } = await loadOpusEncoder();
  const opus = new Encoder({ channels: 1, sample_rate: sampleRate, application: "audio" });
  opus.ctl(OPUS_SET_BITRATE, kbps * 1000);
  const frame = sampleRate / 50; // 20 ms packets
  const to48k = 48000 / sampleRate;
  // RFC 7845 §4.2: the decoder discards `preSkip` samples (at 48 kHz) first: the encoder's lookahead.
  const preSkip = opus.ctl(OPUS_GET_LOOKAHEAD) * to48k;
  const pcm = new WavStreamWriter(sampleRate);
  const ogg = new OggWriter(OGG_SERIAL);
  const pending = new Float32Array(frame);
  let filled = 0;
  let inputSamples = 0; // real samples pushed
  let packetsOut = 0;
  let started = false;

  const headers = (): Uint8Array => {
    if (started) return EMPTY;
    started = true;
    // OpusHead (RFC 7845 §5.1): version 1, 1 channel, pre-skip, input rate, gain 0, mapping family 0.
    const head = new Uint8Array(19);
    const v = new DataView(head.buffer);
    head.set(new TextEncoder().encode("OpusHead"));
    head[8] = 1;
    head[9] = 1;
    v.setUint16(10, preSkip, true);
    v.setUint32(12, sampleRate, true);
    // OpusTags (§5.2): a vendor string, no comments.
    const vendor = new TextEncoder().encode("@pocket/tts (libopus via @evan/opus)");
    const tags = new Uint8Array(8 + 4 + vendor.length + 4);
    tags.set(new TextEncoder().encode("OpusTags"));
    new DataView(tags.buffer).setUint32(8, vendor.length, true);
    tags.set(vendor, 12);
    return concat([ogg.pages([head], [0]), ogg.pages([tags], [0])]);
  };
  const encodeFrames = (samples: Float32Array, packets: Uint8Array[], granules: number[]) => {
    for (let i = 0; i < samples.length;) {
      const take = Math.min(frame - filled, samples.length - i);
      pending.set(samples.subarray(i, i + take), filled);
      filled += take;
      i += take;
      if (filled === frame) {
        packets.push(opus.encode(toInt16(pending, pcm)).slice());
        granules.push(++packetsOut * frame * to48k);
        filled = 0;
      }
    }
  };
  return {
    format: "opus",
    contentType: CONTENT_TYPES.opus,
    push(samples) {
      inputSamples += samples.length;
      const packets: Uint8Array[] = [];
      const granules: number[] = [];
      encodeFrames(samples, packets, granules);
      const head = headers();
      return packets.length ? concat([head, ogg.pages(packets, granules)]) : head;
    },
    end() {
      const head = headers();
      // Feed zeros until the lookahead has passed the last real sample, and at least one packet exists.
      const packets: Uint8Array[] = [];
      const granules: number[] = [];
      const needed = Math.max(1, Math.ceil((inputSamples * to48k + preSkip) / (frame * to48k)));
      while (packetsOut < needed || filled > 0) encodeFrames(new Float32Array(frame - filled), packets, granules);
      // §4.4: the last page's granule = pre-skip + the real samples, so decoders trim the padding.
      granules[granules.length - 1] = preSkip + inputSamples * to48k;
      return concat([head, ogg.pages(packets, granules, true)]);
    },
  };
}

/**
 * Create a streaming encoder for one response: `push` each frame as it is generated and send what it returns, then
 * send `end()`. Codec packages load on first use of their format (see the module description for each format).
 *
 * @example
 * ```ts
 * import { createAudioEncoder } from "@pocket/tts";
 *
 * const encoder = await createAudioEncoder("mp3", tts.sampleRate);
 * const body = new ReadableStream({
 *   async start(controller) {
 *     for await (const frame of tts.stream("Hello there.")) controller.enqueue(encoder.push(frame));
 *     controller.enqueue(encoder.end());
 *     controller.close();
 *   },
 * });
 * new Response(body, { headers: { "content-type": encoder.contentType } });
 * ```
 *
 * @param format `"pcm"`, `"wav"`, `"mp3"`, `"opus"` or `"flac"`
 * @param sampleRate the samples' rate (24000 for the model; Opus needs 8, 12, 16, 24 or 48 kHz)
 * @param options bit rate for the lossy formats
 * @returns the encoder
 * @throws {UnsupportedAudioError} `"unsupported_audio"` for `"aac"` or an unknown name (the message lists
 *   {@link OUTPUT_FORMATS}); `"codec_unavailable"` when the codec package cannot be imported
 * @throws {InvalidAudioError} `"invalid_audio"` for a sample rate or bit rate the format cannot encode
 */
export async function createAudioEncoder(
  format: string,
  sampleRate: number,
  options: AudioEncoderOptions = {},
): Promise<AudioEncoder> {
  if (!Number.isInteger(sampleRate) || sampleRate < 1) {
    throw new InvalidAudioError("invalid_audio", `invalid sample rate ${sampleRate}: expected a positive integer`);
  }
  switch (format) {
    case "pcm":
      return pcmEncoder(sampleRate);
    case "wav":
      return wavEncoder(sampleRate);
    case "mp3":
      return await mp3Encoder(sampleRate, options.kbps ?? 64);
    case "opus":
      return await opusEncoder(sampleRate, options.kbps ?? 32);
    case "flac": {
      const flac = new FlacStreamEncoder(sampleRate);
      return { format: "flac", contentType: CONTENT_TYPES.flac, push: (s) => flac.push(s), end: () => flac.end() };
    }
  }
  throw new UnsupportedAudioError(
    "unsupported_audio",
    `unsupported output format "${format}"${format === "aac" ? " (no AAC encoder is bundled)" : ""}: supported are ${
      OUTPUT_FORMATS.join(", ")
    }`,
    format,
  );
}
