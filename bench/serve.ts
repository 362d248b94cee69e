/**
 * `deno task bench serve`: a bounded load run against the HTTP server (`createHandler` behind `serve()` on
 * loopback, the full-size synthetic checkpoint). For 1, 4 and 20 concurrent clients, N requests (one round per
 * client) of OpenAI speech in `pcm`; reports throughput (seconds of audio per wall second), p50/p95 time to first
 * byte, p50 total time, and errors. Each chunk runs to its full length (`eosThreshold` off), so every request is
 * the same amount of work whatever the synthetic weights' end-of-speech logits do.
 *
 * @module
 */

import { TTSModel } from "../mod.ts";
import { createHandler, serve } from "../src/server/mod.ts";
import { workersAvailable } from "../src/generate/create_services.ts";
import { fullModelDir } from "../tests/support/full_weights.ts";
import { voiceFile } from "./e2e.ts";
import { type BenchResult, runtimeName } from "./support.ts";

const TEXT = "Hello there, friend.";
const CONCURRENCY = [1, 4, 20];

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

/** Runs the load benchmark. */
export async function run(): Promise<BenchResult[]> {
  const workers = workersAvailable() ? 2 : 0;
  const tts = await TTSModel.load({ model: await fullModelDir(), workers });
  const handler = createHandler(tts, {
    voices: { bench: voiceFile(tts.config.flow_lm.transformer.d_model) },
    generation: { eosThreshold: 1e9 },
    limits: { maxStreams: 20 },
  });
  await handler.ready;
  const server = await serve(handler, { port: 0 });
  const results: BenchResult[] = [];
  const one = async (seed: number) => {
    const t0 = performance.now();
    const res = await fetch(`${server.url}/v1/audio/speech`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "pocket-tts", input: TEXT, voice: "bench", response_format: "pcm", seed }),
    });
    if (!res.ok || !res.body) return null;
    let first = 0, bytes = 0;
    for await (const chunk of res.body) {
      if (bytes === 0) first = performance.now() - t0;
      bytes += chunk.length;
    }
    return { first, total: performance.now() - t0, seconds: bytes / 2 / tts.sampleRate };
  };
  try {
    await one(0); // warm-up
    for (const c of CONCURRENCY) {
      const t0 = performance.now();
      const runs = await Promise.all(Array.from({ length: c }, (_, i) => one(i + 1).catch(() => null)));
      const wall = (performance.now() - t0) / 1000;
      const ok = runs.filter((r) => r !== null);
      const ttfb = ok.map((r) => r.first);
      const audio = ok.reduce((s, r) => s + r.seconds, 0);
      results.push({
        name: `serve.c${c}`,
        median: percentile(ttfb, 0.5),
        min: Math.min(...ttfb),
        max: Math.max(...ttfb),
        unit: "ms to first byte",
        runtime: runtimeName(),
        workers,
        requests: c,
        concurrency: c,
        errors: c - ok.length,
        ttfb_p50_ms: Math.round(percentile(ttfb, 0.5)),
        ttfb_p95_ms: Math.round(percentile(ttfb, 0.95)),
        total_p50_ms: Math.round(percentile(ok.map((r) => r.total), 0.5)),
        audio_s_per_wall_s: Number((audio / wall).toFixed(2)),
        wall_s: Number(wall.toFixed(2)),
        weights: "f32 (synthetic full)",
      });
    }
  } finally {
    await handler.close();
    await server.close();
    tts.dispose();
  }
  return results;
}
