// Cloning does not stall the other streams of a model: while a 30 s recording is cloned, a stream already running on
// the same model keeps receiving frames between the encoder's blocks (the clone takes one scheduler turn per block
// and per prefill piece). Proved by the order of events — the stream's frames and the clone's progress callbacks —
// never by timing; in one thread and with workers. The voice is byte for byte the one cloned with nothing else
// running.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { TTSModel } from "../../mod.ts";
import { readCase } from "../flow_lm/support.ts";
import { TINY_MODEL_DIR } from "../support/tiny_model.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const SECONDS = 30;
const TEXT = Array.from({ length: 40 }, (_, i) => `Sentence number ${i + 1} keeps this stream busy for a while.`)
  .join(" ");

/** 30 s of speech at 24 kHz: the golden prompt repeated. */
async function longRecording(): Promise<{ samples: Float32Array; sampleRate: number }> {
  const speech = (await readCase("tiny/voice_clone.safetensors")).f32("audio_24k");
  const samples = new Float32Array(SECONDS * 24000);
  for (let i = 0; i < samples.length; i++) samples[i] = speech[i % speech.length];
  return { samples, sampleRate: 24000 };
}

describe("cloning alongside a running stream (tiny model)", () => {
  for (const workers of [0, 2] as const) {
    const skip = workers === 2 && !(g.Deno || g.Bun) ? "Node 20 has no module workers" : false;
    test(`the stream's frames keep arriving between encoder blocks; the voice is unchanged (workers ${workers})`, {
      skip,
    }, async () => {
      const recording = await longRecording();
      const tts = await TTSModel.load({ model: TINY_MODEL_DIR, workers });
      try {
        let blocks = 0;
        const alone = await tts.loadVoice(recording, { onProgress: () => blocks++ });
        const want = tts.exportVoice(alone);
        await tts.freeVoice(alone); // also leaves the content cache, so the next clone really encodes
        assert.equal(blocks, Math.ceil(SECONDS * 12.5 / 2), "one progress call per 2-frame block");

        const events: ("frame" | "block" | "cloned")[] = [];
        let cloned = false;
        let started!: () => void;
        const running = new Promise<void>((r) => started = r);
        const stream = (async () => {
          let frames = 0;
          for await (const _ of tts.stream(TEXT, { seed: 1, eosThreshold: Infinity, onWarning: () => {} })) {
            events.push("frame");
            if (++frames === 1) started();
            if (cloned) return { frames, outlived: true };
          }
          return { frames, outlived: false };
        })();
        await running;
        const voice = await tts.loadVoice(recording, { onProgress: () => events.push("block") });
        events.push("cloned");
        cloned = true;
        const { frames: streamed, outlived } = await stream;
        assert.deepEqual(tts.exportVoice(voice), want, "the same voice as cloned alone");

        const during = events.slice(events.indexOf("block"), events.indexOf("cloned"));
        const framesDuring = during.filter((e) => e === "frame").length;
        // Between consecutive blocks: how many gaps saw at least one of the stream's frames.
        let gaps = 0, gapsWithFrames = 0, sawFrame = false;
        for (const e of during) {
          if (e === "frame") sawFrame = true;
          else {
            gaps++;
            if (sawFrame) gapsWithFrames++;
            sawFrame = false;
          }
        }
        console.log(
          `workers ${workers}: ${blocks} blocks, ${framesDuring} stream frames during the clone, ` +
            `${gapsWithFrames}/${gaps} gaps between blocks saw a frame; stream ran ${streamed} frames`,
        );
        // One long encode call would let through at most the frames already in flight (≤ 3).
        assert.ok(framesDuring >= blocks / 4, `${framesDuring} frames during ${blocks} blocks`);
        assert.ok(gapsWithFrames >= gaps / 4, `${gapsWithFrames} of ${gaps} gaps between blocks saw a frame`);
        assert.ok(outlived, "the stream was still running when the clone ended");
      } finally {
        tts.dispose();
      }
    });
  }
});
