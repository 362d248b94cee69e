/**
 * Response audio: the library's streaming encoders (`createAudioEncoder`: pcm, wav, mp3, opus, flac) behind one
 * per-response interface, with the optional `speed` time-stretch (WSOLA, pitch kept) in front. A format is offered
 * only when it really is that format; any other name gets a 400 that lists the supported ones (never WAV labelled as
 * something else).
 *
 * @module
 */

import { createAudioEncoder, OUTPUT_FORMATS } from "../audio/encoders.ts";
import { TimeStretcher } from "../audio/time_stretch.ts";
import { PocketTtsError } from "../errors.ts";
import { HttpError } from "./errors.ts";

/** A streaming encoder of 24 kHz mono float frames for one response. */
export interface ResponseEncoder {
  /** MIME type of the whole stream. */
  readonly contentType: string;
  /** Bytes before the first frame. */
  start(): Uint8Array;
  /** Bytes of one frame (possibly none: block codecs keep a remainder). */
  frame(samples: Float32Array): Uint8Array;
  /** Bytes after the last frame. */
  end(): Uint8Array;
}

/** Options of {@link createEncoder}. */
export interface EncoderOptions {
  sampleRate: number;
  /** Silence appended at the end (the reference's `/tts` adds 200 ms). */
  trailingSilenceMs?: number;
  /** Playback speed, 0.25–4 (default 1: no time-stretch). */
  speed?: number;
}

const EMPTY = new Uint8Array(0);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The `response_format` names this server produces. */
export function supportedFormats(): string[] {
  return [...OUTPUT_FORMATS];
}

/**
 * An encoder for `format`, or a 400 {@link HttpError} naming the supported formats.
 *
 * @example
 * ```ts
 * const enc = await createEncoder("pcm", { sampleRate: 24000 });
 * enc.frame(new Float32Array(1920)).length; // 3840
 * ```
 */
export async function createEncoder(format: string, options: EncoderOptions): Promise<ResponseEncoder> {
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    throw new HttpError(
      400,
      "unsupported_response_format",
      `response_format "${String(format).slice(0, 40)}" is not supported here; use one of: ${
        supportedFormats().join(", ")
      }`,
      { param: "response_format" },
    );
  }
  let enc;
  try {
    enc = await createAudioEncoder(format as typeof OUTPUT_FORMATS[number], options.sampleRate);
  } catch (e) {
    if (e instanceof PocketTtsError && e.code === "codec_unavailable") {
      throw new HttpError(400, "unsupported_response_format", `${format} is unavailable on this server: ${e.message}`, {
        param: "response_format",
      });
    }
    throw e;
  }
  const speed = options.speed ?? 1;
  const stretch = speed !== 1 ? new TimeStretcher(speed, options.sampleRate) : null;
  const silence = Math.round(options.sampleRate * (options.trailingSilenceMs ?? 0) / 1000);
  return {
    contentType: enc.contentType,
    start: () => EMPTY,
    frame: (s) => enc.push(stretch ? stretch.push(s) : s),
    end: () => {
      let out = stretch ? enc.push(stretch.end()) : EMPTY;
      if (silence) out = concat(out, enc.push(new Float32Array(silence)));
      return concat(out, enc.end());
    },
  };
}
