// Streaming, fairness and cancellation over real HTTP: first bytes before the generation ends; 20 concurrent
// requests each equal to their single-request bytes with every first byte early; a client that disconnects frees
// the model for the next request at once (measured, not slept).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { expectedAudio, LONG_STREAMS, speech, withServer } from "../support/server.ts";

const LONG = "This sentence is long enough that its audio takes a good number of frames to generate.";

async function readAll(res: Response): Promise<Uint8Array> {
  return new Uint8Array(await res.arrayBuffer());
}

describe("server: streaming, fairness, cancellation", () => {
  test("the first bytes arrive while the stream is still generating", async () => {
    await withServer({ generation: LONG_STREAMS }, async ({ base, handler, tts }) => {
      const res = await speech(base, { input: LONG, voice: "tiny", response_format: "pcm", seed: 7 });
      const reader = res.body!.getReader();
      const first = await reader.read();
      assert.ok(!first.done && first.value.length > 0);
      assert.equal(handler.stats.active, 1, "generation still running when the first bytes were received");
      const parts = [first.value];
      for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
      const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
      assert.ok(all.length > 10 * first.value.length);
      assert.deepEqual(all, await expectedAudio(tts, LONG, 7, "pcm", 0, LONG_STREAMS));
    });
  });

  test("20 concurrent requests: each equals its single-request bytes; the slowest first byte comes early", async () => {
    await withServer({ generation: LONG_STREAMS }, async ({ base }) => {
      const n = 20;
      const body = (i: number) => ({
        input: `Client ${i} here.`,
        voice: "tiny",
        response_format: "wav",
        seed: 100 + i,
      });
      const single: Uint8Array[] = [];
      for (let i = 0; i < n; i++) single.push(await readAll(await speech(base, body(i))));
      // Progress is counted in bytes received by all clients, not in wall time, so a loaded machine cannot skew it.
      let received = 0;
      const receivedBeforeFirst: number[] = [];
      const got = await Promise.all(Array.from({ length: n }, async (_, i) => {
        const res = await speech(base, body(i));
        assert.equal(res.status, 200);
        const reader = res.body!.getReader();
        const parts: Uint8Array[] = [];
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          if (parts.length === 0) receivedBeforeFirst[i] = received;
          received += r.value.length;
          parts.push(r.value);
        }
        const all = new Uint8Array(parts.reduce((k, p) => k + p.length, 0));
        parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
        return all;
      }));
      for (let i = 0; i < n; i++) assert.deepEqual(got[i], single[i], `request ${i}`);
      const slowest = Math.max(...receivedBeforeFirst);
      // Queued whole, the last client's first byte would come after 19 whole responses (95 % of the bytes);
      // interleaved, within the first part of the batch.
      assert.ok(slowest < 0.5 * received, `slowest first byte after ${slowest} of ${received} bytes`);
    });
  });

  test("a client that disconnects mid-stream frees the model for the next request at once", async () => {
    await withServer({ limits: { maxStreams: 1 }, generation: LONG_STREAMS }, async ({ base, tts, handler }) => {
      const long = LONG;
      const started = performance.now();
      await readAll(await speech(base, { input: long, voice: "tiny", response_format: "pcm", seed: 1 }));
      const whole = performance.now() - started;

      const ac = new AbortController();
      const res = await speech(base, { input: long, voice: "tiny", response_format: "pcm", seed: 1 }, {}, ac.signal);
      const reader = res.body!.getReader();
      await reader.read();
      const t0 = performance.now();
      ac.abort();
      await reader.cancel().catch(() => {});
      // With one stream slot, the next request's first byte proves the slot and the model are free.
      const next = await speech(base, { input: "Next!", voice: "tiny", response_format: "pcm", seed: 2 });
      const nextReader = next.body!.getReader();
      await nextReader.read();
      const freedAfter = performance.now() - t0;
      await nextReader.cancel();
      assert.ok(
        freedAfter < whole / 2,
        `next first byte ${freedAfter.toFixed(0)} ms after the disconnect; whole ${whole.toFixed(0)} ms`,
      );
      while (handler.stats.active > 0 || tts.activeStreams > 0) await new Promise((r) => setTimeout(r, 1));
      assert.equal(handler.stats.waiting, 0);
    });
  });
});
