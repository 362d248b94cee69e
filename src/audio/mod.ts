/**
 * WAV audio for @pocket/tts: encoding (16-bit PCM exactly like the reference CLI, or 32-bit float), the reference's
 * unknown-length streaming header, an incremental writer for stdout/HTTP streaming, and a decoder for PCM 8–32-bit
 * and float 32/64-bit files. Browser-safe: no `node:` imports.
 *
 * @example
 * ```ts
 * const wav = encodeWav(samples, 24000);                // a complete 16-bit PCM file
 * const { sampleRate, channels } = decodeWav(wav);      // 24000, 1
 * const prompt = toMono(decodeWav(await Deno.readFile("prompt.wav")));
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
export { type InvalidAudioCode, InvalidAudioError, PocketTtsError } from "../errors.ts";
