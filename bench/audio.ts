/**
 * Audio benchmarks: what each response format costs to encode per second of 24 kHz audio (the server's question:
 * can one core stream it), the WSOLA time-stretch per second of output, and resampling 30 s of 44.1 kHz audio to
 * 24 kHz (a voice prompt). The audio is a voice-like harmonic signal, encoded in 1920-sample pushes as the server does.
 *
 * @module
 */

import { harmonicSignal } from "../tests/support/signal.ts";
import { createAudioEncoder, OUTPUT_FORMATS } from "../src/audio/encoders.ts";
import { resample } from "../src/audio/resample.ts";
import { TimeStretcher } from "../src/audio/time_stretch.ts";
import { type BenchResult, measure, measureAsync } from "./support.ts";

const RATE = 24000;
const SECONDS = 10;

/** Runs the audio benchmarks and returns their results. */
export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const audio = harmonicSignal(RATE * SECONDS, RATE);
  const perSecond = (s: { median: number; min: number; max: number }, seconds: number) => ({
    median: s.median / seconds,
    min: s.min / seconds,
    max: s.max / seconds,
  });

  for (const format of OUTPUT_FORMATS) {
    let bytes = 0;
    const timing = await measureAsync(async () => {
      const encoder = await createAudioEncoder(format, RATE); // the codec module is cached after the warm-up run
      bytes = 0;
      for (let i = 0; i < audio.length; i += 1920) bytes += encoder.push(audio.subarray(i, i + 1920)).length;
      bytes += encoder.end().length;
    }, 5);
    results.push({
      name: `audio.encode.${format}`,
      ...perSecond(timing, SECONDS),
      unit: "ms per audio second",
      kbps: Math.round((bytes * 8) / SECONDS / 1000),
    });
  }

  for (const speed of [0.5, 2]) {
    const out = Math.round(audio.length / speed) / RATE;
    const timing = measure(() => {
      const stretch = new TimeStretcher(speed, RATE);
      for (let i = 0; i < audio.length; i += 1920) stretch.push(audio.subarray(i, i + 1920));
      stretch.end();
    }, 5);
    results.push({ name: `audio.time_stretch.${speed}x`, ...perSecond(timing, out), unit: "ms per output second" });
  }

  const prompt = harmonicSignal(44100 * 30, 44100);
  results.push({
    name: "audio.resample.44100_to_24000.30s",
    ...measure(() => resample(prompt, 44100, RATE), 5),
    unit: "ms",
  });
  return results;
}

if (import.meta.main) console.log(JSON.stringify(await run()));
