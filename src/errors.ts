/**
 * Error classes of @pocket/tts. Every error the library throws on purpose is a {@link PocketTtsError} with a
 * stable `code` string, so callers can branch on the kind of failure without parsing messages.
 *
 * @module
 */

/** Base class of every error thrown on purpose by @pocket/tts. */
export class PocketTtsError extends Error {
  /** A stable, machine-readable identifier of the kind of failure (e.g. `"invalid_weights"`). */
  code: string;

  /**
   * Creates the error.
   *
   * @param code stable identifier of the failure kind
   * @param message human-readable description naming the problem
   * @param options standard error options (`cause`)
   */
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * A weights file (safetensors) is malformed or does not fit the model: bad header, out-of-range or overlapping data,
 * unsupported dtype, missing or extra tensor, or a shape that disagrees with the config.
 */
export class InvalidWeightsError extends PocketTtsError {
  /** The offending tensor, when the problem concerns one. */
  tensor?: string;
  /** The file (path or URL) being read, when known. */
  file?: string;

  /**
   * Creates the error.
   *
   * @param message description naming the problem (and the tensor, when there is one)
   * @param details the offending tensor and file, when known
   */
  constructor(message: string, details: { tensor?: string; file?: string; cause?: unknown } = {}) {
    super("invalid_weights", message, { cause: details.cause });
    this.tensor = details.tensor;
    this.file = details.file;
  }
}

/** A model config is malformed: unknown key, missing key, wrong type, or inconsistent dimensions. */
export class ConfigError extends PocketTtsError {
  /** Dotted path of the offending key (e.g. `"flow_lm.transformer.num_heads"`), when the problem concerns one. */
  key?: string;

  /**
   * Creates the error.
   *
   * @param message description naming the problem and the key
   * @param key dotted path of the offending key
   */
  constructor(message: string, key?: string) {
    super("invalid_config", message);
    this.key = key;
  }
}

/** Downloading a model file failed: HTTP error status, connection dropped mid-transfer, or a bad checksum. */
export class DownloadError extends PocketTtsError {
  /** The URL that failed. */
  url: string;
  /** The HTTP status, when the server answered. */
  status?: number;

  /**
   * Creates the error.
   *
   * @param code specific kind: `"not_found"`, `"unauthorized"`, `"http_error"`, `"incomplete"`, `"checksum"`,
   *   `"network"`
   * @param message description naming the file and the problem
   * @param details the URL, HTTP status and cause
   */
  constructor(code: string, message: string, details: { url: string; status?: number; cause?: unknown }) {
    super(code, message, { cause: details.cause });
    this.url = details.url;
    this.status = details.status;
  }
}

/**
 * Model files are needed but neither present locally nor downloadable (no network, or `HF_HUB_OFFLINE=1`).
 * The message names every missing file and how to provide it.
 */
export class OfflineError extends PocketTtsError {
  /** Every file that could not be found, as the source it would be fetched from. */
  missing: string[];

  /**
   * Creates the error.
   *
   * @param message description naming every missing file and how to provide it
   * @param missing the missing files
   * @param cause the network failure, when there was one
   */
  constructor(message: string, missing: string[], cause?: unknown) {
    super("offline", message, { cause });
    this.missing = missing;
  }
}

/** A local model file (config, weights, tokenizer) does not exist or cannot be read. */
export class ModelFileError extends PocketTtsError {
  /** The file concerned. */
  file: string;

  /**
   * Creates the error.
   *
   * @param message description naming the file and the problem
   * @param file the file concerned
   * @param cause the underlying error
   */
  constructor(message: string, file: string, cause?: unknown) {
    super("model_file", message, { cause });
    this.file = file;
  }
}

/**
 * Text given to the text front-end cannot be used: empty or whitespace-only after stripping, or not representable
 * as UTF-8 (a lone surrogate).
 */
export class InvalidTextError extends PocketTtsError {
  /**
   * Creates the error.
   *
   * @param message description naming the problem
   * @param code specific kind: `"empty_text"` or `"invalid_text"` (the default)
   */
  constructor(message: string, code: "empty_text" | "invalid_text" = "invalid_text") {
    super(code, message);
  }
}

/**
 * A tokenizer file (SentencePiece `.model` protobuf or Hugging Face `tokenizer.json`) is malformed or uses a
 * feature this implementation does not support. The message names the field and the problem.
 */
export class InvalidTokenizerError extends PocketTtsError {
  /**
   * Creates the error.
   *
   * @param message description naming the field and the problem
   * @param cause the underlying error, when there is one
   */
  constructor(message: string, cause?: unknown) {
    super("invalid_tokenizer", message, { cause });
  }
}

/** A token id passed to a tokenizer is not an integer in `[0, vocabSize)`. */
export class InvalidTokenIdError extends PocketTtsError {
  /** The offending id. */
  id: number;

