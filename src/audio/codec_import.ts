/**
 * Lazy loading of the audio codec packages (field libraries from npm), so WAV users and the published core pay nothing
 * until a FLAC, MP3 or Ogg file arrives.
 *
 * Each loader holds two literal `import()`s: `npm:NAME@VERSION` for Deno (and what JSR records as the dependency), and
 * the bare `NAME` for Bun, Node and browser bundlers, which resolve it from `node_modules`. Literal specifiers keep the
 * imports visible to `deno publish`, to bundlers and to the npm build, which rewrites `npm:NAME@VERSION[/path]` to
 * `NAME[/path]` (both branches then name the same package). In the esbuild bundles of the tests, `npm:*` and these
 * packages are marked external (`scripts/test.sh`), so Node loads them from `node_modules` at run time. The `npm:`
 * prefix is deliberate, so `no-import-prefix` is silenced on those lines: the source then runs in Deno from a URL or
 * JSR without any import map or `node_modules`.
 *
 * @module
 */
import { UnsupportedAudioError } from "../errors.ts";

const IN_DENO = typeof (globalThis as { Deno?: { version?: { deno?: unknown } } }).Deno?.version?.deno === "string";

/** Load a codec package once per process; a failure is an {@link UnsupportedAudioError} naming the package. */
function lazy<T>(name: string, format: string, load: (inDeno: boolean) => Promise<unknown>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= load(IN_DENO).then(
      (m) => m as T,
      (cause) => {
        pending = undefined; // let a later call retry (e.g. after the package was installed)
        throw new UnsupportedAudioError(
          "codec_unavailable",
          `cannot load the ${format} codec: the npm package "${name}" failed to import (${
            cause instanceof Error ? cause.message : String(cause)
          }); in Node or Bun, install it with "npm install ${name}"`,
          format,
          { cause },
        );
      },
    );
    return pending;
  };
}

/** What this module uses of a `@wasm-audio-decoders`-family decoder's output. */
export interface DecodedChannels {
  /** One array per channel. */
  channelData: Float32Array[];
  /** Samples per channel. */
  samplesDecoded: number;
  /** Samples per second. */
  sampleRate: number;
  /** Descriptions of damaged frames (decoding goes on past them). */
  errors: { message: string }[];
  /** Bits per sample of integer formats (FLAC). */
  bitDepth?: number;
}

/**
 * The decoder instances of the family, used as streams: `ready`, then the file in pieces (each call returns the audio
 * of the frames completed so far), `flush` for what the last piece left (MPEG has none), `free`.
 */
export interface StreamDecoder {
  /** Resolves when the decoder's WebAssembly is compiled. */
  ready: Promise<void>;
  /** Decode the next piece of the file. */
  decode(piece: Uint8Array): DecodedChannels | Promise<DecodedChannels>;
  /** Decode what is left buffered at the end of the file. */
  flush?(): Promise<DecodedChannels>;
  /** Free the decoder's WebAssembly memory. */
  free(): void;
}

/** `@wasm-audio-decoders/flac` (FLAC and Ogg FLAC). */
export const loadFlacDecoder: () => Promise<{
  FLACDecoder: new () => StreamDecoder;
}> = lazy(
  "@wasm-audio-decoders/flac",
  "FLAC",
  // deno-lint-ignore no-import-prefix -- Deno takes the pinned npm: specifier, whatever import map the user has
  (deno) => deno ? import("npm:@wasm-audio-decoders/flac@0.2.11") : import("@wasm-audio-decoders/flac"),
);

/** `mpg123-decoder` (MPEG-1/2 layers I–III). */
export const loadMpegDecoder: () => Promise<{
  MPEGDecoder: new () => StreamDecoder;
}> = lazy(
  "mpg123-decoder",
  "MP3",
  // deno-lint-ignore no-import-prefix -- Deno takes the pinned npm: specifier, whatever import map the user has
  (deno) => deno ? import("npm:mpg123-decoder@1.0.3") : import("mpg123-decoder"),
);

/** `ogg-opus-decoder`. */
export const loadOggOpusDecoder: () => Promise<{
  OggOpusDecoder: new () => StreamDecoder;
}> = lazy(
  "ogg-opus-decoder",
  "Ogg Opus",
  // deno-lint-ignore no-import-prefix -- Deno takes the pinned npm: specifier, whatever import map the user has
  (deno) => deno ? import("npm:ogg-opus-decoder@1.7.5") : import("ogg-opus-decoder"),
);

/** `@wasm-audio-decoders/ogg-vorbis`. */
export const loadOggVorbisDecoder: () => Promise<{
  OggVorbisDecoder: new () => StreamDecoder;
}> = lazy(
  "@wasm-audio-decoders/ogg-vorbis",
  "Ogg Vorbis",
  // deno-lint-ignore no-import-prefix -- Deno takes the pinned npm: specifier, whatever import map the user has
  (deno) => deno ? import("npm:@wasm-audio-decoders/ogg-vorbis@0.1.20") : import("@wasm-audio-decoders/ogg-vorbis"),
);

/** `@breezystack/lamejs` (MP3 encoder, pure JavaScript). */
export const loadLame: () => Promise<{
  Mp3Encoder: new (channels: number, sampleRate: number, kbps: number) => {
    encodeBuffer(left: Int16Array): Int8Array | Uint8Array;
    flush(): Int8Array | Uint8Array;
  };
}> = lazy(
  "@breezystack/lamejs",
  "MP3",
  // deno-lint-ignore no-import-prefix -- see the module description
  (deno) => deno ? import("npm:@breezystack/lamejs@1.2.7") : import("@breezystack/lamejs"),
);

/**
 * `@evan/opus`, its WebAssembly build (libopus) imported directly: the package's main entry prefers a native Node
 * addon, which Deno cannot load and which would make results depend on the platform.
 */
export const loadOpusEncoder: () => Promise<{
  Encoder: new (options: { channels: 1 | 2; sample_rate: number; application: "voip" | "audio" }) => {
    /** Interleaved s16 PCM of one frame → one Opus packet (a view reused by the next call). */
    encode(pcm: Int16Array): Uint8Array;
    /** `opus_encoder_ctl`: a getter without `value`, a setter with it. */
    ctl(request: number, value?: number): number;
  };
}> = lazy(
  "@evan/opus",
  "Opus",
  // deno-lint-ignore no-import-prefix -- see the module description
  (deno) => deno ? import("npm:@evan/opus@1.0.3/wasm/index.mjs") : import("@evan/opus/wasm/index.mjs"),
);
