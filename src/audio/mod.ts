/**
 * Audio for @pocket/tts.
 * - Input: {@link decodeAudio} reads WAV, FLAC, MP3, Ogg Vorbis and Ogg Opus (detected by content, the compressed
 *   formats through WebAssembly decoders imported on first use) to mono samples; {@link resample} brings them to
 *   24 kHz exactly as the reference does (`scipy.signal.resample_poly`).
 * - WAV: encoding (16-bit PCM exactly like the reference CLI, or 32-bit float), the reference's unknown-length
 *   streaming header, an incremental writer for stdout/HTTP streaming, and a decoder for PCM 8–32-bit and float
 *   32/64-bit files.
 *
 * Browser-safe: no `node:` imports.
 *
 * @example
 * ```ts
 * const wav = encodeWav(samples, 24000);                // a complete 16-bit PCM file
 * const { sampleRate, channels } = decodeWav(wav);      // 24000, 1
 * const prompt = toMono(decodeWav(await Deno.readFile("prompt.wav")));
 *
 * const mp3 = await decodeAudio(await Deno.readFile("me.mp3")); // any supported format, mono
 * const at24k = resample(mp3.samples, mp3.sampleRate, 24000);
 *
 * const writer = new WavStreamWriter(24000);            // streaming: header first, then frames as they come
 * const chunks = [writer.header(), writer.encode(frame), writer.silence(200)];
 * ```
 *
 * @module
 */

export {
  type DecodedWav,
  decodeWav,
  type DecodeWavOptions,
  encodeWav,
  type EncodeWavOptions,
  toMono,
  WAV_UNKNOWN_LENGTH,
  wavHeader,
  type WavHeaderOptions,
  type WavSampleEncoding,
  type WavSampleFormat,
  WavStreamWriter,
  type WavStreamWriterOptions,
} from "./wav.ts";
export { decodeAudio, type DecodeAudioOptions, type DecodedAudio, DEFAULT_MAX_DECODE_SECONDS } from "./decode.ts";
export { type AudioFormat, detectAudioFormat } from "./detect.ts";
export { resample, resamplePoly } from "./resample.ts";
export {
  type AudioEncoder,
  type AudioEncoderOptions,
  createAudioEncoder,
  OUTPUT_FORMATS,
  type OutputFormat,
} from "./encoders.ts";
export { SPEED_RANGE, TimeStretcher } from "./time_stretch.ts";
export {
  type InvalidAudioCode,
  InvalidAudioError,
  PocketTtsError,
  SUPPORTED_AUDIO_FORMATS,
  UnsupportedAudioError,
} from "../errors.ts";