  /**
   * Creates the error.
   *
   * @param id the offending id
   * @param vocabSize the tokenizer's vocabulary size
   */
  constructor(id: number, vocabSize: number) {
    super("invalid_token_id", `token id ${id} is out of range: the vocabulary has ${vocabSize} pieces`);
    this.id = id;
  }
}

/**
 * The WebAssembly core failed: the runtime lacks WebAssembly SIMD, the `.wasm` file could not be loaded, or a core
 * call rejected its input (the message names the tensor, dimension or argument at fault).
 */
export class WasmCoreError extends PocketTtsError {
  /**
   * Creates the error.
   *
   * @param message description naming the problem
   * @param code specific kind: `"wasm_unsupported"`, `"wasm_load"` or `"wasm_call"` (the default)
   * @param options standard error options (`cause`)
   */
  constructor(message: string, code: "wasm_unsupported" | "wasm_load" | "wasm_call" = "wasm_call", options?: {
    cause?: unknown;
  }) {
    super(code, message, options);
  }
}

/** The specific kinds of {@link InvalidAudioError}. */
export type InvalidAudioCode =
  | "not_wav"
  | "truncated_wav"
  | "missing_wav_chunk"
  | "unsupported_wav"
  | "invalid_wav"
  | "invalid_audio"
  | "truncated_audio"
  | "corrupt_audio";

/**
 * Audio bytes or audio arguments cannot be used. Codes:
 * - `"not_wav"`: the bytes are not a RIFF/WAVE file;
 * - `"truncated_wav"`: the file ends inside its RIFF header or `fmt ` chunk, or is cut before its `data` chunk;
 * - `"missing_wav_chunk"`: there is no `fmt ` or no `data` chunk;
 * - `"unsupported_wav"`: a format code, bit depth or container (RIFX, RF64) this decoder does not read;
 * - `"invalid_wav"`: a `fmt ` chunk with zero channels, a zero sample rate or a malformed extension;
 * - `"invalid_audio"`: an argument given to the encoder is out of range (sample rate, channel count, sample count);
 * - `"truncated_audio"`: a FLAC, MP3 or Ogg file (or a WAV whose `data` chunk declares a real length) is cut short;
 * - `"corrupt_audio"`: a FLAC, MP3 or Ogg file whose decoder reports damaged frames or finds no audio at all.
 */
export class InvalidAudioError extends PocketTtsError {
  /**
   * Create an audio error.
   *
   * @param code specific kind of failure (see the class description)
   * @param message description naming the problem
   * @param options standard error options (`cause`: e.g. what a decoder threw)
   */
  constructor(code: InvalidAudioCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Audio formats {@link UnsupportedAudioError} names as supported, in the words its messages use. */
export const SUPPORTED_AUDIO_FORMATS: readonly string[] = [
  "WAV (PCM 8/16/24/32-bit, float 32/64-bit)",
  "FLAC",
  "MP3",
  "Ogg Vorbis",
  "Ogg Opus",
];

/**
 * Audio bytes are in a format this library does not read (AAC/M4A, video, AIFF, …, or not audio at all), or the
 * codec package a supported format needs cannot be loaded in this runtime. Codes:
 * - `"unsupported_audio"`: the format is not supported; `format` names what was detected (`"unknown"` for bytes no
 *   known signature matches) and the message lists {@link SUPPORTED_AUDIO_FORMATS};
 * - `"codec_unavailable"`: a supported format's decoder (an npm package imported on demand) failed to load; the
 *   message names the package.
 */
export class UnsupportedAudioError extends PocketTtsError {
  /** What the bytes were detected as (e.g. `"MP4/M4A"`, `"unknown"`), or the format whose codec is missing. */
  format: string;

  /**
   * Creates the error.
   *
   * @param code `"unsupported_audio"` or `"codec_unavailable"`
   * @param message description naming the format and what is supported (or the package that failed to load)
   * @param format the detected format
   * @param options standard error options (`cause`)
   */
  constructor(
    code: "unsupported_audio" | "codec_unavailable",
    message: string,
    format: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.format = format;
  }
}

/**
 * A voice file cannot be used: it is not a voice state (KV cache, any of the reference's formats) or an audio-prompt
 * file, its tensors disagree with each other, or it was made for another model (other layer count, heads, head
 * size or width: code `"voice_model_mismatch"`; or other weights, detected from its first position).
 */
export class InvalidVoiceError extends PocketTtsError {
  /** The file (path or name) being read, when known. */
  file?: string;

  /**
   * Creates the error.
   *
   * @param message description naming the problem (and the tensor, when there is one)
   * @param code `"invalid_voice"` (malformed) or `"voice_model_mismatch"` (made for another model)
   * @param details the file and the underlying error
   */
  constructor(
    message: string,
    code: "invalid_voice" | "voice_model_mismatch" = "invalid_voice",
    details: { file?: string; cause?: unknown } = {},
  ) {
    super(code, message, { cause: details.cause });
    this.file = details.file;
  }
}

/**
 * Voice cloning was asked of a model whose weights have no usable Mimi encoder: the ungated release
 * (`kyutai/pocket-tts-without-voice-cloning`) zeroes it. Code `"voice_cloning_unavailable"`. The library never falls
 * back to another voice.
 *
 * @example
 * ```ts
 * try {
 *   await tts.loadVoice("me.wav");
 * } catch (e) {
 *   if (e instanceof VoiceCloningUnavailableError) console.error(e.message); // explains the gated repository
 * }
 * ```
 */
export class VoiceCloningUnavailableError extends PocketTtsError {
  /** Creates the error; the message explains how to get the gated weights. */
  constructor() {
    super(
      "voice_cloning_unavailable",
      "voice cloning needs the Mimi encoder, which these weights do not have (the ungated release zeroes it). It is " +
        "in the gated Hugging Face repository kyutai/pocket-tts: accept its terms at " +
        "https://huggingface.co/kyutai/pocket-tts, create an access token, set HF_TOKEN to it (or pass `token`), " +
        "and load the model again.",
    );
  }
}
