/**
 * Shared pieces of the benchmarks: the result record, timing statistics, and which runtime/variants this
 * process can measure. Each `bench/<area>.ts` exports `run(): Promise<BenchResult[]>`; `bench/main.ts` runs them
 * in Deno, Bun and Node side by side.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { supportsRelaxedSimd } from "../src/runtime/simd_detect.ts";
import { sharedMemoryAvailable, type SimdVariant } from "../src/runtime/wasm.ts";
import { workersAvailable } from "../src/generate/create_services.ts";

/** One benchmark measurement: timings over several runs plus benchmark-specific extra fields. */
export interface BenchResult {
  /** Benchmark name, e.g. `"gemv.1x1024x3072"`. */
  name: string;
  /** Median over the timed runs, in `unit`. */
  median: number;
  /** Fastest run, in `unit`. */
  min: number;
  /** Slowest run, in `unit`. */
  max: number;
  /** Unit of `median`, `min` and `max`. */
  unit: string;
  /** Extra figures (throughput, sizes, variant, weights). */
  [extra: string]: string | number;
}

/** Median, min and max of some timings. */
export interface Stats {
  median: number;
  min: number;
  max: number;
}

/** Statistics of a list of timings. */
export function stats(times: number[]): Stats {
  const s = [...times].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1] };
}

/** Times `fn` `runs` times after one untimed warm-up run (JIT, scratch buffers), in ms. */
export function measure(fn: () => void, runs = 7): Stats {
  fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return stats(times);
}

/** {@link measure} for asynchronous work. */
export async function measureAsync(fn: () => Promise<void>, runs = 7): Promise<Stats> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return stats(times);
}

/** The JavaScript runtime running this process. */
export function runtimeName(): "deno" | "bun" | "node" {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  return g.Deno ? "deno" : g.Bun ? "bun" : "node";
}

/** The wasm variants this runtime can run (relaxed needs `--experimental-wasm-relaxed-simd` in Node 20). */
export function benchVariants(): SimdVariant[] {
  return supportsRelaxedSimd() ? ["baseline", "relaxed"] : ["baseline"];
}

/** Thread counts to measure: 1, and 2 (the threads build with one helper) where shared memory and workers exist. */
export function benchThreads(): number[] {
  return sharedMemoryAvailable() && workersAvailable() ? [1, 2] : [1];
}

/**
 * Milliseconds until `frames` (a stream just made) gives its first item: when a user has the first audio in hand.
 * The stream is then left, and its teardown (with workers, the frames already in flight finish first) is not
 * counted: a `for await … break` loop would count it, as the loop returns only after the stream's cleanup.
 */
export async function msToFirst(frames: AsyncIterable<unknown>): Promise<number> {
  const t0 = performance.now();
  const it = frames[Symbol.asyncIterator]();
  await it.next();
  const ms = performance.now() - t0;
  await it.return?.();
  return ms;
}

/** Resident set size of this process now, in MB (where the runtime reports it). */
export function rssMb(): number {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  const usage = g.process?.memoryUsage?.() ?? g.Deno?.memoryUsage?.();
  return usage ? usage.rss / 1e6 : NaN;
}

/**
 * Peak resident set size of this process so far, in MB: the kernel's high-water mark (`VmHWM`, Linux), which also
 * sees short peaks no sampling would; where there is none, the current RSS (callers then sample it).
 */
export function peakRssMb(): number {
  try {
    const status = readFileSync("/proc/self/status", "utf8");
    const kb = status.match(/VmHWM:\s*(\d+) kB/)?.[1];
    if (kb) return Number(kb) * 1024 / 1e6;
  } catch {
    // not Linux
  }
  return rssMb();
}
