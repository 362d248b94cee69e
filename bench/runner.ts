/**
 * Runs the benchmark modules matching the filters given as arguments in *this* runtime and prints their results
 * as one JSON array on the last line. `bench/main.ts` starts it under Deno, Bun and Node.
 *
 * @module
 */

import type { BenchResult } from "./support.ts";

/** A benchmark module: the result-name prefixes it produces and how to load it. */
interface BenchModule {
  key: string;
  prefixes: string[];
  load: () => Promise<{ run: () => Promise<BenchResult[]> }>;
}

/** Every benchmark of the project, in a sensible reading order. */
export const BENCHMARKS: BenchModule[] = [
  { key: "limits", prefixes: ["limits"], load: () => import("./limits.ts") },
  { key: "kernels", prefixes: ["gemv", "gemm", "bf16"], load: () => import("./kernels.ts") },
  { key: "text", prefixes: ["text"], load: () => import("./text.ts") },
  { key: "model_load", prefixes: ["model"], load: () => import("./model_load.ts") },
  { key: "mimi", prefixes: ["mimi"], load: () => import("./mimi.ts") },
  { key: "flowlm", prefixes: ["flowlm"], load: () => import("./flow_lm.ts") },
  { key: "memory", prefixes: ["memory"], load: () => import("./memory.ts") },
  { key: "memory_int8", prefixes: ["memory"], load: async () => ({ run: (await import("./memory.ts")).runInt8 }) },
  { key: "e2e", prefixes: ["e2e"], load: () => import("./e2e.ts") },
  { key: "e2e_1t", prefixes: ["e2e"], load: async () => ({ run: (await import("./e2e.ts")).runOneThread }) },
  { key: "e2e_threads", prefixes: ["e2e"], load: async () => ({ run: (await import("./e2e.ts")).runThreads }) },
  { key: "e2e_int8", prefixes: ["e2e"], load: async () => ({ run: (await import("./e2e.ts")).runInt8 }) },
  {
    key: "e2e_int8_threads",
    prefixes: ["e2e"],
    load: async () => ({ run: (await import("./e2e.ts")).runInt8Threads }),
  },
  {
    key: "e2e_int8_1t",
    prefixes: ["e2e"],
    load: async () => ({ run: (await import("./e2e.ts")).runInt8OneThread }),
  },
  { key: "e2e_split", prefixes: ["e2e"], load: async () => ({ run: (await import("./e2e.ts")).runSplit }) },
  { key: "stream_text", prefixes: ["stream_text"], load: () => import("./stream_text.ts") },
  { key: "serve", prefixes: ["serve"], load: () => import("./serve.ts") },
  { key: "clone", prefixes: ["clone"], load: () => import("./clone.ts") },
  { key: "audio", prefixes: ["audio"], load: () => import("./audio.ts") },
];

/** True when a module or result name matches one of the filters (no filters: everything). */
export function matches(filters: string[], ...names: string[]): boolean {
  return filters.length === 0 || filters.some((f) => names.some((n) => n.includes(f) || f.includes(n)));
}

/** Runs the matching benchmarks (of module `only`, when given) and returns their results. */
export async function runBenchmarks(
  filters: string[],
  log: (s: string) => void = () => {},
  only?: string,
): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const b of BENCHMARKS) {
    if (!matches(filters, b.key, ...b.prefixes) || (only !== undefined && b.key !== only)) continue;
    log(`running ${b.key}`);
    const results = await (await b.load()).run();
    out.push(...results.filter((r) => matches(filters, b.key, r.name)));
  }
  return out;
}

function args(): string[] {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  return g.Deno ? g.Deno.args : g.process.argv.slice(2);
}

// Run when executed directly (Deno/Bun set import.meta.main; the Node bundle passes --run).
// `--module=KEY` runs one module only (bench/main.ts starts one process per module, so each module's memory
// figures are its own).
if (import.meta.main || args().includes("--run")) {
  const only = args().find((a) => a.startsWith("--module="))?.slice("--module=".length);
  const filters = args().filter((a) => a !== "--run" && !a.startsWith("--module="));
  const results = await runBenchmarks(filters, (s) => console.error(s), only);
  console.log(JSON.stringify(results));
}
