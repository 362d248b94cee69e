/**
 * Response audio formats. Each is a streaming encoder: bytes for the start, for each 80 ms frame as it is generated,
 * and for the end. A format is offered only when it really is that format; any other name gets a 400 that lists the
 * supported ones (never WAV labelled as something else).
 *
 * @module
 */

import { WavStreamWriter } from "../audio/wav.ts";
import { HttpError } from "./errors.ts";

/** A streaming encoder of 24 kHz mono float frames. */
export interface ResponseEncoder {
  /** MIME type of the whole stream. */
  readonly contentType: string;
  /** Bytes before the first frame. */
  start(): Uint8Array;
  /** Bytes of one frame. */
  frame(samples: Float32Array): Uint8Array | Promise<Uint8Array>;
  /** Bytes after the last frame. */
  end(): Uint8Array | Promise<Uint8Array>;
}

/** Options of {@link createEncoder}. */
export interface EncoderOptions {
  sampleRate: number;
  /** Silence appended at the end (the reference's `/tts` adds 200 ms). */
  trailingSilenceMs?: number;
}

const EMPTY = new Uint8Array(0);

/** The encoders, by OpenAI `response_format` name. */
const ENCODERS: Record<string, (o: EncoderOptions) => ResponseEncoder> = {
  // The reference's streaming WAV: an unknown-length header, then PCM16 as it is generated.
  wav: (o) => {
    const w = new WavStreamWriter(o.sampleRate);
    return {
      contentType: "audio/wav",
      start: () => w.header(),
      frame: (s) => w.encode(s),
      end: () => o.trailingSilenceMs ? w.silence(o.trailingSilenceMs) : EMPTY,
    };
  },
  // OpenAI's `pcm`: raw signed 16-bit little-endian samples, 24 kHz mono, no header.
  pcm: (o) => {
    const w = new WavStreamWriter(o.sampleRate);
    return {
      contentType: "audio/pcm",
      start: () => EMPTY,
      frame: (s) => w.encode(s),
      end: () => o.trailingSilenceMs ? w.silence(o.trailingSilenceMs) : EMPTY,
    };
  },
};

/** The `response_format` names this server produces. */
export function supportedFormats(): string[] {
  return Object.keys(ENCODERS);
}

/**
 * An encoder for `format`, or a 400 {@link HttpError} naming the supported formats.
 *
 * @example
 * ```ts
 * const enc = createEncoder("pcm", { sampleRate: 24000 });
 * enc.frame(new Float32Array(1920)).length; // 3840
 * ```
 */
export function createEncoder(format: string, options: EncoderOptions): ResponseEncoder {
  const make = Object.hasOwn(ENCODERS, format) ? ENCODERS[format] : undefined;
  if (!make) {
    throw new HttpError(
      400,
      "unsupported_response_format",
      `response_format "${String(format).slice(0, 40)}" is not supported here; use one of: ${
        supportedFormats().join(", ")
      }`,
      { param: "response_format" },
    );
  }
  return make(options);
}
