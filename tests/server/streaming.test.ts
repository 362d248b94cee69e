// Streaming, fairness and cancellation over real HTTP: first bytes before the generation ends; 20 concurrent
// requests each equal to their single-request bytes with every first byte early; a client that disconnects frees
// the model for the next request at once, and one that stops reading frees it after maxStallSeconds (both proven
// by order of events: the held stream is too long to finish by itself).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { expectedAudio, LONG_STREAMS, speech, withServer } from "../support/server.ts";

const LONG = "This sentence is long enough that its audio takes a good number of frames to generate.";
/** ~350 s of audio with LONG_STREAMS (~17 MB of pcm): more than any connection buffers hold. */
const ENDLESS = "This sentence is one of many that make the input long. ".repeat(70).slice(0, 4000);

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
      // ~350 s of audio (~17 MB of pcm): unread, it cannot finish by itself, so only the disconnect can free the slot
      // (proven by order of events, not by timing).
      const ac = new AbortController();
      const res = await speech(base, { input: ENDLESS, voice: "tiny", response_format: "pcm", seed: 1 }, {}, ac.signal);
      const reader = res.body!.getReader();
      await reader.read();
      assert.equal(handler.stats.active, 1);
      ac.abort();
      await reader.cancel().catch(() => {});
      // With one stream slot, the next request's bytes prove the slot and the model are free.
      const next = await speech(base, { input: "Next!", voice: "tiny", response_format: "pcm", seed: 2 });
      assert.deepEqual(await readAll(next), await expectedAudio(tts, "Next!", 2, "pcm", 0, LONG_STREAMS));
      while (handler.stats.active > 0 || tts.activeStreams > 0) await new Promise((r) => setTimeout(r, 1));
      assert.equal(handler.stats.waiting, 0);
    });
  });

  test("a client that stops reading loses its slot after maxStallSeconds; the next client gets it", async () => {
    const limits = { maxStreams: 1, maxStallSeconds: 1 };
    await withServer({ limits, generation: LONG_STREAMS }, async ({ base, tts, handler }) => {
      // ENDLESS: far more than the connection buffers hold, so the stream cannot finish unread.
      const stalled = await speech(base, { input: ENDLESS, voice: "tiny", response_format: "pcm", seed: 1 });
      const reader = stalled.body!.getReader();
      assert.ok(!(await reader.read()).done);
      // It stops reading. The one slot is taken, so this request waits until the stall frees it.
      const next = await speech(base, { input: "Next!", voice: "tiny", response_format: "pcm", seed: 2 });
      assert.equal(next.status, 200);
      assert.deepEqual(await readAll(next), await expectedAudio(tts, "Next!", 2, "pcm", 0, LONG_STREAMS));
      // The stalled stream did not end as if complete: its connection was dropped.
      await assert.rejects(async () => {
        while (!(await reader.read()).done);
        throw new Error("the stalled stream ended as if complete");
      }, (e: Error) => !/ended as if complete/.test(e.message));
      while (handler.stats.active > 0 || tts.activeStreams > 0) await new Promise((r) => setTimeout(r, 1));
    });
  });
});
