/**
 * `deno task bench stream_text`: speaking while an LLM is still writing, on the full-size synthetic checkpoint.
 * A producer emits the text one word at a time at ~15 words/s (an LLM's pace); we measure the time from the
 * delta that carries the first sentence's final character to the first audio frame, beside `stream()`'s first
 * audio for that sentence alone (same voice, same process, back to back), and whether the audio ever starved
 * after it started: a frame arriving after the audio before it would have finished playing in real time. As in the
 * e2e benchmark, EOS is disabled (the synthetic weights end a chunk after a few frames, which real speech does not):
 * each chunk speaks for its full budget, `tokens / 3 + 2` seconds. Each run listens to the first 12 s of audio.
 *
 * @module
 */

import { TTSModel } from "../mod.ts";
import { fullModelDir } from "../tests/support/full_weights.ts";
import { voiceFile } from "./e2e.ts";
import { workersAvailable } from "../src/generate/create_services.ts";
import { type BenchResult, msToFirst, runtimeName, stats } from "./support.ts";

const FIRST = "Good morning, how are you doing on this day?"; // 12 tokens with the fixture tokenizer
const REST = " I hope the weather is kind to you, and that the coffee is strong. Today we will look at three " +
  "small changes to the garden, starting with the roses by the gate. Then we can talk about the pond.";
const WORDS_PER_SECOND = 15;
const RUNS = 3;
/** Audio listened to per run (12 s: the first chunk's 6 s and the switch to the second). */
const FRAMES = 150;

/** Runs the streaming-text benchmark. */
export async function run(): Promise<BenchResult[]> {
  const model = await fullModelDir();
  const workers = workersAvailable() ? 2 : 0;
  const tts = await TTSModel.load({ model, workers });
  const voice = await tts.loadVoice(voiceFile(tts.config.flow_lm.transformer.d_model));
  const common = { runtime: runtimeName(), variant: "auto", weights: "f32 (synthetic full)", workers };
  const results: BenchResult[] = [];
  try {
    const solo: number[] = [];
    const latency: number[] = [];
    const ratio: number[] = [];
    let starvedRuns = 0;
    let worstUnderrun = 0;
    const speed: number[] = [];
    let beforeProducerDone = 0;
    for (let run = 0; run < RUNS; run++) {
      // stream() of the first sentence alone.
      const soloMs = await msToFirst(tts.stream(FIRST, { voice, seed: run, eosThreshold: Infinity }));
      solo.push(soloMs);

      // streamText with an LLM-like producer: " word" deltas at WORDS_PER_SECOND.
      const words = (FIRST + REST).split(/(?= )/);
      let firstSentenceDone = 0;
      let producerDone = Infinity;
      const producer = async function* () {
        let text = "";
        for (const w of words) {
          await new Promise((r) => setTimeout(r, 1000 / WORDS_PER_SECOND));
          text += w;
          if (firstSentenceDone === 0 && text.length >= FIRST.length) firstSentenceDone = performance.now();
          yield w;
        }
        producerDone = performance.now();
      };
      let start = 0;
      let samples = 0;
      let underrun = 0;
      for await (const frame of tts.streamText(producer(), { voice, seed: run, eosThreshold: Infinity })) {
        const now = performance.now();
        if (start === 0) {
          start = now;
          latency.push(now - firstSentenceDone);
          ratio.push((now - firstSentenceDone) / soloMs);
          if (now < producerDone) beforeProducerDone++;
        } else {
          // Playback of everything received so far would have ended at start + samples / rate.
          underrun = Math.max(underrun, now - (start + (samples / tts.sampleRate) * 1000));
        }
        samples += frame.length;
        if (samples >= FRAMES * frame.length) break;
      }
      // Generation speed once audio started (audio seconds per second): below 1, starving is unavoidable.
      speed.push(samples / tts.sampleRate / ((performance.now() - start) / 1000));
      if (underrun > 0) starvedRuns++;
      worstUnderrun = Math.max(worstUnderrun, underrun);
    }
    results.push({ name: "stream_text.solo_first_audio", ...common, ...stats(solo), unit: "ms", text_tokens: 12 });
    results.push({
      name: "stream_text.first_audio_after_sentence",
      ...common,
      ...stats(latency),
      unit: "ms",
      words_per_second: WORDS_PER_SECOND,
      first_audio_before_producer_done: `${beforeProducerDone}/${RUNS}`,
    });
    results.push({ name: "stream_text.ratio_to_solo", ...common, ...stats(ratio), unit: "x", target: 1.2 });
    results.push({
      name: "stream_text.starved",
      ...common,
      median: starvedRuns,
      min: starvedRuns,
      max: starvedRuns,
      unit: "runs",
      runs: RUNS,
      worst_underrun_ms: Math.max(0, Math.round(worstUnderrun)),
      median_speed_after_start: Math.round(stats(speed).median * 100) / 100,
    });
  } finally {
    tts.dispose();
  }
  return results;
}

if (import.meta.main) console.log(JSON.stringify(await run()));
