/**
 * This machine's ceilings as wasm sees them, measured in the same run as every other figure, per runtime and wasm
 * variant, on 1 and 2 threads (2 threads = two workers, each its own instance, running the kernel at once):
 *
 * - `limits.read`: streaming read bandwidth (GB/s) over a 64 MB buffer per thread (beyond the caches), 128-bit loads;
 * - `limits.madd`: 128-bit f32 multiply-add throughput (GMAC/s), 12 independent chains (fused in the relaxed build,
 *   `mul` + `add` in the baseline one).
 *
 * `bench/main.ts` prints each model figure beside the bound these give (`of_bound`). The workers are started from
 * source text (Web Workers in Deno and Bun, `worker_threads` in Node) so the Node bundle needs no second file.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { wasmUrl } from "../src/runtime/wasm.ts";
import { type BenchResult, benchVariants, runtimeName, stats } from "./support.ts";

const READ_BYTES = 64 << 20;
const READ_PASSES = 6;
const MADD_ITERS = 4_000_000;
const RUNS = 5;
/** `limits::CHAINS` (12) vectors of 4 lanes. */
const MACS_PER_ITER = 48;

/** A job for one worker: which kernel, and its size. */
interface Job {
  kind: "read" | "madd";
  wasm: Uint8Array;
}

/**
 * The worker body (plain JS, runs as a Web Worker or a Node `worker_threads` worker): instantiates the core, sets
 * up its buffer, says "ready", then runs the kernel once per "go" and replies with the elapsed ms.
 */
const WORKER_SOURCE = `
const port = typeof self !== "undefined" && typeof self.postMessage === "function"
  ? { on: (f) => self.onmessage = (e) => f(e.data), post: (m) => self.postMessage(m) }
  : (() => { const p = require("node:worker_threads").parentPort; return { on: (f) => p.on("message", f), post: (m) => p.postMessage(m) }; })();
let run;
port.on(async (msg) => {
  if (msg.kind) {
    const { instance } = await WebAssembly.instantiate(msg.wasm, {});
    const x = instance.exports;
    if (msg.kind === "read") {
      const ptr = x.alloc(${READ_BYTES});
      new Uint32Array(x.memory.buffer, ptr, ${READ_BYTES / 4}).fill(1); // touch every page
      run = () => x.limits_read(ptr, ${READ_BYTES}, ${READ_PASSES});
    } else {
      run = () => x.limits_madd(0.999, 0.001, ${MADD_ITERS});
    }
    run();
    port.post("ready");
  } else {
    const t0 = performance.now();
    run();
    port.post(performance.now() - t0);
  }
});
`;

/** A started worker: send a message, await one reply. */
interface Runner {
  ask(msg: unknown): Promise<unknown>;
  stop(): void;
}

/** `node:worker_threads` in Node (which has no Web Workers), null elsewhere. */
// deno-lint-ignore no-explicit-any
type NodeWorkers = { Worker: new (src: string, o: { eval: boolean }) => any } | null;

function startWorker(nodeWorkers: NodeWorkers): Runner {
  let reply: (v: unknown) => void = () => {};
  if (nodeWorkers) {
    const w = new nodeWorkers.Worker(WORKER_SOURCE, { eval: true });
    w.on("message", (m: unknown) => reply(m));
    return { ask: (m) => new Promise((r) => (reply = r, w.postMessage(m))), stop: () => void w.terminate() };
  }
  const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
  const w = new Worker(url, { type: "module" });
  w.onmessage = (e) => reply(e.data);
  return {
    ask: (m) => new Promise((r) => (reply = r, w.postMessage(m))),
    stop: () => (w.terminate(), URL.revokeObjectURL(url)),
  };
}

/** Runs `job` on `threads` workers at once, `RUNS` times; returns each run's wall time (the slowest worker). */
async function timeJob(job: Job, threads: number, nodeWorkers: NodeWorkers): Promise<number[]> {
  const workers = Array.from({ length: threads }, () => startWorker(nodeWorkers));
  try {
    await Promise.all(workers.map((w) => w.ask({ kind: job.kind, wasm: job.wasm })));
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const ms = await Promise.all(workers.map((w) => w.ask("go"))) as number[];
      times.push(Math.max(...ms));
    }
    return times;
  } finally {
    workers.forEach((w) => w.stop());
  }
}

/** Runs the limits benchmarks for every variant this runtime supports. */
export async function run(): Promise<BenchResult[]> {
  const nodeWorkers = runtimeName() === "node" ? await import("node:worker_threads") as NodeWorkers : null;
  const results: BenchResult[] = [];
  for (const variant of benchVariants()) {
    const wasm = new Uint8Array(await readFile(wasmUrl(variant)));
    for (const threads of [1, 2]) {
      const base = { runtime: runtimeName(), variant, weights: "-", threads };
      const read = stats(await timeJob({ kind: "read", wasm }, threads, nodeWorkers));
      const bytes = threads * READ_BYTES * READ_PASSES;
      results.push({
        name: `limits.read_${threads}t`,
        ...base,
        ...read,
        unit: "ms",
        gbps: +(bytes / read.min / 1e6).toFixed(2),
        gbps_median: +(bytes / read.median / 1e6).toFixed(2),
      });
      const madd = stats(await timeJob({ kind: "madd", wasm }, threads, nodeWorkers));
      const macs = threads * MADD_ITERS * MACS_PER_ITER;
      results.push({
        name: `limits.madd_${threads}t`,
        ...base,
        ...madd,
        unit: "ms",
        gmac_per_s: +(macs / madd.min / 1e6).toFixed(2),
        gmac_per_s_median: +(macs / madd.median / 1e6).toFixed(2),
        fused: variant === "relaxed" ? "relaxed_madd" : "mul+add",
      });
    }
  }
  return results;
}

if (import.meta.main) console.log(JSON.stringify(await run()));
